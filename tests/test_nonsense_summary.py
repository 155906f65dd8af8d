"""Tests of the nonsense-summarization task (tasks/synthetic/nonsense_summary.py).

Every transformation's output is checked against an independent reference written here
from the DOCUMENT TEXT alone: the text is split at " . " into sentences, planted tokens
are recognized by the token shapes the generator's docstrings document (regexes below,
not the generator's constants), and the summary part is rebuilt with plain list
operations. The set of transformations an example used is recovered the same way, so the
tests also show that each summary is a function of its document (the task is learnable).
"""
import collections
import functools
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tasks.synthetic import nonsense_summary as ns
from tasks.synthetic import nonsense_words

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = r"(?:[0-9]|[1-9][0-9])"  # 0..99
# Documented token shapes of each transformation's planted tokens, in canonical order.
PATTERNS = {
    "CopyKeywordOneSentence": r"onekw[0-9]",
    "CopyKeywordMultipleSentences": r"multikw[0-9]",
    "CopyKeywordMultipleSentencesShuffled": r"shufkw[0-9]",
    "CopyKeywordMultipleSentencesSorted": r"sortkw[0-9]",
    "CopyQuoted": r"bquote|equote",
    "CopyBulleted": r"bullet",
    "ClassifyKeyword": r"clskw[0-9]",
    "ReplaceClassKeyword": r"repkw[0-8]",
    "MajorityKeyword": r"majkw[12]",
    "TopicSegregation": r"topkw[0-8]",
    "ThresholdNumber": r"thr" + NUM,
    "LargestNumber": r"num" + NUM,
    "ParaphraseWords": r"srcw(?:[0-9]|1[0-9])",
    "JoinClauses": r"join[0-4]",
    "BreakClauses": r"brk[0-4]",
    "TruncateSentence": r"cut[0-9]",
}
NAMES = list(PATTERNS)
INSERTED = {"bullet", "bquote", "equote"}  # markers inserted, not replacing a word


_COMPILED = {n: re.compile(p) for n, p in PATTERNS.items()}


def _is(name, token):
  return _COMPILED[name].fullmatch(token) is not None


def _planted(tokens):
  """The tokens that are not pseudo-words (3 lowercase letters), as a set."""
  return {t for t in tokens if not (len(t) == 3 and t.isalpha() and t.islower())}


def _digits(token):
  return int(re.search(r"[0-9]+$", token).group())


def _sentences(document):
  """The document's sentences as token lists; every sentence must end in " ."."""
  assert document.endswith(" ."), document[-20:]
  parts = document[:-2].split(" . ")
  return [p.split(" ") for p in parts]


def _line(tokens):
  return " ".join(tokens) + " ."


def _with(name, sents):
  """Indices of the sentences holding a token of `name`, in document order."""
  return [k for k, s in enumerate(sents) if any(_is(name, t) for t in s)]


def _only(name, sents):
  (k,) = _with(name, sents)
  (i,) = [i for i, t in enumerate(sents[k]) if _is(name, t)]
  return k, i


# ------------------------------------------------------------------ references


def ref_one(s):
  return _line(s[_only("CopyKeywordOneSentence", s)[0]])


def ref_multi(s):
  return " ".join(_line(s[k]) for k in _with("CopyKeywordMultipleSentences", s))


def ref_shuffled(s):
  return " ".join(_line(s[k]) for k in _with("CopyKeywordMultipleSentencesShuffled", s)[::-1])


def ref_sorted(s):
  keyed = [(_digits(t), k) for k in _with("CopyKeywordMultipleSentencesSorted", s)
           for t in s[k] if _is("CopyKeywordMultipleSentencesSorted", t)]
  return " ".join(_line(s[k]) for _, k in sorted(keyed))


def ref_quoted(s):
  (k,) = _with("CopyQuoted", s)
  sent = s[k]
  return _line(sent[sent.index("bquote") + 1:sent.index("equote")])


def ref_bulleted(s):
  (k,) = [k for k, sent in enumerate(s) if sent[0] == "bullet"]
  return _line(s[k][1:])


def ref_classify(s):
  k, i = _only("ClassifyKeyword", s)
  return "the keyword was " + ("positive" if _digits(s[k][i]) < 5 else "negative") + " ."


def ref_replace_class(s):
  k, i = _only("ReplaceClassKeyword", s)
  out = list(s[k])
  out[i] = f"repclass{_digits(out[i]) // 3}"
  return _line(out)


