"""Natural pre-training (span corruption), text classification tasks (training subsets:
tests/test_subsets.py)."""
from __future__ import annotations

import itertools

import gin
import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers the project's tasks)
from synthpre_jax.cli import gin_utils
from synthpre_jax.cli import train as train_cli  # noqa: F401  (registers the Gin configurables)
from synthpre_jax.data import pipeline
from tasks import classification, corpus, natural, text_vocab
from tasks.downstream import text_features
from tasks.synthetic import span_corruption

EOS = 1


@pytest.fixture(scope="module")
def vocab():
  return text_vocab.get_vocabulary()


def _examples(task_name, split, sequence_length, **kwargs):
  task = seqio.get_mixture_or_task(task_name)
  kwargs.setdefault("shuffle", False)
  ds = task.get_dataset(sequence_length=sequence_length, split=split, num_epochs=1,
                        **kwargs)
  return list(ds.as_numpy_iterator())


def _strip_eos(x):
  x = np.asarray(x)
  assert x[-1] == EOS and EOS not in x[:-1]
  return x[:-1]


# --- span corruption: sizes, sentinels, properties ------------------------------------

def test_chunk_length_is_t5s_random_spans_helper():
  assert natural.chunk_length(512) == 568  # T5's value
  assert natural.feature_lengths(512) == {"inputs": 512, "targets": 114}
  assert natural.feature_lengths(128) == {"inputs": 128, "targets": 29}
  for inputs_length in itertools.chain(range(2, 200), [256, 511, 512, 1024, 2048]):
    n = natural.chunk_length(inputs_length)
    assert natural.corrupted_lengths_with_eos(n)[0] <= inputs_length
    assert natural.corrupted_lengths_with_eos(n + 1)[0] > inputs_length
  for bad in (1, 0, True, 12.0):
    with pytest.raises((ValueError, TypeError)):
      natural.chunk_length(bad)


def test_sentinels_count_down_from_the_vocabulary_top(vocab):
  # seqio.SentencePieceVocabulary(extra_ids=100): <extra_id_0> is the last id.
  top = vocab.vocab_size - 1
  assert top == 8099 and vocab.extra_ids == 100
  for j in (0, 1, 2, 99):
    assert vocab.decode([top - j]) == f"<extra_id_{j}>"
  rng = np.random.default_rng(0)
  tokens = rng.integers(3, 8000, size=568).astype(np.int32)
  inputs, targets = natural.corrupt_chunk(tokens, top)
  num_spans = span_corruption.noise_counts(568, 0.15, 3.0)[1]
  want = list(range(top, top - num_spans, -1))
  assert [t for t in inputs if t >= 8000] == want
  assert [t for t in targets if t >= 8000] == want
  assert targets[0] == top  # targets = s0 noise_0 s1 noise_1 ...


def test_span_corruption_properties_over_many_chunks():
  top = 8099
  rng = np.random.default_rng(1)
  noise = spans = total = 0
  span_lengths = []
  for i in range(400):
    n = 568 if i % 4 else int(rng.integers(1, 568))
    tokens = rng.integers(2, 8000, size=n).astype(np.int32)
    inputs, targets = natural.corrupt_chunk(tokens, top)
    np.testing.assert_array_equal(natural.reconstruct(inputs, targets, top), tokens)
    # Pure function of the chunk: the same tokens give the same corruption.
    again = natural.corrupt_chunk(tokens.copy(), top)
    np.testing.assert_array_equal(again[0], inputs)
    np.testing.assert_array_equal(again[1], targets)
    s = int(np.sum(targets >= 8000))
    noise += len(targets) - s
    spans += s
    total += n
    is_sentinel = np.concatenate([targets >= 8000, [True]])
    span_lengths += list(np.diff(np.flatnonzero(is_sentinel)) - 1)
  assert abs(noise / total - 0.15) < 0.005
  assert abs(noise / spans - 3.0) < 0.1
  assert min(span_lengths) == 1 and max(span_lengths) >= 8  # random lengths, mean ~3
  # A different DATA_SEED gives a different mask.
  tokens = rng.integers(2, 8000, size=568).astype(np.int32)
  a = natural.corrupt_chunk(tokens, top, seed=0)[0]
  b = natural.corrupt_chunk(tokens, top, seed=1)[0]
  assert not np.array_equal(a, b)


