"""Training-set subsets `<task>_train<N>[_seed<S>]` (tasks/subsets.py): names, seeded
uniform samples, nesting, sharding, endless streams."""
from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import seqio
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers the project's tasks)
from synthpre_jax.data import pipeline
from tasks import classification, subsets
from tasks.downstream import scan, text_features, text_files
from synthpre_jax.data import task_metadata


def _unique(prefix: str) -> str:
  return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _train_inputs(name: str) -> list[str]:
  """The subset's train split as its source gives it: unshuffled, unsharded."""
  task = pipeline.resolve_task(name)
  ds = task.source.get_dataset(split="train", shuffle=False)
  # SCAN's source gives token ids and keeps the text as inputs_pretokenized.
  return [x.get("inputs_pretokenized", x["inputs"]).decode() for x in ds.as_numpy_iterator()]


def _has(word: str, command: str) -> bool:
  return word in command.split(" ")


def _assert_rate_like_split(sample: list[str], population: list[str], word: str) -> None:
  """The fraction of commands with `word` is within 4 standard deviations of a uniform
  sample without replacement (hypergeometric) of the population."""
  p = np.mean([_has(word, c) for c in population])
  n, size = len(sample), len(population)
  sd = math.sqrt(p * (1 - p) / n * (size - n) / (size - 1))
  got = np.mean([_has(word, c) for c in sample])
  assert abs(got - p) <= 4 * sd, (word, got, p, sd)


# --- names ------------------------------------------------------------------------------

def test_subset_names_round_trip():
  assert subsets.subset_name("imdb_reviews", 250) == "imdb_reviews_train250_seed0"
  assert subsets.subset_name("scan_simple", 1000, seed=3) == "scan_simple_train1000_seed3"
  assert subsets.subset_name("ag_news_subset", percent=1) == "ag_news_subset_train1pct_seed0"
  assert subsets.subset_name("x", percent=0.5, seed=2) == "x_train0.5pct_seed2"
  assert subsets.subset_name("x", percent="10.0") == "x_train10pct_seed0"
  # Without the suffix: seed 0.
  assert subsets.parse_subset_name("a_b_train12") == ("a_b", 12, None, 0)
  assert subsets.parse_subset_name("a_b_train12_seed0") == ("a_b", 12, None, 0)
  assert subsets.parse_subset_name("a_train12_seed7") == ("a", 12, None, 7)
  assert subsets.parse_subset_name("a_train5_seed2_train3") == ("a_train5_seed2", 3, None, 0)
  parsed = subsets.parse_subset_name("a_train0.5pct_seed11")
  assert parsed == ("a", None, "0.5", 11) and parsed.seed == 11 and parsed.base == "a"
  assert subsets.parse_subset_name("identity_tiny") is None
  for name in ("t_train1_seed0", "t_train10_seed1", "t_train2.5pct_seed0",
               "t_train100pct_seed42"):
    p = subsets.parse_subset_name(name)
    assert subsets.subset_name(p.base, p.n, percent=p.percent, seed=p.seed) == name
  for bad in ("a_train0", "a_train012", "a_train1.5", "a_train10.0pct", "a_train0pct",
              "a_train101pct", "a_train5_seed01", "a_train1.0pct_seed2"):
    with pytest.raises(ValueError):
      subsets.parse_subset_name(bad)
  with pytest.raises(ValueError, match="'a_train5_seed0'"):
    subsets.parse_subset_name("a_train05")
  for n, pct, seed in ((0, None, 0), (None, 0, 0), (None, 200, 0), (1, 1, 0),
                       (None, None, 0), (2.0, None, 0), (5, None, -1), (5, None, True),
                       (5, None, 1.0)):
    with pytest.raises(ValueError):
      subsets.subset_name("x", n, percent=pct, seed=seed)


def test_sample_indices():
  big = pipeline.sample_indices(1000, 100, 3)
  small = pipeline.sample_indices(1000, 10, 3)
  assert len(set(big)) == 100 and list(big) == sorted(big) and big.dtype == np.int64
  assert set(small) <= set(big)
  np.testing.assert_array_equal(big, pipeline.sample_indices(1000, 100, 3))
  assert set(pipeline.sample_indices(1000, 100, 4)) != set(big)
  assert list(pipeline.sample_indices(5, 5, 0)) == [0, 1, 2, 3, 4]
  for args in ((5, 6, 0), (5, -1, 0), (5, 2, -1), (5, 2, True)):
    with pytest.raises(ValueError):
      pipeline.sample_indices(*args)


