"""The embedded English corpus, the project's SentencePiece vocabulary, and SCAN."""
from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys

import pytest

from tasks import corpus
from tasks import text_vocab
from tasks.corpus import build_corpus
from tasks.downstream import scan
from tasks.vocab import train_vocab

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- corpus ---------------------------------------------------------------------------

def test_corpus_holds_real_english_paragraphs():
  paras = corpus.paragraphs()
  assert 15_000 < len(paras) < 30_000
  size = sum(len(p.encode("utf-8")) + 1 for p in paras)
  assert 3_000_000 < size <= build_corpus.DEFAULT_MAX_BYTES
  assert os.path.getsize(corpus.CORPUS_PATH) < 2_000_000
  assert len(set(paras)) == len(paras)  # de-duplicated
  for p in paras:
    assert p == p.strip() and "\n" not in p and "  " not in p
    assert build_corpus.is_prose(p)
  joined = "\n".join(paras)
  for markup in ("``", ":func:`", ":class:`", ".. versionadded", "\x00"):
    assert markup not in joined
  assert not any(p.startswith((">>>", "..", "::")) for p in paras)
  # A sentence of the functools reference, markup reduced to its text.
  assert any(p.startswith("The functools module is for higher-order functions: "
                          "functions that act on or return other functions.")
             for p in paras)
  common = {"the", "of", "a", "is", "to", "and", "in"}
  words = joined.lower().split()
  assert sum(w in common for w in words) / len(words) > 0.15  # English function words


def test_corpus_split_rule_is_disjoint_and_covers_everything():
  everything = corpus.paragraphs()
  train, validation = corpus.paragraphs("train"), corpus.paragraphs("validation")
  assert len(train) + len(validation) == len(everything)
  assert validation == everything[corpus.VALIDATION_EVERY - 1::corpus.VALIDATION_EVERY]
  assert not set(train) & set(validation)
  assert [corpus.is_validation(i) for i in (0, 98, 99, 100, 199)] == [
      False, False, True, False, True]
  with pytest.raises(ValueError, match="unknown corpus split"):
    corpus.paragraphs("test")
  with pytest.raises(FileNotFoundError, match="build_corpus"):
    corpus.paragraphs(path="/nonexistent/corpus.txt.gz")


RST = """\
:mod:`spam` --- Eggs
====================

.. module:: spam
   :synopsis: Eggs.

The :mod:`spam` module provides *useful* functions for ``eggs``; see
`the manual <https://example.org>`_ for the details of :func:`~spam.ham.fry`.

.. function:: fry(egg, *, oil=None)
              boil(egg)

   Fry an egg in the given oil, returning the cooked egg as a new object
   to the caller.

   Example::

      >>> fry(1)
      2

   .. versionchanged:: 3.11
      The oil argument became keyword-only in this release of the module.

+--------+--------+
| a cell | b cell |
+--------+--------+

=====  =====
x      y
=====  =====
one    two
=====  =====

* A list item that is long enough to count as a sentence of real prose.
* short

.. code-block:: python

   print("this line of code is not prose at all, even if long enough")

>>> print("nor is a doctest line that is long enough to be kept")
"""


def test_extractor_keeps_prose_and_drops_code_tables_and_markup():
  got = [build_corpus.strip_inline_markup(p)
         for p in build_corpus.raw_paragraphs(RST.splitlines())]
  got = [p for p in got if build_corpus.is_prose(p)]
  assert got == [
      "The spam module provides useful functions for eggs; see the manual for the "
      "details of fry.",
      "Fry an egg in the given oil, returning the cooked egg as a new object to the "
      "caller.",
      "The oil argument became keyword-only in this release of the module.",
      "A list item that is long enough to count as a sentence of real prose.",
  ]
  assert build_corpus.strip_inline_markup(r"matches ``\s`` but not \*") == (
      r"matches \s but not *")