def test_corpus_task_reconstructs_the_tokenized_corpus(vocab):
  lengths = natural.feature_lengths(128)
  got = _examples("corpus_span_corruption", "validation", lengths)
  chunk = natural.chunk_length(128)
  chunks = [natural.reconstruct(_strip_eos(x["inputs"]), _strip_eos(x["targets"]), 8099)
            for x in got]
  paragraphs = corpus.paragraphs("validation")
  want = np.concatenate([vocab.encode(p) for p in paragraphs]).astype(np.int32)
  np.testing.assert_array_equal(np.concatenate(chunks), want)
  # 128 paragraphs per group: only the last chunk of each group is short.
  groups = -(-len(paragraphs) // natural.DOCS_PER_GROUP)
  assert sum(len(c) < chunk for c in chunks) <= groups
  assert sum(len(c) == chunk for c in chunks) >= len(chunks) - groups
  for x, c in zip(got, chunks):
    want_in, want_tg = natural.corrupted_lengths_with_eos(len(c))
    assert (len(x["inputs"]), len(x["targets"])) == (want_in, want_tg)
    assert len(x["inputs"]) <= lengths["inputs"] and len(x["targets"]) <= lengths["targets"]
  assert set(got[0]) == {"inputs", "targets"}


def test_corpus_train_stream_is_deterministic_and_masks_depend_on_content_only():
  lengths = natural.feature_lengths(64)
  task = seqio.get_mixture_or_task("corpus_span_corruption")

  def first(seed, n=60, shard_info=None):
    ds = task.get_dataset(sequence_length=lengths, split="train", shuffle=True,
                          seed=seed, num_epochs=None, shard_info=shard_info)
    return list(ds.take(n).as_numpy_iterator())

  a, b, c = first(3), first(3), first(4)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["inputs"], y["inputs"])
    np.testing.assert_array_equal(x["targets"], y["targets"])
  assert any(not np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(a, c))
  for x in a + c + first(3, 20, seqio.ShardInfo(1, 2)):
    inputs, targets = _strip_eos(x["inputs"]), _strip_eos(x["targets"])
    tokens = natural.reconstruct(inputs, targets, 8099)
    again = natural.corrupt_chunk(tokens, 8099)
    np.testing.assert_array_equal(again[0], inputs)
    np.testing.assert_array_equal(again[1], targets)


def test_span_corruption_rejects_short_targets_and_missing_sentinels():
  with pytest.raises(ValueError, match=r"targets'\] >= 114"):
    _examples("corpus_span_corruption", "validation", {"inputs": 512, "targets": 100})
  with pytest.raises(ValueError, match="only 100 sentinel"):
    _examples("corpus_span_corruption", "validation", {"inputs": 8192, "targets": 8192})


def test_c4_task_from_mocked_tfds(vocab):
  task = seqio.get_mixture_or_task("c4_span_corruption")
  assert task.source.tfds_dataset.name == "c4/en:3.*.*"
  lengths = natural.feature_lengths(64)
  with tfds.testing.mock_data(num_examples=40):
    raw = list(task.source.get_dataset("validation", shuffle=False).as_numpy_iterator())
    got = _examples("c4_span_corruption", "validation", lengths)
  want = np.concatenate([vocab.encode(r["text"].decode()) for r in raw])
  chunks = [natural.reconstruct(_strip_eos(x["inputs"]), _strip_eos(x["targets"]), 8099)
            for x in got]
  np.testing.assert_array_equal(np.concatenate(chunks), want)
  assert max(len(x["inputs"]) for x in got) == lengths["inputs"]


def test_missing_tfds_data_says_how_to_prepare(tmp_path, monkeypatch):
  def no_download(*args, **kwargs):
    raise AssertionError("download_and_prepare must not be called")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
  c4 = natural.ReadOnlyTfdsSource(natural.C4_TFDS_NAME, natural.C4_SPLITS,
                                  tfds_data_dir=str(tmp_path / "tfds"))
  with pytest.raises(FileNotFoundError, match=r"not prepared.*tfds build c4/en.*"
                                              r"TFDS_DATA_DIR"):
    c4.get_dataset("train", shuffle=False)
  imdb = natural.ReadOnlyTfdsSource("imdb_reviews/plain_text:1.*.*", classification.SPLITS,
                                    tfds_data_dir=str(tmp_path / "tfds"))
  with pytest.raises(FileNotFoundError, match="tfds build imdb_reviews/plain_text"):
    imdb.get_dataset("validation", shuffle=False)


# --- classification --------------------------------------------------------------------

def test_label_words_are_distinct_words_of_the_text_vocabulary(vocab):
  pieces = {"negative": 1, "positive": 1, "world": 1, "sports": 4, "business": 4,
            "technology": 2}  # as the module docstring says
  for info in classification.CLASSIFICATION_TASKS.values():
    assert info.num_classes == len(info.tfds_label_names)
    ids = [vocab.encode(w) for w in info.label_words]
    assert [vocab.decode(i) for i in ids] == list(info.label_words)
    assert len({i[0] for i in ids}) == info.num_classes  # first token decides
    for word, i in zip(info.label_words, ids):
      assert len(i) == pieces[word] and word == word.lower()
  assert classification.CLASSIFICATION_TASKS["ag_news_subset"].tfds_label_names == (
      "World", "Sports", "Business", "Sci/Tech")