def ref_majority(s):
  counts = collections.Counter(t for sent in s for t in sent if _is("MajorityKeyword", t))
  assert sum(counts.values()) in (3, 5)
  return f"the majority keyword is {counts.most_common(1)[0][0]} ."


def ref_topics(s):
  lines = []
  for c in range(3):
    lines.append(f"section topic{c} .")
    for sent in s:
      kws = [t for t in sent if _is("TopicSegregation", t)]
      if kws and _digits(kws[0]) // 3 == c:
        lines.append(_line(sent))
  return " ".join(lines)


def ref_threshold(s):
  k, i = _only("ThresholdNumber", s)
  if _digits(s[k][i]) >= 50:
    return "the number was above or equal to threshold ."
  return "the number was below threshold ."


def ref_largest(s):
  nums = [_digits(t) for sent in s for t in sent if _is("LargestNumber", t)]
  return f"the largest number is {max(nums)} ."


def ref_paraphrase(s):
  k, i = _only("ParaphraseWords", s)
  out = list(s[k])
  out[i] = out[i].replace("srcw", "tgtw")
  return _line(out)


def ref_join(s):
  pieces = []
  for k in _with("JoinClauses", s):
    (i,) = [i for i, t in enumerate(s[k]) if _is("JoinClauses", t)]
    pieces += s[k][i:]
  return _line(["the", "combined", "sentence", "is", *pieces])


def ref_break(s):
  (k,) = _with("BreakClauses", s)
  sent = s[k]
  i, j = [p for p, t in enumerate(sent) if _is("BreakClauses", t)]
  return _line(sent[:j]) + " " + _line(sent[:i] + sent[j:])


def ref_truncate(s):
  k, i = _only("TruncateSentence", s)
  return _line(s[k][:i])


REFERENCES = {
    "CopyKeywordOneSentence": ref_one,
    "CopyKeywordMultipleSentences": ref_multi,
    "CopyKeywordMultipleSentencesShuffled": ref_shuffled,
    "CopyKeywordMultipleSentencesSorted": ref_sorted,
    "CopyQuoted": ref_quoted,
    "CopyBulleted": ref_bulleted,
    "ClassifyKeyword": ref_classify,
    "ReplaceClassKeyword": ref_replace_class,
    "MajorityKeyword": ref_majority,
    "TopicSegregation": ref_topics,
    "ThresholdNumber": ref_threshold,
    "LargestNumber": ref_largest,
    "ParaphraseWords": ref_paraphrase,
    "JoinClauses": ref_join,
    "BreakClauses": ref_break,
    "TruncateSentence": ref_truncate,
}


def reference_summary(document):
  """The whole summary from the document text: which transformations (by their tokens),
  in canonical order, and their outputs."""
  sents = _sentences(document)
  tokens = _planted(t for sent in sents for t in sent)
  used = [n for n in NAMES if any(_is(n, t) for t in tokens)]
  return used, [REFERENCES[n](sents) for n in used]


# ------------------------------------------------------------------ samples


@functools.lru_cache(maxsize=None)
def _split_sample(n=1000):
  """The first n train examples, as the registered task draws them."""
  return tuple(ns.generate_example("train", 0, i) for i in range(n))


@functools.lru_cache(maxsize=None)
def _triples_sample(per_triple=3):
  """Every one of the 560 triples of transformations, `per_triple` documents each."""
  out = []
  for c, triple in enumerate(itertools.combinations(NAMES, 3)):
    for j in range(per_triple):
      out.append(ns.build_example(np.random.default_rng([c, j]), list(triple)))
  return tuple(out)


def _all_examples():
  return _split_sample() + _triples_sample()


# ------------------------------------------------------------------ transformations


def test_transformation_list_matches_the_paper():
  assert list(ns.TRANSFORMATION_NAMES) == NAMES
  assert len(NAMES) == 16


@pytest.mark.parametrize("name", NAMES)
def test_transformation_matches_reference(name):
  checked = 0
  for ex in _all_examples():
    if name not in ex.transformations:
      continue
    part = ex.parts[ex.transformations.index(name)]
    assert part == REFERENCES[name](_sentences(ex.document)), (ex.document, part)
    checked += 1
  assert checked >= 300, checked  # 105 triples x 3 + the split's share


