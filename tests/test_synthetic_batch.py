"""The vectorized batch API of the simple synthetic tasks: an example is the same drawn
alone or in any batch (any order, duplicates, block boundaries, huge indices), the
counter-based draws behave, the data stream is pinned, and the on-the-fly SeqIO
streams (drawn in blocks) give example i at index i of their residue shard."""
import hashlib

import numpy as np
import pytest

from tasks.synthetic import counter_rng
from tasks.synthetic import generators as gen
from tasks.synthetic.config import PAPER, TINY
from tasks.synthetic.counter_rng import Draws
from tasks.synthetic.ragged import Batch, first_occurrence, first_occurrence_small

ALL_18 = ["identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
          "last_token", "length", "longest_word", "count", "search", "delete", "sort",
          "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1"]
CONFIGS = {"paper": PAPER, "tiny": TINY}


def _same(a: Batch, b: Batch):
  for x, y in zip(("inputs", "input_lengths", "targets", "target_lengths"),
                  ("inputs", "input_lengths", "targets", "target_lengths")):
    np.testing.assert_array_equal(getattr(a, x), getattr(b, y))


@pytest.mark.parametrize("cfg_name", CONFIGS)
@pytest.mark.parametrize("task", ALL_18)
def test_batch_equals_per_example_in_any_batch(task, cfg_name, monkeypatch):
  cfg = CONFIGS[cfg_name]
  rng = np.random.default_rng(len(task))
  indices = np.concatenate([rng.permutation(40), [7, 7, 0, 2**40 + 3, 123456789]])
  alone = [gen.generate(task, cfg, "train", 3, int(i)) for i in indices]
  whole = gen.generate_batch(task, cfg, "train", 3, indices)
  assert len(whole) == len(indices)
  for j, (inputs, targets) in enumerate(alone):
    got_inputs, got_targets = whole.example(j)
    np.testing.assert_array_equal(got_inputs, inputs)
    np.testing.assert_array_equal(got_targets, targets)
    assert got_inputs.dtype == np.int32 and got_targets.dtype == np.int32
  monkeypatch.setattr(gen, "BLOCK", 6)  # other block boundaries: the same examples
  _same(gen.generate_batch(task, cfg, "train", 3, indices), whole)
  sub = gen.generate_batch(task, cfg, "train", 3, indices[5:17])
  _same(sub, whole.take(np.arange(5, 17)))


def test_empty_batch_and_bad_indices():
  b = gen.generate_batch("set", TINY, "train", 0, np.zeros(0, np.int64))
  assert len(b) == 0 and b.inputs.size == 0
  for bad in ([-1], [[1, 2]], [1.5], np.array([True])):
    with pytest.raises(ValueError, match="indices|non-negative"):
      gen.generate_batch("set", TINY, "train", 0, bad)
  with pytest.raises(ValueError, match="seed"):
    gen.generate_batch("set", TINY, "train", -2, [0])


def test_counter_draws_uniform_and_independent():
  d = Draws(counter_rng.example_keys("t", "train", 0, np.arange(20000)))
  x = d.ints(1, 0, 9)
  counts = np.bincount(x, minlength=10)
  expected = len(x) / 10
  assert ((counts - expected) ** 2 / expected).sum() < 40  # chi2(9) p ~ 1e-5
  y = d.ints(2, 0, 9)  # another stream: independent of the first
  joint = np.bincount(x * 10 + y, minlength=100)
  assert ((joint - len(x) / 100) ** 2 / (len(x) / 100)).sum() < 170  # chi2(99)
  assert not np.array_equal(d.ints(1, 0, 9, attempt=1), x)
  el_seg, el_pos = np.repeat(np.arange(3), 4000), np.tile(np.arange(4000), 3)
  u = d.take(np.arange(3)).elem_ints(5, el_seg, el_pos, 10, 13)
  assert set(u.tolist()) == {10, 11, 12, 13}
  # mix64 is a bijection on a sample: no collisions among 1e5 consecutive inputs.
  z = counter_rng.mix64(np.arange(100_000, dtype=np.uint64))
  assert len(np.unique(z)) == 100_000
  assert counter_rng.mix64_int(12345) == int(counter_rng.mix64(np.asarray([12345], np.uint64))[0])


def test_first_occurrence_helpers():
  seg = np.array([0, 0, 0, 0, 1, 1, 1])
  ids = np.array([5, 3, 5, 3, 3, 3, 9])
  want = [True, True, False, False, True, False, True]
  assert first_occurrence(seg, ids).tolist() == want
  small = np.array([1, 0, 1, 0, 0, 0, 2])  # row 0 ids < 2, row 1 ids < 3
  pos = np.array([0, 1, 2, 3, 0, 1, 2])
  assert first_occurrence_small(seg, small, pos, np.array([0, 2]), 5).tolist() == want


# The first 64 examples of every simple task (PAPER), hashed. A change here means the
# generators' output changed: bump tasks/fixed_splits.py GENERATOR_VERSION (so no old
# fixed-split cache is reused), then update this digest.
PINNED_DIGEST = "ce7f4e53f781e738be17250647313490f71ca46c5aadd0f05b38d6acfbcc4f6b"


def _stream_digest() -> str:
  h = hashlib.sha256()
  for task in ALL_18:
    b = gen.generate_batch(task, PAPER, "train", 0, np.arange(64))
    for a in (b.inputs, b.input_lengths, b.targets, b.target_lengths):
      h.update(np.ascontiguousarray(a, np.int64).tobytes())
  return h.hexdigest()


def test_data_stream_is_pinned():
  from tasks import fixed_splits
  assert (fixed_splits.GENERATOR_VERSION, _stream_digest()) == ("2", PINNED_DIGEST), (
      "The simple-task generators' output changed: bump fixed_splits.GENERATOR_VERSION "
      "and update PINNED_DIGEST in this test.")


def test_on_the_fly_stream_is_the_batch_generator_by_residue(monkeypatch):
  import seqio
  from tasks import registry
  monkeypatch.setattr(registry, "STREAM_BLOCK", 5)  # several blocks in 12 examples
  for name, task, cfg in (("sort_tiny", "sort", TINY), ("lime_deduct_tiny", None, None)):
    source = seqio.get_mixture_or_task(name).source
    for index, num in ((0, 1), (2, 3)):
      ds = source.get_dataset(split="validation", shuffle=False,
                              shard_info=seqio.ShardInfo(index, num))
      got = [(e["inputs"].tolist(), e["targets"].tolist())
             for e in ds.take(12).as_numpy_iterator()]
      if task is None:  # LIME: the per-example generator, looped per block
        from tasks.synthetic import catalog
        entry = catalog.get(name)
        want = [tuple(x.tolist() for x in entry.generate(
            entry.task, entry.cfg, "validation", registry.DATA_SEED, index + num * j))
                for j in range(12)]
      else:
        want = [tuple(x.tolist() for x in gen.generate(
            task, cfg, "validation", registry.DATA_SEED, index + num * j))
                for j in range(12)]
      assert got == [tuple(w) for w in want]