# --- SCAN: seeded uniform samples of the train split ------------------------------------

@pytest.mark.parametrize("scheme", ["simple", "length", "addprim_jump"])
def test_scan_subsets_are_uniform_samples_of_the_split(scheme):
  population = [c for c, _ in scan.split_examples(scheme, "train")]
  sample = _train_inputs(f"scan_{scheme}_train1000")
  assert len(sample) == 1000
  # Exactly the seeded positions of the split, in the split's order.
  assert sample == [population[i] for i in pipeline.sample_indices(len(population), 1000, 0)]
  _assert_rate_like_split(sample, population, "after")
  _assert_rate_like_split(sample, population, "jump")
  assert sum(_has("after", c) for c in sample) > 300
  if scheme == "addprim_jump":
    assert sum(_has("jump", c) for c in sample) > 60  # the split: 11%


def test_subsets_nest_for_one_seed_and_differ_across_seeds():
  sets = {name: set(_train_inputs(name)) for name in (
      "scan_simple_train100", "scan_simple_train1000", "scan_simple_train1pct",
      "scan_simple_train100_seed5", "scan_simple_train1000_seed5",
      "scan_simple_train1000_seed0")}
  assert sets["scan_simple_train1000_seed0"] == sets["scan_simple_train1000"]
  assert len(sets["scan_simple_train1pct"]) == 150  # 1% of 15,055
  assert sets["scan_simple_train100"] < sets["scan_simple_train1pct"] < sets[
      "scan_simple_train1000"]
  assert sets["scan_simple_train100_seed5"] < sets["scan_simple_train1000_seed5"]
  assert sets["scan_simple_train1000_seed5"] != sets["scan_simple_train1000"]
  assert pipeline.resolve_task("scan_simple_train1000_seed5").source.seed == 5


def test_subset_is_the_same_for_any_number_of_shards_and_reads():
  name = "scan_simple_train100_seed2"
  subset = sorted(_train_inputs(name))
  assert _train_inputs(name) == _train_inputs(name)
  lengths = {"inputs": 20, "targets": 50}

  def rows(input_shards: int) -> list[tuple]:
    batches = pipeline.get_batches(
        task_name=name, feature_lengths=lengths, split="train", global_batch_size=4,
        seed=7, shuffle=True, num_epochs=1, process_index=0, process_count=1,
        input_shards=input_shards, pad_last_batch=True)
    return [tuple(r) for b in batches for r in b["encoder_input_tokens"] if r.any()]

  one = rows(1)
  assert one == rows(1)  # deterministic
  assert len(one) == len(set(one)) == 100
  for shards in (2, 4):
    assert sorted(rows(shards)) == sorted(one)
  vocab = pipeline.resolve_task(name).output_features["inputs"].vocabulary
  decoded = sorted(vocab.decode([t for t in r if t > 1]) for r in one)
  assert decoded == subset


# --- other sources ----------------------------------------------------------------------

@pytest.fixture()
def text_task(tmp_path):
  """A registered text-file task with 10 train lines and 3 validation lines."""
  name = _unique("subset_base")
  folder = tmp_path / name
  folder.mkdir()
  (folder / "train.tsv").write_text("".join(f"in {i}\tout {i}\n" for i in range(10)))
  (folder / "valid.tsv").write_text("".join(f"v {i}\tw {i}\n" for i in range(3)))
  text_files.register_text_file_task(name, data_dir=str(tmp_path))
  return name


def _texts(name, split, **kwargs):
  kwargs.setdefault("shuffle", False)
  ds = seqio.get_mixture_or_task(name).get_dataset(sequence_length=None, split=split,
                                                   num_epochs=1, **kwargs)
  return [x["inputs_pretokenized"].decode() for x in ds.as_numpy_iterator()]


def _lines(size, k, seed):
  return [f"in {i}" for i in pipeline.sample_indices(size, k, seed)]