def test_summary_is_recoverable_from_document():
  for ex in _all_examples():
    used, parts = reference_summary(ex.document)
    assert tuple(used) == ex.transformations, ex.document
    assert " ".join(parts) == ex.summary
    assert ex.summary == " ".join(ex.parts)
    assert ex.inputs == "summarize: " + ex.document and ex.targets == ex.summary


def test_three_distinct_transformations_in_canonical_order():
  seen = collections.Counter()
  for ex in _split_sample():
    assert len(ex.transformations) == 3 == len(set(ex.transformations))
    assert [NAMES.index(n) for n in ex.transformations] == sorted(
        NAMES.index(n) for n in ex.transformations)
    seen.update(ex.transformations)
  assert set(seen) == set(NAMES)
  # Uniform choice: each of 16 expected in 3/16 of 1000 documents (187.5; sd ~12).
  assert all(130 < c < 250 for c in seen.values()), seen


def test_planting_counts():
  """The documented number of planted tokens of each transformation."""
  for ex in _all_examples():
    sents = _sentences(ex.document)
    planted = _planted(t for sent in sents for t in sent)
    for name in ex.transformations:
      toks = [t for sent in sents for t in sent if t in planted and _is(name, t)]
      holders = _with(name, sents)
      if name in ("CopyKeywordMultipleSentences", "CopyKeywordMultipleSentencesShuffled",
                  "CopyKeywordMultipleSentencesSorted", "JoinClauses"):
        assert len(toks) == 3 == len(holders)
      elif name == "CopyQuoted":
        (k,) = holders
        assert sorted(toks) == ["bquote", "equote"]
        assert sents[k].index("bquote") + 1 < sents[k].index("equote")
      elif name == "MajorityKeyword":
        assert len(toks) in (3, 5) and len(holders) == len(toks)
      elif name == "TopicSegregation":
        assert 2 <= len(toks) <= 5 and len(holders) == len(toks)
      elif name == "LargestNumber":
        assert 1 <= len(toks) <= 4 and len(holders) == len(toks) == len(set(toks))
      elif name == "BreakClauses":
        assert len(toks) == 2 and len(holders) == 1 and len(set(toks)) == 2
      else:
        assert len(toks) == 1
      if name in ("CopyKeywordMultipleSentencesSorted", "JoinClauses"):
        assert len(set(toks)) == 3
      if name == "JoinClauses":  # a joiner is never the last token of its sentence
        assert all(sents[k][-1] not in toks for k in holders)
      if name == "TruncateSentence":
        assert all(sents[k][0] not in toks for k in holders)


def test_heaviest_planting_never_runs_out_of_room():
  heavy = ["MajorityKeyword", "TopicSegregation", "LargestNumber"]
  for j in range(300):
    ex = ns.build_example(np.random.default_rng([99, j]), heavy)
    assert reference_summary(ex.document)[0] == heavy


def test_bad_transformation_names():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="distinct names"):
    ns.build_example(rng, ["CopyQuoted", "NoSuchThing"])
  with pytest.raises(ValueError, match="distinct names"):
    ns.build_example(rng, ["CopyQuoted", "CopyQuoted"])


# ------------------------------------------------------------------ document shape


def test_word_list():
  assert len(ns.WORDS) == 5000 == len(set(ns.WORDS))
  assert all(re.fullmatch(r"[a-z]{3}", w) for w in ns.WORDS)
  # The fixed list: a change here changes all the data.
  assert hashlib.sha256(" ".join(ns.WORDS).encode()).hexdigest()[:16] == WORDS_SHA256_16


WORDS_SHA256_16 = "4431e836c48028dd"


def test_document_shape_and_vocabulary():
  sentence_counts, word_counts, words = set(), set(), collections.Counter()
  for ex in _all_examples():
    assert "  " not in ex.document and ex.document == ex.document.strip()
    assert "  " not in ex.summary and ex.summary.endswith(" .")
    sents = _sentences(ex.document)
    assert 7 <= len(sents) <= 13
    sentence_counts.add(len(sents))
    allowed = [PATTERNS[n] for n in ex.transformations]
    for sent in sents:
      assert "." not in sent
      n_words = sum(t not in INSERTED for t in sent)  # markers are inserted extras
      assert 5 <= n_words <= 15, sent
      word_counts.add(n_words)
      for t in sent:
        if t in nonsense_words.WORD_SET:
          words[t] += 1
        else:  # a planted token of one of this example's transformations
          assert any(re.fullmatch(p, t) for p in allowed), (t, ex.transformations)
  assert sentence_counts == set(range(7, 14))
  assert word_counts == set(range(5, 16))
  # ~2.5e5 draws, uniform over the 5,000 words: Pearson's chi-square statistic has
  # mean 4,999 and sd 100 (df = 4,999); allow 5 sd.
  counts = np.array([words[w] for w in ns.WORDS], dtype=float)
  chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
  assert abs(chi2 - 4999) < 500, chi2


