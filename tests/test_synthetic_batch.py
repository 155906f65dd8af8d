"""The batch API of the simple synthetic tasks: an example is the same drawn alone or in
any batch (any order, duplicates, huge indices), the counter-based draws and the kernel
helpers behave, the data stream is pinned, and the on-the-fly SeqIO streams (drawn in
blocks) give example i at index i of their residue shard."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from tasks.synthetic import counter_rng, kernels
from tasks.synthetic import generators as gen
from tasks.synthetic.config import PAPER, TINY
from tasks.synthetic.ragged import Batch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sub(key, stream, attempt=0) -> np.uint64:
  """kernels.stream_key called from Python (which returns a Python int)."""
  return np.uint64(kernels.stream_key(key, stream, attempt))

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
def test_batch_equals_per_example_in_any_batch(task, cfg_name):
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
  halves = [gen.generate_batch(task, cfg, "train", 3, indices[s]) for s in
            (slice(0, 6), slice(6, None))]
  _same(Batch.concatenate(halves), whole)
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


def _chi2(counts) -> float:
  counts = np.asarray(counts, float)
  expected = counts.sum() / len(counts)
  return float(((counts - expected) ** 2 / expected).sum())


def test_counter_draws_uniform_and_independent():
  keys = counter_rng.example_keys("t", "train", 0, np.arange(20000))
  x = np.array([kernels.draw_int(_sub(k, 1), 0, 0, 9) for k in keys])
  assert _chi2(np.bincount(x, minlength=10)) < 40  # chi2(9) p ~ 1e-5
  y = np.array([kernels.draw_int(_sub(k, 2), 0, 0, 9) for k in keys])
  assert _chi2(np.bincount(x * 10 + y, minlength=100)) < 170  # chi2(99): independent
  again = [kernels.draw_int(_sub(k, 1, 1), 0, 0, 9) for k in keys[:50]]
  assert again != x[:50].tolist()  # another attempt, other numbers
  sub = _sub(keys[0], 5)
  assert {kernels.draw_int(sub, j, 10, 13) for j in range(4000)} == {10, 11, 12, 13}
  u = np.array([kernels.draw_unit(sub, j) for j in range(4000)])
  assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
  # mix64 is a bijection on a sample: no collisions among 1e5 consecutive inputs; the
  # compiled and numpy versions agree.
  z = counter_rng.mix64(np.arange(100_000, dtype=np.uint64))
  assert len(np.unique(z)) == 100_000
  for x in (0, 12345, 2**63 + 7):
    want = counter_rng.mix64(np.asarray([x], np.uint64))[0]
    assert np.uint64(kernels.mix64(np.uint64(x))) == want


def test_shuffle_is_uniform_over_permutations():
  keys = counter_rng.example_keys("shuffle", "train", 0, np.arange(6000))
  seen = []
  for k in keys:
    v = np.arange(3)
    kernels.shuffle(v, 0, 3, _sub(k, 1))
    seen.append(tuple(v.tolist()))
  counts = {perm: seen.count(perm) for perm in set(seen)}
  assert len(counts) == 6 and _chi2(list(counts.values())) < 25  # chi2(5) p ~ 1e-4
  v = np.arange(10)
  kernels.shuffle(v, 3, 5, _sub(keys[0], 1))
  assert v[:3].tolist() == [0, 1, 2] and v[8:].tolist() == [8, 9]  # only [3, 8) moves
  assert sorted(v[3:8].tolist()) == [3, 4, 5, 6, 7]


# The first 64 examples of every simple task (PAPER), hashed. A change here means the
# generators' output changed: bump tasks/fixed_splits/cache.py GENERATOR_VERSION (so no old
# fixed-split cache is reused), then update this digest.
PINNED_DIGEST = "20c7a6f6bac141d63132f11c0a75730f6e326af1b368a96d03dea41201026366"


def _stream_digest() -> str:
  h = hashlib.sha256()
  for task in ALL_18:
    b = gen.generate_batch(task, PAPER, "train", 0, np.arange(64))
    for a in (b.inputs, b.input_lengths, b.targets, b.target_lengths):
      h.update(np.ascontiguousarray(a, np.int64).tobytes())
  return h.hexdigest()


def test_data_stream_is_pinned():
  from tasks.fixed_splits import cache as fixed_cache
  assert (fixed_cache.GENERATOR_VERSION, _stream_digest()) == ("3", PINNED_DIGEST), (
      "The simple-task generators' output changed: bump fixed_splits.cache.GENERATOR_VERSION "
      "and update PINNED_DIGEST in this test.")


def test_on_the_fly_stream_is_the_batch_generator_by_residue(monkeypatch):
  import seqio
  from tasks import registry, synthetic_streams
  monkeypatch.setattr(synthetic_streams, "STREAM_BLOCK", 5)  # several blocks in 12 examples
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


def test_kernel_cache_is_keyed_on_the_sources(monkeypatch, tmp_path):
  monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path / "cache"))
  here = kernels.cache_dir()
  assert os.path.dirname(here) == str(tmp_path / "cache")
  assert len(os.path.basename(here)) == 16
  src = tmp_path / "src"
  src.mkdir()
  package = os.path.dirname(kernels.__file__)
  for name in kernels.KERNEL_SOURCES:
    (src / name).write_bytes(open(os.path.join(package, name), "rb").read())
  assert kernels.cache_dir(str(src)) == here  # the same sources: the same directory
  for name in kernels.KERNEL_SOURCES:  # one changed byte in any of them: another one
    original = (src / name).read_bytes()
    (src / name).write_bytes(original + b" ")
    assert kernels.cache_dir(str(src)) != here, name
    (src / name).write_bytes(original)


def test_kernels_run_without_a_writable_cache(tmp_path):
  # A cache root that cannot be created: the kernels compile in the process instead.
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  code = ("import sys, types; pkg = types.ModuleType('tasks'); pkg.__path__ = ['tasks']\n"
          "sys.modules['tasks'] = pkg\n"
          "from tasks.synthetic import generators as g, kernels, config as c\n"
          "print(repr(kernels._CACHE_DIR), g.generate('reverse', c.TINY, 'train', 0, 5)[1]"
          ".tolist())")
  env = {**os.environ, kernels.ENV_CACHE: str(blocker / "cache")}
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                       capture_output=True, text=True).stdout.split(maxsplit=1)
  assert out[0] == "''"
  assert out[1].strip() == str(gen.generate("reverse", TINY, "train", 0, 5)[1].tolist())