def test_subset_of_a_text_file_task(text_task):
  name = subsets.subset_name(text_task, 4)
  assert name == f"{text_task}_train4_seed0" and name not in seqio.TaskRegistry.names()
  assert subsets.ensure_subset_task(name) and subsets.ensure_subset_task(name)
  assert _texts(name, "train") == _lines(10, 4, 0)
  shuffled = _texts(name, "train", shuffle=True, seed=7)
  assert sorted(shuffled) == sorted(_lines(10, 4, 0))
  assert shuffled == _texts(name, "train", shuffle=True, seed=7)
  assert _texts(name, "validation") == _texts(text_task, "validation")
  task = seqio.get_mixture_or_task(name)
  base = seqio.get_mixture_or_task(text_task)
  assert task.metric_fns == base.metric_fns and task.output_features == base.output_features
  assert task.source.num_input_examples("train") == 4
  assert name in text_features.DOWNSTREAM_TASK_NAMES
  # Shards are disjoint and together hold the subset.
  parts = [_texts(name, "train", shuffle=True, seed=7,
                  shard_info=seqio.ShardInfo(i, 2)) for i in range(2)]
  assert sorted(parts[0] + parts[1]) == sorted(shuffled) and not set(parts[0]) & set(parts[1])
  # Percentages of the counted split; a subset of a subset samples the subset.
  assert subsets.ensure_subset_task(subsets.subset_name(text_task, percent=50, seed=3))
  half = _texts(f"{text_task}_train50pct_seed3", "train")
  assert half == _lines(10, 5, 3)
  assert subsets.ensure_subset_task(f"{text_task}_train50pct_seed3_train2")
  assert _texts(f"{text_task}_train50pct_seed3_train2", "train") == [
      half[i] for i in pipeline.sample_indices(5, 2, 0)]
  with pytest.raises(ValueError, match="only 10"):
    subsets.ensure_subset_task(f"{text_task}_train11")
  with pytest.raises(ValueError, match="less than one example"):
    subsets.ensure_subset_task(f"{text_task}_train5pct")


def test_subset_of_an_endless_stream_is_its_first_examples():
  name = "identity_tiny_train8"
  assert subsets.ensure_subset_task(name)
  assert task_metadata.max_lengths(name) == task_metadata.max_lengths("identity_tiny")
  assert pipeline.resolve_task(name).source.indices is None
  ds = seqio.get_mixture_or_task("identity_tiny").get_dataset(
      sequence_length=None, split="train", shuffle=False)
  base = list(ds.take(8).as_numpy_iterator())
  got = list(seqio.get_mixture_or_task(name).get_dataset(
      sequence_length=None, split="train", shuffle=False, num_epochs=1).as_numpy_iterator())
  assert len(got) == 8
  for x, y in zip(got, base):
    np.testing.assert_array_equal(x["inputs"], y["inputs"])
  lengths = {"inputs": 68, "targets": 68}
  batches = list(pipeline.get_batches(
      task_name=name, feature_lengths=lengths, split="train", global_batch_size=4,
      seed=0, shuffle=True, num_epochs=2, process_index=0, process_count=1))
  assert len(batches) == 4
  assert len({tuple(r) for b in batches for r in b["encoder_input_tokens"]}) == 8
  with pytest.raises(ValueError, match="endless"):
    subsets.ensure_subset_task("identity_tiny_train10pct")
  assert subsets.ensure_subset_task("identity_tiny_train8_seed0")
  with pytest.raises(ValueError, match="same for every seed: use seed 0"):
    subsets.ensure_subset_task("identity_tiny_train8_seed1")


def test_ensure_subset_task_declines_and_rejects():
  assert not subsets.ensure_subset_task("no_such_task_train5")
  assert not subsets.ensure_subset_task("no_such_task_train5_seed2")
  assert subsets.ensure_subset_task("identity_tiny")  # already registered
  assert not subsets.ensure_subset_task("definitely_not_a_task")
  with pytest.raises(ValueError, match="mixture"):
    subsets.ensure_subset_task("simple_tasks_tiny_train5")


def test_classification_subset_from_mocked_tfds():
  name = subsets.subset_name("ag_news_subset", 3)
  with tfds.testing.mock_data(num_examples=10):
    assert subsets.ensure_subset_task(name)
    full = classification.classification_examples("ag_news_subset", "train")
    sub = classification.classification_examples(name, "train")
    val = classification.classification_examples(name, "validation", limit=2)
  assert [r.text for r in sub] == [full[i].text for i in pipeline.sample_indices(
      len(full), 3, 0)]
  assert len(val) == 2
  assert classification.classification_info(
      subsets.subset_name("ag_news_subset", 3, seed=4)).num_classes == 4