# ------------------------------------------------------------------ splits, determinism


def test_split_sizes_and_bad_indices():
  assert ns.SPLIT_SIZES == {"train": 100_000, "validation": 5_000, "test": 5_000}
  for split, size in ns.SPLIT_SIZES.items():
    ns.generate_example(split, 0, size - 1)
    with pytest.raises(IndexError, match="outside"):
      ns.generate_example(split, 0, size)
  with pytest.raises(ValueError, match="Unknown split"):
    ns.generate_example("dev", 0, 0)
  with pytest.raises(ValueError, match="index must be an int"):
    ns.generate_example("train", 0, 1.0)
  with pytest.raises(ValueError, match="non-negative"):
    ns.generate_example("train", -1, 0)


def test_data_is_pinned():
  """A change of the data (generator or random streams) shows here; then re-measure
  tasks/nonsense.py's MAX_LENGTHS_SHIPPED_VOCAB and update this digest."""
  h = hashlib.sha256()
  for split in ("train", "validation", "test"):
    for i in (0, 1, 2, 999):
      h.update(repr(ns.generate(split, 0, i)).encode())
  assert h.hexdigest()[:16] == "e46f3666eac28eec"


def test_deterministic_and_split_dependent():
  a = [ns.generate("train", 0, i) for i in range(20)]
  assert a == [ns.generate("train", 0, i) for i in range(20)]
  assert len(set(a)) == 20
  assert ns.generate("validation", 0, 3) != ns.generate("test", 0, 3)
  assert ns.generate("train", 1, 3) != ns.generate("train", 0, 3)


def test_same_examples_in_subprocess_without_tensorflow():
  # The subprocess stubs the `tasks` package so neither seqio nor TF loads.
  keys = [("train", 0, 0), ("train", 7, 99_999), ("validation", 0, 4_999), ("test", 3, 17)]
  code = (
      "import json, sys, types\n"
      "pkg = types.ModuleType('tasks'); pkg.__path__ = ['tasks']\n"
      "sys.modules['tasks'] = pkg\n"
      "from tasks.synthetic import nonsense_summary as ns\n"
      f"out = [ns.generate(*k) for k in {keys!r}]\n"
      "assert 'tensorflow' not in sys.modules and 'seqio' not in sys.modules\n"
      "print(json.dumps(out))\n")
  env = dict(os.environ, PYTHONHASHSEED="321")
  res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                       capture_output=True, text=True, check=True, timeout=60)
  assert json.loads(res.stdout) == [list(ns.generate(*k)) for k in keys]


# ------------------------------------------------------------------ SeqIO task


@pytest.fixture(scope="module")
def task():
  import seqio
  import tasks.nonsense  # noqa: F401  (registers nonsense_summary)
  return seqio.get_mixture_or_task("nonsense_summary")


def test_registered_task_tokenizes_and_decodes_back(task):
  import seqio
  from tasks import text_vocab
  vocab = text_vocab.get_vocabulary()
  for feature in ("inputs", "targets"):
    assert task.output_features[feature].vocabulary is vocab
    assert task.output_features[feature].add_eos
  ds = task.get_dataset(sequence_length={"inputs": 1024, "targets": 1024},
                        split="validation", shuffle=False,
                        shard_info=seqio.ShardInfo(index=1, num_shards=3))
  for k, ex in enumerate(ds.take(8).as_numpy_iterator()):
    text = dict(zip(("inputs", "targets"), ns.generate("validation", 0, 1 + 3 * k)))
    for feature in ("inputs", "targets"):
      ids = ex[feature].tolist()
      assert ex[feature + "_pretokenized"].decode() == text[feature]
      assert ids[-1] == 1 and 1 not in ids[:-1] and 0 not in ids  # EOS once, no pad
      assert 2 not in ids  # no <unk>: every character is in the vocabulary
      assert vocab.tokenizer.DecodeIds(ids[:-1]) == text[feature]