def test_gzip_output_is_reproducible(tmp_path):
  lines = ["First paragraph.", "Second paragraph, with unicode: \u00e9."]
  a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
  build_corpus.write_gzip_lines(lines, a)
  build_corpus.write_gzip_lines(lines, b)
  data = open(a, "rb").read()
  assert data == open(b, "rb").read()
  assert data[4:8] == b"\0\0\0\0"  # mtime 0
  assert gzip.decompress(data).decode("utf-8").splitlines() == lines
  assert sorted(os.listdir(tmp_path)) == ["a.gz", "b.gz"]  # no temp file left behind


def test_build_refuses_an_empty_source_dir(tmp_path):
  with pytest.raises(FileNotFoundError, match="python3.11-doc"):
    build_corpus.extract(str(tmp_path), 1000)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(build_corpus.DEFAULT_SOURCE_DIR),
                    reason="needs Debian's python3.11-doc sources")
def test_rebuilding_the_corpus_gives_the_committed_bytes(tmp_path):
  out = str(tmp_path / "corpus.txt.gz")
  assert build_corpus.main(["--output", out]) == 0
  assert open(out, "rb").read() == open(corpus.CORPUS_PATH, "rb").read()


# --- vocabulary -----------------------------------------------------------------------

def test_vocabulary_special_ids_sentinels_and_size():
  vocab = text_vocab.get_vocabulary()
  assert (vocab.pad_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2)
  import sentencepiece as spm
  shipped = spm.SentencePieceProcessor(model_file=text_vocab.DEFAULT_VOCAB_PATH)
  assert shipped.get_piece_size() == text_vocab.DEFAULT_SPM_SIZE == 8000
  assert (shipped.pad_id(), shipped.eos_id(), shipped.unk_id(), shipped.bos_id()) == (
      0, 1, 2, -1)
  assert vocab.extra_ids == 100 and vocab.vocab_size == 8100
  assert vocab.decode([vocab.vocab_size - 1]) == "<extra_id_0>"
  assert vocab.decode([8000]) == "<extra_id_99>"
  assert vocab.vocab_size <= text_vocab.TEXT_MODEL_VOCAB_SIZE
  assert text_vocab.TEXT_MODEL_VOCAB_SIZE == text_vocab.padded_vocab_size(8100) == 8192
  assert text_vocab.padded_vocab_size(32100) == text_vocab.T5_MODEL_VOCAB_SIZE
  gin_text = open(os.path.join(REPO, "gin", "models", "t5_1_0_tiny_text.gin")).read()
  assert re.search(r"^T5Config\.vocab_size = (\d+)$", gin_text, re.M).group(1) == str(
      text_vocab.TEXT_MODEL_VOCAB_SIZE)
  assert text_vocab.get_vocabulary() is vocab  # cached


def test_vocabulary_round_trips_corpus_sentences():
  vocab = text_vocab.get_vocabulary()
  paras = corpus.paragraphs("validation")
  tokens = 0
  for p in paras:
    ids = vocab.encode(p)
    assert 2 not in ids  # no unk on English text
    assert vocab.decode(ids) == p
    tokens += len(ids)
  words = sum(len(p.split()) for p in paras)
  assert 1.0 < tokens / words < 2.0  # real subword units, not characters


def test_vocabulary_path_argument_env_var_and_missing_file(tmp_path, monkeypatch):
  copy = str(tmp_path / "copy.model")
  shutil.copy(text_vocab.DEFAULT_VOCAB_PATH, copy)
  monkeypatch.setenv(text_vocab.VOCAB_PATH_ENV, copy)
  assert text_vocab.resolve_vocab_path() == copy
  vocab = text_vocab.get_vocabulary()
  assert vocab.sentencepiece_model_file == copy
  assert text_vocab.get_vocabulary(text_vocab.DEFAULT_VOCAB_PATH) is not vocab
  missing = str(tmp_path / "missing.model")
  monkeypatch.setenv(text_vocab.VOCAB_PATH_ENV, missing)
  with pytest.raises(FileNotFoundError) as err:
    text_vocab.get_vocabulary()
  assert missing in str(err.value) and text_vocab.VOCAB_PATH_ENV in str(err.value)
  monkeypatch.delenv(text_vocab.VOCAB_PATH_ENV)
  assert text_vocab.resolve_vocab_path() == text_vocab.DEFAULT_VOCAB_PATH
  assert text_vocab.T5_VOCAB_PATH == (
      "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model")