def test_clean_text():
  raw = tf.constant(['A  great<br /><br />movie.\\nReally ""good"" ', "x<BR>y"])
  assert [s.decode() for s in classification.clean_text(raw).numpy()] == [
      'A great movie. Really ""good""', "x y"]
  assert classification.clean_text(raw, csv_quotes=True).numpy()[0].decode() == (
      'A great movie. Really "good"')


def test_splits_carve_validation_from_train():
  assert classification.SPLITS == {"train": "train[:90%]", "validation": "train[90%:]",
                                   "test": "test"}
  for name, info in classification.CLASSIFICATION_TASKS.items():
    task = seqio.get_mixture_or_task(name)
    assert set(task.source.splits) == {"train", "validation", "test"}
    assert task.source.tfds_dataset.name == info.tfds_name
    assert classification.accuracy in task.metric_fns
    assert name in text_features.DOWNSTREAM_TASK_NAMES


@pytest.mark.parametrize("name", sorted(  # the others: tests/test_pretrain_or_not.py
    n for n, i in classification.CLASSIFICATION_TASKS.items() if i.example_fn is None))
def test_classification_tasks_from_mocked_tfds(name, vocab):
  info = classification.CLASSIFICATION_TASKS[name]
  task = seqio.get_mixture_or_task(name)
  with tfds.testing.mock_data(num_examples=12):
    raw = list(task.source.get_dataset("test", shuffle=False).as_numpy_iterator())
    got = _examples(name, "test", None)
    records = classification.classification_examples(name, "test", limit=5)
  assert len(got) == len(raw) == 12 and len(records) == 5
  for r, x in zip(raw, got):
    text = " ".join(" ".join(r[f].decode().split()) for f in info.text_fields)
    assert x["inputs_pretokenized"].decode() == text.strip()
    assert x["targets_pretokenized"].decode() == info.label_words[r["label"]]
    assert int(x["label"]) == r["label"]
    assert vocab.decode(_strip_eos(x["targets"]).tolist()) == info.label_words[r["label"]]
  for rec, x in zip(records, got):
    assert rec.text == x["inputs_pretokenized"].decode() and rec.label == x["label"]
    np.testing.assert_array_equal(rec.tokens, x["inputs"])
    assert rec.tokens[-1] == EOS and vocab.decode(rec.tokens[:-1].tolist()) == rec.text
  targets = [task.postprocess_fn(x["targets"], example=x, is_target=True) for x in got]
  predictions = [info.label_words[0]] * len(got)
  want = 100.0 * np.mean([t == info.label_words[0] for t in targets])
  assert classification.accuracy(targets, predictions) == {"accuracy": want}


def test_accuracy_metric():
  assert classification.accuracy(["positive", "negative", "world", "sports"],
                                 [b"positive", "negative ", "world", "business"]) == {
                                     "accuracy": 50.0}
  with pytest.raises(ValueError):
    classification.accuracy(["a"], [])


def test_classification_info_and_bad_names():
  assert classification.classification_info("imdb_reviews_train100").num_classes == 2
  with pytest.raises(ValueError, match="not a classification task"):
    classification.classification_info("scan_simple")


# --- the Gin recipe ---------------------------------------------------------------------

def test_pretrain_natural_recipe_parses_and_its_lengths_fit():
  with pytest.raises(ValueError, match="MODEL_DIR"):
    gin_utils.parse_gin(["quickstart/pretrain_natural.gin"], [])
  gin_utils.parse_gin(["quickstart/pretrain_natural.gin"], ["MODEL_DIR = '/tmp/x'"])
  name = gin.query_parameter("MIXTURE_OR_TASK_NAME/macro.value")
  lengths = gin.query_parameter("TASK_FEATURE_LENGTHS/macro.value")
  vocab_size = gin.query_parameter("T5Config.vocab_size")
  gin.clear_config()
  assert name == "corpus_span_corruption"
  assert lengths == natural.feature_lengths(lengths["inputs"])
  pipeline.check_vocabulary(name, vocab_size)
  batch = next(pipeline.get_batches(
      task_name=name, feature_lengths=lengths, split="validation", global_batch_size=4,
      seed=0, shuffle=False, num_epochs=1, process_index=0, process_count=1))
  assert batch["encoder_input_tokens"].shape == (4, lengths["inputs"])
  assert (batch["encoder_input_tokens"][:, -1] == EOS).all()  # full chunks fill inputs
  assert batch["decoder_target_tokens"].max() < vocab_size