def test_source_shards_are_disjoint_and_cover_each_split(task):
  import seqio
  from tasks import nonsense
  for split, size in ns.SPLIT_SIZES.items():
    assert task.source.num_input_examples(split) == size
    shards = [nonsense._dataset_fn(split, False, None, seqio.ShardInfo(k, 3))
              for k in range(3)]
    assert sum(int(ds.cardinality()) for ds in shards) == size  # finite, all indices
    for k, ds in enumerate(shards):
      got = [(ex["inputs"].decode(), ex["targets"].decode())
             for ex in ds.take(2).as_numpy_iterator()]
      assert got == [ns.generate(split, 0, k), ns.generate(split, 0, k + 3)]
  with pytest.raises(ValueError, match="Unknown split"):
    nonsense._dataset_fn("dev", False)


def test_metric_fns_are_exact_match_and_rouge(task):
  from synthpre_jax.evaluation import metrics
  assert list(task.predict_metric_fns) == [metrics.exact_match, metrics.rouge]
  targets = [ns.generate("validation", 0, i)[1] for i in range(4)]
  perfect = {}
  for fn in task.predict_metric_fns:
    perfect.update(fn(targets, list(targets)))
  assert perfect == {"exact_match": 100.0, "rouge1": 100.0, "rouge2": 100.0,
                     "rougeL": 100.0, "rougeLsum": 100.0}
  # Each prediction misses its summary's last sentence.
  cut = [t[:t[:-2].rindex(" . ") + 2] for t in targets]
  partial = {}
  for fn in task.predict_metric_fns:
    partial.update(fn(targets, cut))
  assert partial["exact_match"] == 0.0 and 0.0 < partial["rouge1"] < 100.0


def test_max_lengths_registered_and_respected(task):
  from synthpre_jax.data import pipeline
  from tasks import nonsense, text_vocab
  from synthpre_jax.data import task_metadata
  assert text_vocab.resolve_vocab_path() == text_vocab.DEFAULT_VOCAB_PATH
  assert task_metadata.max_lengths("nonsense_summary") == {"inputs": 520, "targets": 476}
  assert type(task_metadata.max_lengths("nonsense_summary")) is dict  # pinned, not measured
  sp = text_vocab.get_vocabulary().tokenizer
  for i in range(0, 5000, 25):  # a sample; the constants come from all 110,000
    inputs, targets = ns.generate("test", 0, i)
    assert len(sp.EncodeAsIds(inputs)) + 1 <= nonsense.MAX_LENGTHS_SHIPPED_VOCAB["inputs"]
    assert len(sp.EncodeAsIds(targets)) + 1 <= nonsense.MAX_LENGTHS_SHIPPED_VOCAB["targets"]
  assert pipeline.check_feature_lengths(
      "nonsense_summary", {"inputs": 576, "targets": 512}) == []
  with pytest.raises(ValueError, match="TRUNCATE"):
    pipeline.check_feature_lengths("nonsense_summary", {"inputs": 512, "targets": 512})


# ------------------------------------------------------------------ other vocabularies

# Splits shrunk for measuring with a test vocabulary (60 examples, not 110,000).
SMALL_SPLITS = {"train": 40, "validation": 10, "test": 10}


@pytest.fixture(scope="module")
def tiny_spm(tmp_path_factory):
  """A 150-piece SentencePiece model trained here like the shipped one (train_vocab.py)."""
  from tasks.vocab import train_vocab
  texts = [text for i in range(300) for text in ns.generate("train", 0, i)]
  path = tmp_path_factory.mktemp("spm") / "tiny.model"
  path.write_bytes(train_vocab.train(texts, 150))
  return str(path)


def _longest(model_file, sizes):
  """Longest inputs / targets (EOS included), tokenized with sentencepiece directly."""
  import sentencepiece as spm
  sp = spm.SentencePieceProcessor(model_file=model_file)
  pairs = [ns.generate(split, 0, i) for split, n in sizes.items() for i in range(n)]
  return {feature: max(len(sp.EncodeAsIds(pair[k])) + 1 for pair in pairs)
          for k, feature in enumerate(("inputs", "targets"))}


