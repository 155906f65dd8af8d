"""Property tests of the Set and Identity generators and the token-id configs."""

import numpy as np
import pytest

from tasks.synthetic import config as config_lib
from tasks.synthetic import counter_rng
from tasks.synthetic import generators as gen
from tasks.synthetic import kernels
from tasks.synthetic.config import NAME_PREFIX_LEN, PAPER, TINY
from tests.test_synthetic_batch import _sub

N = 300
CONFIGS = {"paper": PAPER, "tiny": TINY}
SPEC_TASKS = [
    "identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
    "last_token", "length", "longest_word", "count", "search", "delete", "sort",
    "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1"]


def _examples(task, cfg, split="train", seed=0, n=N):
  return [gen.generate(task, cfg, split, seed, i) for i in range(n)]


def _reference_unique(seq):
  seen, out = set(), []
  for tok in seq.tolist():
    if tok not in seen:
      seen.add(tok)
      out.append(tok)
  return out


def _split_input(inputs, task, cfg):
  header = len(cfg.name_prefix(task)) + 1
  assert inputs[:header].tolist() == list(cfg.name_prefix(task)) + [cfg.task_divider]
  return inputs[header:]


@pytest.mark.parametrize("cfg_name", CONFIGS)
@pytest.mark.parametrize("task", ["set", "identity"])
def test_common_properties(task, cfg_name):
  cfg = CONFIGS[cfg_name]
  lengths = []
  for inputs, targets in _examples(task, cfg):
    assert inputs.dtype == np.int32 and targets.dtype == np.int32
    assert inputs.ndim == 1 and targets.ndim == 1
    seq = _split_input(inputs, task, cfg)
    assert np.all((seq >= cfg.pool_low) & (seq <= cfg.pool_high))
    assert np.all((targets >= cfg.pool_low) & (targets <= cfg.pool_high))
    assert cfg.min_len <= len(seq) <= cfg.max_len
    assert 1 not in inputs.tolist() and 1 not in targets.tolist()  # no EOS yet
    maxima = gen.max_lengths(task, cfg)
    assert len(inputs) + 1 <= maxima["inputs"] and len(targets) + 1 <= maxima["targets"]
    lengths.append(len(seq))
  # L ~ U{min_len..max_len}: both ends of the range are reached or nearly so.
  span = cfg.max_len - cfg.min_len
  assert min(lengths) <= cfg.min_len + span // 10
  assert max(lengths) >= cfg.max_len - span // 10


@pytest.mark.parametrize("cfg_name", CONFIGS)
def test_set_target_is_first_occurrence_unique(cfg_name):
  cfg = CONFIGS[cfg_name]
  ratios = []
  for inputs, targets in _examples("set", cfg):
    seq = _split_input(inputs, "set", cfg)
    assert len(set(targets.tolist())) == len(targets)  # no repeats
    assert targets.tolist() == _reference_unique(seq)
    ratios.append(len(targets) / len(seq))
  # k ~ U{1..L} distinct-ish tokens: targets are usually much shorter than inputs
  # and cover the whole range of ratios.
  assert min(ratios) < 0.15 and max(ratios) > 0.8


@pytest.mark.parametrize("cfg_name", CONFIGS)
def test_identity_target_is_sequence(cfg_name):
  cfg = CONFIGS[cfg_name]
  for inputs, targets in _examples("identity", cfg):
    np.testing.assert_array_equal(_split_input(inputs, "identity", cfg), targets)


def test_max_lengths_include_eos():
  assert gen.max_lengths("set", TINY) == {"inputs": NAME_PREFIX_LEN + 1 + 64 + 1,
                                          "targets": 65}
  assert gen.max_lengths("identity", TINY) == {"inputs": 68, "targets": 65}
  assert gen.max_lengths("set", PAPER) == {"inputs": 224, "targets": 221}


def test_deterministic_and_split_seed_index_sensitive():
  for task in ("set", "identity"):
    a = _examples(task, TINY, n=20)
    b = _examples(task, TINY, n=20)
    for (ai, at), (bi, bt) in zip(a, b):
      np.testing.assert_array_equal(ai, bi)
      np.testing.assert_array_equal(at, bt)
    for other in (_examples(task, TINY, split="validation", n=20),
                  _examples(task, TINY, seed=1, n=20)):
      assert sum(np.array_equal(x[0], y[0]) for x, y in zip(a, other)) == 0
    assert len({tuple(x[0].tolist()) for x in a}) == len(a)  # indices differ


def test_helpers():
  keys = counter_rng.example_keys("helpers", "train", 0, np.arange(3))
  bins = np.empty(220, np.int64)
  for key, n, k in zip(keys, (10, 10, 220), (1, 10, 37)):
    kernels.partition_bins(bins, n, k, _sub(key, 1))
    sizes = np.bincount(bins[:n], minlength=k)
    assert len(sizes) == k and sizes.sum() == n and sizes.min() >= 1
    assert bins[:k].tolist() == list(range(k))  # ball j < k goes to bin j
  p = kernels.params(TINY)
  sub = _sub(keys[0], 2)
  toks = [kernels.draw_token(sub, j, p) for j in range(5000)]
  assert min(toks) == TINY.pool_low and max(toks) == TINY.pool_high
  buf = np.zeros(8, np.int32)
  for n, want in ((0, [0]), (7, [7]), (10, [1, 0]), (137, [1, 3, 7])):
    assert kernels.write_number(buf, 2, n, TINY.pool_low) == len(want)
    assert (buf[2:2 + len(want)] - TINY.pool_low).tolist() == want
  with pytest.raises(ValueError, match="non-negative"):
    gen.generate("set", TINY, "train", -1, 0)
  with pytest.raises(ValueError, match="non-negative"):
    gen.generate_batch("set", TINY, "train", 0, [3, -1])
  with pytest.raises(ValueError, match="closest first"):
    gen.generate("sett", TINY, "train", 0, 0)


def test_name_prefixes_distinct_and_in_pool():
  for cfg in CONFIGS.values():
    prefixes = [cfg.name_prefix(t) for t in SPEC_TASKS]
    assert len(set(prefixes)) == len(prefixes)
    for p in prefixes:
      assert len(p) == NAME_PREFIX_LEN
      assert all(cfg.pool_low <= i <= cfg.pool_high for i in p)


def test_config_validation():
  assert TINY.vocab_size == 512 and PAPER.special_ids["task_divider"] == 32099
  base = dict(vocab_size=512, pool_low=2, pool_high=499, task_divider=511,
              word_divider=510, arg_divider=509, empty_target=508)
  config_lib.SyntheticConfig(**base)
  bad = [dict(pool_low=1), dict(pool_high=600), dict(task_divider=300),
         dict(arg_divider=511), dict(min_len=0), dict(min_len=30, max_len=20),
         dict(empty_target=512)]
  for change in bad:
    with pytest.raises(ValueError, match="Invalid SyntheticConfig"):
      config_lib.SyntheticConfig(**{**base, **change})
