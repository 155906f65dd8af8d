"""The paper's downstream tasks: text-file loaders, their bad input, SQuAD, Gin files."""

import inspect
import logging
import os
import uuid
from pathlib import Path

import gin
import numpy as np
import pytest
import seqio
import sentencepiece as spm
import tensorflow as tf
import tensorflow_datasets as tfds

from synthpre_jax.cli import gin_utils
from synthpre_jax.data import pipeline
from tasks.downstream import length_report, squad, task_info, text_features, text_files
from tests.test_paper_recipes import spec_finetune_table

REPO = Path(__file__).resolve().parents[1]
TEXT = (
    "the quick brown fox jumps over the lazy dog . who wrote the report ? "
    "public static void main ( string [ ] args ) { return x ; } "
    "set alarm for seven am tomorrow . what is the capital of france ? paris . "
    "cc ( = o ) oc1ccccc1 >> product reactants smiles . "
    "The Daily Mail reported on Monday that STOCKS rose 3 % in London . "
    "train valid test input target Mixed Case 0 1 2 3 4 5 6 7 8 9 short "
)


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
  """A tiny SentencePiece vocabulary (pad 0, EOS 1, unk 2, like T5's) trained here."""
  root = tmp_path_factory.mktemp("spm")
  corpus = root / "corpus.txt"
  words = TEXT.split()
  rng = np.random.default_rng(0)
  corpus.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(400)) + "\n"
                    + TEXT + "\n")
  spm.SentencePieceTrainer.train(
      input=str(corpus), model_prefix=str(root / "sp"), vocab_size=150,
      model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
  return seqio.SentencePieceVocabulary(str(root / "sp.model"))


@pytest.fixture(autouse=True)
def no_data_dir(monkeypatch):
  """Each test starts with neither set_data_dir nor the environment variable set."""
  monkeypatch.delenv(text_files.ENV_VAR, raising=False)
  text_files.set_data_dir(None)
  yield
  text_files.set_data_dir(None)


def _write(path: str, text, mode="w"):
  tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
  with tf.io.gfile.GFile(path, mode) as f:
    f.write(text)


def _make_task_dir(root, task, splits=("train", "valid", "test"), n=3):
  for split in splits:
    lines = [f"{split} input {i} Mixed Case\t{split} target {i} Mixed Case" for i in range(n)]
    _write(f"{root}/{task}/{split}.tsv", "\n".join(lines) + "\n")


def _source_rows(task_name, split):
  task = seqio.get_mixture_or_task(task_name)
  ds = task.source.get_dataset(split=split, shuffle=False)
  return [(ex["inputs"].decode(), ex["targets"].decode()) for ex in ds.as_numpy_iterator()]


def _unique(prefix):
  return f"test_{prefix}_{uuid.uuid4().hex[:8]}"


def test_paper_tasks_are_registered_with_their_metrics():
  for name in text_files.TEXT_FILE_TASKS + ("squad",):
    task = seqio.get_mixture_or_task(name)
    assert set(task.splits) == {"train", "validation", "test"}
    assert task.output_features["targets"].add_eos
    assert task.output_features["inputs"].vocabulary is text_features.TEXT_VOCABULARY
  names = {n: [f.__name__ for f in seqio.get_mixture_or_task(n).metric_fns]
           for n in task_info.TASK_INFO}
  assert names == {"code_translation": ["exact_match"], "mtop": ["exact_match"],
                   "webqsp": ["exact_match"], "retrosynthesis": ["exact_match"],
                   "squad": ["squad"], "cnndm_10k": ["rouge"]}
  assert "mtop" in pipeline.resolve_task("mtop").name  # reachable through `import tasks`


def test_loader_reads_splits_and_maps_validation_to_valid(tmp_path):
  _make_task_dir(str(tmp_path), "mtop")
  text_files.set_data_dir(str(tmp_path))
  assert _source_rows("mtop", "validation") == [
      (f"valid input {i} Mixed Case", f"valid target {i} Mixed Case") for i in range(3)]
  assert _source_rows("mtop", "train")[0] == ("train input 0 Mixed Case",
                                              "train target 0 Mixed Case")
  assert _source_rows("mtop", "test")[2][1] == "test target 2 Mixed Case"
  assert text_files.split_candidates("mtop", "validation", "gs://b/d") == [
      "gs://b/d/mtop/valid.txt", "gs://b/d/mtop/valid.tsv"]
  # Through the registered task, tokenized with the project's text vocabulary.
  task = seqio.get_mixture_or_task("mtop")
  ex = next(task.get_dataset(sequence_length={"inputs": 64, "targets": 64},
                             split="validation", shuffle=False).as_numpy_iterator())
  vocab = task.output_features["targets"].vocabulary
  assert ex["targets"][-1] == vocab.eos_id == 1
  assert vocab.decode(ex["targets"].tolist()) == "valid target 0 Mixed Case"
  assert ex["inputs_pretokenized"] == b"valid input 0 Mixed Case"


def test_env_var_is_used_and_set_data_dir_wins(tmp_path, monkeypatch):
  _make_task_dir(str(tmp_path / "a"), "webqsp", n=2)
  _make_task_dir(str(tmp_path / "b"), "webqsp", n=4)
  monkeypatch.setenv(text_files.ENV_VAR, str(tmp_path / "a"))
  assert len(_source_rows("webqsp", "train")) == 2
  text_files.set_data_dir(str(tmp_path / "b"))
  assert len(_source_rows("webqsp", "train")) == 4


def _write_rows(path, prefix, n=3):
  _write(path, "".join(f"{prefix} input {i}\t{prefix} target {i}\n" for i in range(n)))


def test_papers_released_txt_files_are_read_through_the_registered_tasks(tmp_path, vocab):
  tasks = ("code_translation", "mtop", "webqsp", "retrosynthesis")
  for task in tasks:
    for name in ("train.txt", "valid.txt", "test.txt"):
      _write_rows(f"{tmp_path}/{task}/{name}", f"{task} {name}")
  text_files.set_data_dir(str(tmp_path))
  for task in tasks:
    for split, name in (("train", "train.txt"), ("validation", "valid.txt"),
                        ("test", "test.txt")):
      assert _source_rows(task, split) == [
          (f"{task} {name} input {i}", f"{task} {name} target {i}") for i in range(3)]
  # Tokenized by the registered task, EOS appended, the text kept.
  ex = next(seqio.get_mixture_or_task("webqsp").get_dataset(
      sequence_length={"inputs": 64, "targets": 64}, split="validation", shuffle=False
  ).as_numpy_iterator())
  assert ex["targets"][-1] == 1
  assert ex["targets_pretokenized"] == b"webqsp valid.txt target 0"


def test_cnndm_reads_the_papers_lowercase_files(tmp_path):
  for name in ("lowercase_train.txt", "lowercase_val.txt", "lowercase_test.txt"):
    _write(f"{tmp_path}/cnndm_10k/{name}",
           f"The {name} Article\tIts {name} SUMMARY\nsecond {name}\tline\n")
  text_files.set_data_dir(str(tmp_path))
  for split, name in (("train", "lowercase_train.txt"), ("validation", "lowercase_val.txt"),
                      ("test", "lowercase_test.txt")):
    assert _source_rows("cnndm_10k", split) == [
        (f"the {name} article", f"its {name} summary"), (f"second {name}", "line")]
  task = seqio.get_mixture_or_task("cnndm_10k")
  ex = next(task.get_dataset(sequence_length={"inputs": 64, "targets": 64},
                             split="validation", shuffle=False).as_numpy_iterator())
  assert ex["inputs_pretokenized"] == b"the lowercase_val.txt article"
  assert text_files.split_file_names("cnndm_10k", "validation") == (
      "lowercase_val.txt", "valid.txt", "valid.tsv")


def test_lowercase_names_belong_to_cnndm_only(tmp_path):
  _write_rows(f"{tmp_path}/mtop/lowercase_train.txt", "x")
  text_files.set_data_dir(str(tmp_path))
  assert text_files.split_file_names("mtop", "train") == ("train.txt", "train.tsv")
  with pytest.raises(FileNotFoundError, match="holds only: lowercase_train.txt"):
    _source_rows("mtop", "train")


def test_several_files_for_one_split_must_be_identical(tmp_path, caplog):
  _write_rows(f"{tmp_path}/mtop/train.txt", "same")
  _write_rows(f"{tmp_path}/mtop/train.tsv", "same")
  _write_rows(f"{tmp_path}/cnndm_10k/lowercase_test.txt", "one")
  _write_rows(f"{tmp_path}/cnndm_10k/test.tsv", "two")
  _write_rows(f"{tmp_path}/cnndm_10k/valid.txt", "valid")
  text_files.set_data_dir(str(tmp_path))
  # Identical copies: the first name in the documented order is read.
  assert text_files.read_split("mtop", "train").path == f"{tmp_path}/mtop/train.txt"
  assert len(_source_rows("mtop", "train")) == 3
  assert _source_rows("cnndm_10k", "validation")[0][0] == "valid input 0"
  # Different files for one split: refused, both named, when the dataset is built.
  with pytest.raises(ValueError, match="two different files") as e:
    seqio.get_mixture_or_task("cnndm_10k").get_dataset(
        sequence_length=None, split="test", shuffle=False)
  assert f"{tmp_path}/cnndm_10k/lowercase_test.txt" in str(e.value)
  assert f"{tmp_path}/cnndm_10k/test.tsv" in str(e.value)


def test_a_missing_split_names_every_file_looked_for(tmp_path):
  _write_rows(f"{tmp_path}/cnndm_10k/lowercase_train.txt", "t")
  text_files.set_data_dir(str(tmp_path))
  with pytest.raises(FileNotFoundError) as e:
    seqio.get_mixture_or_task("cnndm_10k").get_dataset(
        sequence_length=None, split="test", shuffle=False)
  message = str(e.value)
  for name in ("lowercase_test.txt", "test.txt", "test.tsv"):
    assert f"{tmp_path}/cnndm_10k/{name}" in message
  assert "holds only: lowercase_train.txt" in message and "'test'" in message
  with pytest.raises(FileNotFoundError) as e:
    _source_rows("webqsp", "validation")
  assert f"{tmp_path}/webqsp/valid.txt or {tmp_path}/webqsp/valid.tsv" in str(e.value)


def test_cnndm_is_lower_cased_by_the_loader_and_others_are_not(tmp_path):
  for task in ("cnndm_10k", "code_translation"):
    _make_task_dir(str(tmp_path), task)
  text_files.set_data_dir(str(tmp_path))
  assert _source_rows("cnndm_10k", "test")[0] == ("test input 0 mixed case",
                                                  "test target 0 mixed case")
  assert _source_rows("code_translation", "test")[0] == ("test input 0 Mixed Case",
                                                         "test target 0 Mixed Case")


def test_full_task_tokenizes_appends_eos_and_keeps_text(tmp_path, vocab):
  _make_task_dir(str(tmp_path), "mtop")
  name = _unique("mtop")
  task = text_files.register_text_file_task(name, source_task="mtop", vocabulary=vocab,
                                            data_dir=str(tmp_path))
  try:
    ex = next(task.get_dataset(sequence_length=None, split="validation", shuffle=False
                               ).as_numpy_iterator())
    assert ex["targets"][-1] == 1 and vocab.decode(ex["targets"].tolist()) == \
        "valid target 0 Mixed Case"
    assert ex["inputs_pretokenized"] == b"valid input 0 Mixed Case"
    assert task.postprocess_fn("x", example=ex, is_target=True) == \
        "valid target 0 Mixed Case"
    assert task.postprocess_fn(b"pred", example=ex, is_target=False) == "pred"
  finally:
    seqio.TaskRegistry.remove(name)


def test_unset_missing_dir_and_missing_split_say_what_to_fix(tmp_path):
  with pytest.raises(ValueError, match="DOWNSTREAM_DATA_DIR") as e:
    _source_rows("mtop", "train")
  assert text_files.ENV_VAR in str(e.value)

  text_files.set_data_dir(str(tmp_path / "nowhere"))
  with pytest.raises(FileNotFoundError) as e:
    _source_rows("mtop", "train")
  assert f"{tmp_path}/nowhere/mtop/train.tsv" in str(e.value)
  assert "does not exist" in str(e.value) and text_files.ENV_VAR in str(e.value)

  _make_task_dir(str(tmp_path), "retrosynthesis", splits=("train", "valid"))
  text_files.set_data_dir(str(tmp_path))
  with pytest.raises(FileNotFoundError) as e:  # raised when the dataset is built
    seqio.get_mixture_or_task("retrosynthesis").get_dataset(
        sequence_length=None, split="test", shuffle=False)
  message = str(e.value)
  assert f"{tmp_path}/retrosynthesis/test.tsv" in message and "'test'" in message
  assert "holds only: train.tsv, valid.tsv" in message

  with pytest.raises(FileNotFoundError, match="has no folder mtop/"):
    _source_rows("mtop", "validation")


def test_bad_lines_are_counted_reported_and_skipped(tmp_path, caplog):
  lines = [b"good 1\tout 1",           # 1
           b"no tab here",             # 2
           b"two\ttabs\there",         # 3
           b"",                        # 4 (blank)
           b"empty target\t",          # 5
           b"\xff\xfe\tnot utf8",      # 6
           b"good 2\tout 2\r",         # 7 (CRLF is fine)
           b"\tempty input",           # 8
           b"good 3\tout 3"]           # 9 (no final newline)
  _write(f"{tmp_path}/code_translation/train.tsv", b"\n".join(lines), mode="wb")
  text_files.set_data_dir(str(tmp_path))
  with caplog.at_level(logging.WARNING, logger=text_files.__name__):
    parsed = text_files.read_split("code_translation", "train")
    again = text_files.read_split("code_translation", "train")
  assert again is parsed
  assert parsed.inputs == ("good 1", "good 2", "good 3")
  assert parsed.targets == ("out 1", "out 2", "out 3")
  assert parsed.line_numbers == (1, 7, 9)
  assert parsed.bad_lines == (2, 3, 4, 5, 6, 8)
  warnings = [r.getMessage() for r in caplog.records]
  assert len(warnings) == 1, warnings  # reported once, when the file is read
  assert "6 of 9 lines" in warnings[0] and "lines 2, 3, 4, 5, 6, ...)" in warnings[0]
  assert "train.tsv" in warnings[0]

  # Several epochs through the registered task: no crash, only good examples.
  ds = seqio.get_mixture_or_task("code_translation").source.get_dataset(
      split="train", shuffle=True, seed=3).repeat(4)
  rows = [ex["inputs"].decode() for ex in ds.as_numpy_iterator()]
  assert sorted(rows) == sorted(["good 1", "good 2", "good 3"] * 4)


def test_a_file_without_a_usable_line_is_an_error(tmp_path):
  _write(f"{tmp_path}/mtop/train.tsv", "no tabs\nat all\n")
  text_files.set_data_dir(str(tmp_path))
  with pytest.raises(ValueError, match="no usable 'input<TAB>target' line.*2 of 2 lines"):
    text_files.read_split("mtop", "train")


def test_training_batches_from_a_text_task_over_several_epochs(tmp_path, vocab):
  _make_task_dir(str(tmp_path), "mtop", n=5)
  name = _unique("mtop")
  text_files.register_text_file_task(name, source_task="mtop", vocabulary=vocab,
                                     data_dir=str(tmp_path))
  try:
    batches = pipeline.get_batches(
        task_name=name, feature_lengths={"inputs": 8, "targets": 6}, split="train",
        global_batch_size=4, seed=0, shuffle=True, process_index=0, process_count=1)
    seen = [next(batches) for _ in range(6)]  # 24 examples from 5: several epochs
    assert all(b["encoder_input_tokens"].shape == (4, 8) for b in seen)
    # Overlong examples are truncated with EOS kept last (the stated policy).
    assert all((b["decoder_target_tokens"][:, -1] == 1).all() for b in seen)
  finally:
    seqio.TaskRegistry.remove(name)


def test_length_report_counts_overlong_examples_and_lossy_targets(tmp_path, vocab):
  rows = ["short\tbrown fox", "the quick brown fox jumps over the lazy dog\tfox",
          "who wrote the report ?\tthe quick brown fox jumps over the lazy dog . paris",
          "short\tcaf\u00e9  au lait"]  # 'é' is not in the vocabulary; two spaces
  _write(f"{tmp_path}/webqsp/valid.tsv", "\n".join(rows) + "\n")
  name = _unique("webqsp")
  text_files.register_text_file_task(name, source_task="webqsp", vocabulary=vocab,
                                     data_dir=str(tmp_path))
  try:
    lengths = [tuple(len(vocab.encode(side)) + 1 for side in r.split("\t")) for r in rows]
    cut = {"inputs": sorted(l[0] for l in lengths)[-2], "targets": lengths[0][1]}
    report = length_report.length_report(name, "validation", cut)
    assert report.examples == 4
    assert report.too_long == {"inputs": sum(l[0] > cut["inputs"] for l in lengths),
                               "targets": sum(l[1] > cut["targets"] for l in lengths)}
    assert report.too_long["inputs"] == 1 and report.too_long["targets"] >= 2
    assert report.longest == {"inputs": max(l[0] for l in lengths),
                              "targets": max(l[1] for l in lengths)}
    assert report.lossy_targets == 1
    message = report.message()
    assert "truncates" in message and "full target text" in message
    assert "1 of 4 targets do not decode back" in message
    roomy = {"inputs": 1000, "targets": 1000}
    assert length_report.length_report(name, "validation", roomy).too_long == \
        {"inputs": 0, "targets": 0}
    assert length_report.overlong_warnings(name, cut, splits=("validation",)) == [message]
    assert length_report.overlong_warnings("set_tiny", cut) == []  # not a downstream task
  finally:
    seqio.TaskRegistry.remove(name)
    text_features.DOWNSTREAM_TASK_NAMES.discard(name)


def test_lazy_vocabulary_loads_on_first_use_and_delegates(vocab):
  calls = []

  def factory():
    calls.append(1)
    return vocab

  lazy = text_features.LazyVocabulary(factory)
  feature = seqio.Feature(lazy, add_eos=True)  # registering a task does not load it
  assert not calls and "not loaded" in repr(lazy)
  assert feature.vocabulary.vocab_size == vocab.vocab_size and calls == [1]
  assert (lazy.eos_id, lazy.pad_id, lazy.unk_id) == (1, 0, 2)
  ids = lazy.encode("the lazy dog")
  assert ids == vocab.encode("the lazy dog") and lazy.decode(ids + [1, 5]) == "the lazy dog"
  assert lazy.decode_tf(tf.constant(ids + [1])).numpy() == b"the lazy dog"
  assert lazy == vocab and lazy == text_features.LazyVocabulary(lambda: vocab)
  assert calls == [1]


def test_reads_through_tf_io_gfile_on_a_non_local_filesystem():
  # TensorFlow's in-memory filesystem: reachable through tf.io.gfile only, like gs://.
  root = f"ram://downstream_{uuid.uuid4().hex[:8]}"
  _make_task_dir(root, "retrosynthesis", splits=("train", "valid"))
  text_files.set_data_dir(root)
  assert _source_rows("retrosynthesis", "validation")[1][0] == "valid input 1 Mixed Case"
  with pytest.raises(FileNotFoundError, match=f"{root}/retrosynthesis/test.tsv"):
    _source_rows("retrosynthesis", "test")
  source = inspect.getsource(text_files)
  assert "open(" not in source and "os.path" not in source


def test_pad_punctuation_matches_t5():
  out = squad.pad_punctuation(tf.constant(["Who's  there?(1990)", " a_b-c "]))
  assert [s.decode() for s in out.numpy()] == ["Who ' s there ? ( 1990 )", "a_b - c"]


def test_squad_from_mocked_tfds_keeps_every_answer(vocab):
  name = _unique("squad")
  task = squad.register_squad_task(name, vocabulary=vocab)
  try:
    with tfds.testing.mock_data(num_examples=6):
      raw = list(tfds.load("squad/v1.1", split="validation").as_numpy_iterator())
      raw = [r for r in raw if len(r["answers"]["text"])]
      got = list(task.get_dataset(sequence_length=None, split="test", shuffle=False,
                                  num_epochs=1).as_numpy_iterator())
      lengths = {"inputs": 512, "targets": 128}
      train_ds = task.get_dataset(sequence_length=lengths, split="train", shuffle=False)
      train = next(train_ds.as_numpy_iterator())
      # Packed model features (the paper packs SQuAD): the extra 'answers' feature is
      # dropped by the feature converter.
      packed = next(seqio.EncDecFeatureConverter(pack=True)(train_ds, lengths)
                    .as_numpy_iterator())
    assert raw and len(got) == len(raw)
    pad = lambda s: squad.pad_punctuation(tf.constant(s)).numpy()  # noqa: E731
    for r, ex in zip(raw, got):
      want_inputs = b"question: " + pad(r["question"]) + b" context: " + pad(r["context"])
      assert ex["inputs_pretokenized"] == want_inputs
      assert list(ex["answers"]) == [pad(a) for a in r["answers"]["text"]]
      assert ex["targets_pretokenized"] == ex["answers"][0]
      gold = task.postprocess_fn("ignored", example=ex, is_target=True)
      assert gold == [a.decode() for a in ex["answers"]] and len(gold) == \
          len(r["answers"]["text"])
      assert task.postprocess_fn(b"an answer", example=ex) == "an answer"
    assert train["inputs_pretokenized"].startswith(b"question: ")
    assert train["targets"][-1] == 1
    assert packed["encoder_input_tokens"].shape == (512,) and "answers" not in packed
    assert packed["encoder_segment_ids"].max() >= 1
    # The decoded-to-str examples of synthpre_jax.data.examples work too.
    assert task.postprocess_fn("x", example={"answers": ["a", "b"]}, is_target=True) == \
        ["a", "b"]
  finally:
    seqio.TaskRegistry.remove(name)
    text_features.DOWNSTREAM_TASK_NAMES.discard(name)


def test_squad_without_prepared_data_says_how_to_prepare_and_downloads_nothing(
    tmp_path, monkeypatch):
  def no_download(*args, **kwargs):
    raise AssertionError("download_and_prepare must not be called")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
  source = squad.ReadOnlyTfdsSource(squad.TFDS_NAME, squad.SPLITS,
                                    tfds_data_dir=str(tmp_path / "tfds"))
  assert set(source.splits) == {"train", "validation", "test"}
  with pytest.raises(FileNotFoundError, match="is not prepared.*tfds build squad/v1.1") as e:
    source.get_dataset("train", shuffle=False)
  assert "must not be called" not in str(e.value)
  assert source.tfds_dataset.name.startswith("squad/v1.1")


@pytest.mark.parametrize("task", list(task_info.TASK_INFO) + ["cnndm_10k_t5_1_1"])
def test_finetune_gin_files_carry_the_papers_recipe(task):
  """The recipe numbers live in the Gin files only: compared with the spec's table."""
  import gin
  from synthpre_jax.cli import train  # noqa: F401  (registers the configurables)

  info = task_info.TASK_INFO[task.replace("_t5_1_1", "")]
  assert info.gin_file == f"finetune/{info.name}.gin"
  gin_utils.parse_gin([str(REPO / "gin" / "finetune" / f"{task}.gin")],
                      ["MODEL_DIR = '/tmp/x'", "INITIAL_CHECKPOINT_PATH = '/tmp/y'"],
                      [str(REPO / "gin")])
  want = spec_finetune_table()[info.name]
  bound = gin.get_bindings("train")
  assert bound["mixture_or_task_name"] == info.name
  assert dict(bound["task_feature_lengths"]) == {"inputs": want["inputs"],
                                                 "targets": want["targets"]}
  assert bound["batch_size"] == want["batch"]
  assert bound["train_steps"] == want["steps"]
  assert bound["pack"] == want["packed"]
  optimizer, model = gin.get_bindings("OptimizerConfig"), gin.get_bindings("T5Config")
  assert optimizer["learning_rate"] == want["lr"]
  assert optimizer["schedule"] == "constant"
  v1_1 = task == "cnndm_10k_t5_1_1"
  assert tuple(model["mlp_activations"]) == (("gelu", "linear") if v1_1 else ("relu",))
  assert model["num_encoder_layers"] == (8 if v1_1 else 6)
  assert model["logits_via_embedding"] is not v1_1
  assert model["vocab_size"] == 32128 and model["dropout_rate"] == 0.1
  gin.clear_config()


def test_train_cli_reads_downstream_data_dir_from_gin(tmp_path, capsys):
  """--gin.DOWNSTREAM_DATA_DIR reaches the loaders: a missing split names its file."""
  from synthpre_jax.cli import train as train_cli
  (tmp_path / "mtop").mkdir()
  (tmp_path / "mtop" / "valid.tsv").write_text("a\tb\n")
  rc = train_cli.main(["--gin_file=gin/finetune/mtop.gin",
                       f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                       "--gin.INITIAL_CHECKPOINT_PATH=None",
                       # The recipe asks for T5's vocabulary; this test has the shipped one.
                       "--gin.REQUIRED_TEXT_VOCABULARY=None",
                       f"--gin.DOWNSTREAM_DATA_DIR='{tmp_path}'"])
  assert rc == 1
  err = capsys.readouterr().err
  assert str(tmp_path / "mtop" / "train.tsv") in err
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_old_config_gin_binding_train_downstream_data_dir_still_works(tmp_path):
  """config.gin files written before the data directory became the Gin binding
  `downstream_data_dir.path` set `train.downstream_data_dir`: they still parse (evaluate
  reads them), and the value reaches the loaders."""
  gin_utils.parse_gin([str(REPO / "gin" / "finetune" / "mtop.gin")],
                      ["MODEL_DIR = '/tmp/x'", "INITIAL_CHECKPOINT_PATH = None",
                       f"train.downstream_data_dir = '{tmp_path}'"], [str(REPO / "gin")])
  try:
    gin_utils.forward_legacy_data_dir(gin.get_bindings("train")["downstream_data_dir"])
    assert text_files.get_data_dir() == str(tmp_path)
  finally:
    gin.clear_config()


@pytest.mark.parametrize("task", ["squad", "mtop"])
def test_downstream_data_dir_is_a_macro_of_every_finetune_recipe(task, tmp_path):
  """A study passes DOWNSTREAM_DATA_DIR to all of its fine-tuning runs: no recipe may
  refuse it as an unused macro."""
  gin_utils.parse_gin([str(REPO / "gin" / "finetune" / f"{task}.gin")],
                      ["MODEL_DIR = '/tmp/x'", "INITIAL_CHECKPOINT_PATH = None",
                       f"DOWNSTREAM_DATA_DIR = '{tmp_path}'"], [str(REPO / "gin")])
  try:
    assert text_files.get_data_dir() == str(tmp_path)
  finally:
    gin.clear_config()