def test_another_vocabulary_gets_measured_max_lengths_and_truncation_checks(
    tiny_spm, tmp_path, monkeypatch):
  import seqio
  from synthpre_jax.data import pipeline
  from tasks import nonsense, text_vocab
  from synthpre_jax.data import task_metadata
  monkeypatch.setenv(text_vocab.VOCAB_PATH_ENV, tiny_spm)  # as with T5's vocabulary
  monkeypatch.setenv("SYNTHPRE_DATA_DIR", str(tmp_path / "cache"))
  monkeypatch.setattr(ns, "SPLIT_SIZES", SMALL_SPLITS)
  name = "nonsense_summary_test_tiny_vocabulary"
  task = nonsense.register_nonsense_summary(name)
  try:
    assert task.output_features["inputs"].vocabulary.vocab_size == 150 + 100
    entry = task_metadata.max_lengths(name)
    assert isinstance(entry, nonsense.MeasuredMaxLengths) and not entry.measured
    assert "first read" in repr(entry)  # registering and printing measure nothing
    want = _longest(tiny_spm, SMALL_SPLITS)
    assert pipeline.check_feature_lengths(name, want) == []
    assert entry.measured and dict(entry) == want
    short = dict(want, targets=want["targets"] - 1)
    with pytest.raises(ValueError, match="TRUNCATE"):
      pipeline.check_feature_lengths(name, short)
    warnings = pipeline.check_feature_lengths(name, short, allow_truncation=True)
    assert len(warnings) == 1 and f"can be {want['targets']} tokens long" in warnings[0]

    path = nonsense.cache_path(text_vocab.get_vocabulary(tiny_spm))
    assert path.startswith(str(tmp_path / "cache" / nonsense.CACHE_FOLDER))
    with open(path) as f:
      assert json.load(f) == want
    # Another process (a fresh entry) reads the cache instead of tokenizing again.
    monkeypatch.setattr(nonsense, "measure_max_lengths",
                        lambda vocabulary: pytest.fail("measured again"))
    fresh = nonsense.max_lengths_for(text_vocab.get_vocabulary(tiny_spm))
    assert dict(fresh) == want
  finally:
    seqio.TaskRegistry.remove(name)
    task_metadata._MAX_LENGTHS.pop(name, None)  # pylint: disable=protected-access


def test_cache_key_follows_vocabulary_and_data(tiny_spm, tmp_path, monkeypatch):
  import shutil
  from tasks import nonsense, text_vocab
  monkeypatch.setenv("SYNTHPRE_DATA_DIR", str(tmp_path))
  tiny = text_vocab.get_vocabulary(tiny_spm)
  shipped = text_vocab.get_vocabulary()
  full = nonsense.cache_path(tiny)
  assert full != nonsense.cache_path(shipped)
  # The same model bytes at another path: the same key.
  copy = tmp_path / "copy.model"
  shutil.copy(tiny_spm, copy)
  assert nonsense.cache_path(text_vocab.get_vocabulary(str(copy))) == full
  monkeypatch.setattr(ns, "SPLIT_SIZES", SMALL_SPLITS)  # other data: another key
  assert nonsense.cache_path(tiny) != full
  # A corrupt cache file is measured again, not trusted.
  path = nonsense.cache_path(tiny)
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    f.write("{not json")
  assert nonsense.cached_max_lengths(tiny) == _longest(tiny_spm, SMALL_SPLITS)


def test_the_shipped_model_keeps_its_pinned_lengths_wherever_it_lies(tmp_path):
  import shutil
  from tasks import nonsense, text_vocab
  copy = tmp_path / "shipped_copy.model"
  shutil.copy(text_vocab.DEFAULT_VOCAB_PATH, copy)
  for path in (text_vocab.DEFAULT_VOCAB_PATH, str(copy)):
    entry = nonsense.max_lengths_for(text_vocab.get_vocabulary(path))
    assert type(entry) is dict and entry == nonsense.MAX_LENGTHS_SHIPPED_VOCAB


@pytest.mark.slow
def test_measuring_the_shipped_vocabulary_reproduces_the_pinned_lengths():
  """All 110,000 examples, about 40 s: the measurement behind other vocabularies gives
  the shipped vocabulary's pinned numbers."""
  from tasks import nonsense, text_vocab
  assert nonsense.measure_max_lengths(text_vocab.get_vocabulary(
      text_vocab.DEFAULT_VOCAB_PATH)) == nonsense.MAX_LENGTHS_SHIPPED_VOCAB