def test_vocabulary_training_is_deterministic_and_t5_like():
  import sentencepiece as spm
  paras = corpus.paragraphs("train")[:1500]
  a, b = train_vocab.train(paras, 600), train_vocab.train(paras, 600)
  assert a == b
  sp = spm.SentencePieceProcessor(model_proto=a)
  assert sp.get_piece_size() == 600
  assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
  assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
  assert not any(sp.is_byte(i) for i in range(600))  # no byte fallback


@pytest.mark.slow
def test_retraining_the_vocabulary_gives_the_committed_model(tmp_path):
  assert train_vocab.main(["--output_dir", str(tmp_path)]) == 0
  for ext in (".model", ".vocab"):
    shipped = os.path.join(os.path.dirname(train_vocab.__file__),
                           train_vocab.MODEL_NAME + ext)
    assert (tmp_path / (train_vocab.MODEL_NAME + ext)).read_bytes() == open(
        shipped, "rb").read()


# --- SCAN -----------------------------------------------------------------------------

def _acts(text: str) -> list[str]:
  return text.split()


L, R, W, K, N, J = ("I_TURN_LEFT", "I_TURN_RIGHT", "I_WALK", "I_LOOK", "I_RUN", "I_JUMP")


@pytest.mark.parametrize("command, expected", [
    ("jump", [J]),
    ("turn left", [L]),
    ("jump twice after walk left", [L, W, J, J]),
    ("turn around right", [R] * 4),
    ("walk opposite left thrice", [L, L, W] * 3),
    ("look and run twice", [K, N, N]),
    ("jump around right", [R, J] * 4),
    ("turn opposite left after walk opposite left thrice", [L, L, W] * 3 + [L, L]),
    ("look opposite right thrice and walk left", [R, R, K] * 3 + [L, W]),
    ("run around left thrice after run opposite left twice",
     [L, L, N] * 2 + [L, N] * 12),
    ("jump opposite left after walk around left", [L, W] * 4 + [L, L, J]),
])
def test_scan_interpretation_of_known_commands(command, expected):
  assert scan.interpret(command) == expected
  assert dict(scan.all_examples())[command] == " ".join(expected)


def test_scan_has_exactly_the_20910_commands_of_the_grammar():
  commands = scan.all_commands()
  assert len(commands) == len(set(commands)) == 20910
  lengths = [len(a.split()) for _, a in scan.all_examples()]
  assert min(lengths) == 1 and max(lengths) == 48
  assert sum(c.count(" and ") for c in commands) == sum(
      c.count(" after ") for c in commands) == 102 * 102
  assert set(" ".join(commands).split()) == {
      "walk", "look", "run", "jump", "turn", "left", "right", "opposite", "around",
      "twice", "thrice", "and", "after"}
  assert set(" ".join(a for _, a in scan.all_examples()).split()) == set(scan.ACTIONS)
  for bad in ("turn", "walk walk", "jump left twice twice", "run around", "fly"):
    with pytest.raises(ValueError, match="not a SCAN command"):
      scan.interpret(bad)


def _splits(scheme):
  return {s: scan.split_examples(scheme, s) for s in scan.SPLITS}


def _check_disjoint(splits):
  commands = {s: {c for c, _ in ex} for s, ex in splits.items()}
  assert not commands["train"] & commands["validation"]
  assert not commands["train"] & commands["test"]
  assert not commands["validation"] & commands["test"]
  return commands


def test_scan_simple_split():
  splits = _splits("simple")
  commands = _check_disjoint(splits)
  assert len(splits["test"]) == 4182
  assert len(splits["train"]) + len(splits["validation"]) == 16728
  assert len(splits["validation"]) == round(0.1 * 16728)
  assert set().union(*commands.values()) == set(scan.all_commands())
  assert splits == _splits("simple")  # deterministic
  with pytest.raises(ValueError, match="unknown SCAN split scheme"):
    scan.split_examples("random", "train")
  with pytest.raises(ValueError, match="unknown SCAN split"):
    scan.split_examples("simple", "dev")


def test_scan_length_split_follows_the_22_action_threshold():
  splits = _splits("length")
  commands = _check_disjoint(splits)
  assert len(splits["train"]) + len(splits["validation"]) == 16990
  assert len(splits["test"]) == 3920
  assert set().union(*commands.values()) == set(scan.all_commands())
  for split in ("train", "validation"):
    assert max(len(a.split()) for _, a in splits[split]) == 22
  assert min(len(a.split()) for _, a in splits["test"]) == 24


def test_scan_addprim_jump_split():
  splits = _splits("addprim_jump")
  commands = _check_disjoint(splits)
  assert len(splits["test"]) == 7706
  assert all("jump" in c.split() and c != "jump" for c in commands["test"])
  train = [c for c, _ in splits["train"]]
  assert train.count("jump") == scan.JUMP_COPIES == 1467
  assert len(train) + len(splits["validation"]) == 14670  # the original file's lines
  assert all("jump" not in c.split() for c in train if c != "jump")
  assert all("jump" not in c.split() for c in commands["validation"])
  assert len(commands["train"] | commands["validation"]) == 13203 + 1
  assert commands["test"] | commands["train"] | commands["validation"] == set(
      scan.all_commands())


def test_scan_generator_imports_without_tensorflow():
  code = (
      "import sys, types\n"
      "for name, path in (('tasks', 'tasks'), ('tasks.downstream', 'tasks/downstream')):\n"
      "  pkg = types.ModuleType(name); pkg.__path__ = [path]; sys.modules[name] = pkg\n"
      "from tasks.downstream import scan\n"
      "import tasks.corpus as corpus\n"
      "assert len(scan.split_examples('length', 'test')) == 3920\n"
      "assert len(corpus.paragraphs('validation')) > 100\n"
      "assert 'tensorflow' not in sys.modules and 'seqio' not in sys.modules\n")
  subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_registered_scan_tasks_decode_back_to_command_and_actions():
  import seqio
  import tasks.downstream  # noqa: F401  (registers)
  vocab = text_vocab.get_vocabulary()
  for name, scheme in scan.TASK_NAMES.items():
    task = seqio.get_mixture_or_task(name)
    assert set(task.splits) == {"train", "validation", "test"}
    assert [f.__name__ for f in task.metric_fns] == ["exact_match"]
    assert task.output_features["inputs"].vocabulary.vocab_size == 8100
  task = seqio.get_mixture_or_task("scan_length")
  expected = scan.split_examples("length", "validation")[:5]
  ds = task.get_dataset(sequence_length={"inputs": 32, "targets": 256},
                        split="validation", shuffle=False, num_epochs=1)
  got = list(ds.take(5).as_numpy_iterator())
  assert len(got) == 5
  for ex, (command, actions) in zip(got, expected):
    assert ex["inputs"][-1] == ex["targets"][-1] == 1  # EOS
    assert vocab.decode(ex["inputs"].tolist()) == command
    words = scan.to_target_words(actions)
    assert vocab.decode(ex["targets"].tolist()) == words
    assert ex["targets_pretokenized"].decode() == words
    assert len(ex["targets"]) == len(actions.split(" ")) + 1  # one piece an action + EOS
