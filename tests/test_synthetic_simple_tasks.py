"""Property tests of the 16 simple synthetic tasks beyond Set and Identity.

Every target is compared with a plain-Python reference written here, independently of
the numpy generators in tasks/synthetic/unary.py and binary.py.
"""
import collections
import dataclasses
import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from synthpre_jax.data import task_metadata

from tasks.synthetic import binary, kernels, unary
from tasks.synthetic import generators as gen
from tasks.synthetic.config import PAPER, TINY

N = 300
CONFIGS = {"paper": PAPER, "tiny": TINY}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNARY = ["reverse", "deduplicate", "duplicate", "first_token", "last_token", "length",
         "longest_word"]
BINARY = ["count", "search", "delete", "sort", "replace", "union", "intersect",
          "set1_minus_set2", "set2_minus_set1"]
TASKS = UNARY + BINARY
SET_OPS = ["union", "intersect", "set1_minus_set2", "set2_minus_set1"]
ALL_18 = ["identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
          "last_token", "length", "longest_word", "count", "search", "delete", "sort",
          "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1"]


@functools.lru_cache(maxsize=None)
def _examples(task, cfg_name, n=N):
  return tuple(gen.generate(task, CONFIGS[cfg_name], "train", 0, i) for i in range(n))


def _body(inputs, task, cfg):
  """The part after [name prefix, task divider], as a list (checks the header)."""
  header = list(cfg.name_prefix(task)) + [cfg.task_divider]
  assert inputs[:len(header)].tolist() == header
  return inputs[len(header):].tolist()


def _args(body, cfg):
  """(seq, query) of a binary body: split at its single argument divider."""
  assert body.count(cfg.arg_divider) == 1
  at = body.index(cfg.arg_divider)
  return body[:at], body[at + 1:]


# ------------------------------------------------------------ plain-Python references


def _digits(cfg, n):  # the documented mapping: digit d -> pool_low + d
  return [cfg.pool_low + int(ch) for ch in str(n)]


def _yes(cfg):
  return [cfg.pool_low + 10]


def _no(cfg):
  return [cfg.pool_low + 11]


def _unique(xs):
  seen, out = set(), []
  for x in xs:
    if x not in seen:
      seen.add(x)
      out.append(x)
  return out


def _find(seq, q):
  for i in range(len(seq) - len(q) + 1):
    if seq[i:i + len(q)] == q:
      return i
  return -1


def _words(body, divider):
  words, cur = [], []
  for x in body:
    if x == divider:
      words.append(cur)
      cur = []
    else:
      cur.append(x)
  return words + [cur]


def _longest(words):
  best = words[0]
  for w in words:
    if len(w) > len(best):  # strictly longer: ties keep the first
      best = w
  return best


def _reference(task, body, cfg):
  """The expected target (before the empty placeholder), or None for sort."""
  if task == "reverse":
    return body[::-1]
  if task == "deduplicate":
    return [x for i, x in enumerate(body) if i == 0 or body[i - 1] != x]
  if task == "duplicate":
    return [y for x in body for y in (x, x)]
  if task == "first_token":
    return [body[0]]
  if task == "last_token":
    return [body[-1]]
  if task == "length":
    return _digits(cfg, len(body))
  if task == "longest_word":
    return _longest(_words(body, cfg.word_divider))
  if task == "sort":
    return None  # checked as a property in test_target_matches_reference
  seq, q = _args(body, cfg)
  if task == "count":
    return _digits(cfg, seq.count(q[0]))
  if task == "search":
    return _yes(cfg) if _find(seq, q) >= 0 else _no(cfg)
  if task == "delete":
    i = _find(seq, q)
    return seq if i < 0 else seq[:i] + seq[i + len(q):]
  if task == "replace":
    k, v = q
    return [v if x == k else x for x in seq]
  both = _unique(seq + q)  # first appearance, seq1 then seq2
  keep = {"union": lambda x: True,
          "intersect": lambda x: x in seq and x in q,
          "set1_minus_set2": lambda x: x in seq and x not in q,
          "set2_minus_set1": lambda x: x in q and x not in seq}[task]
  return [x for x in both if keep(x)]


# ------------------------------------------------------------ tests


@pytest.mark.parametrize("cfg_name", CONFIGS)
@pytest.mark.parametrize("task", TASKS)
def test_target_matches_reference(task, cfg_name):
  cfg = CONFIGS[cfg_name]
  maxima = gen.max_lengths(task, cfg)
  pool = range(cfg.pool_low, cfg.pool_high + 1)
  for inputs, targets in _examples(task, cfg_name):
    assert inputs.dtype == np.int32 and targets.dtype == np.int32
    assert inputs.ndim == 1 and targets.ndim == 1
    body, target = _body(inputs, task, cfg), targets.tolist()
    assert cfg.min_len <= len(body) <= cfg.max_len
    assert len(inputs) + 1 <= maxima["inputs"] and len(target) + 1 <= maxima["targets"]
    allowed = {"longest_word": {cfg.word_divider}}.get(
        task, {cfg.arg_divider} if task in BINARY else set())
    assert all(x in pool or x in allowed for x in body)
    if task in BINARY:
      _args(body, cfg)  # exactly one argument divider
    if task == "sort":
      seq, order = _args(body, cfg)
      last = {tok: i for i, tok in enumerate(order)}
      assert collections.Counter(target) == collections.Counter(seq)  # permutation
      keys = [last[tok] for tok in target]  # KeyError: a token not in order
      assert keys == sorted(keys)
      assert len(order) <= len(seq) <= cfg.max_len - 1 - len(order)
      m_lo, m_hi = binary.sort_order_range(cfg.min_len, cfg.max_len)
      assert m_lo <= len(order) <= m_hi
      continue
    expected = _reference(task, body, cfg) or [cfg.empty_target]
    assert target == expected
    assert target == [cfg.empty_target] or all(x in pool for x in target)


@pytest.mark.parametrize("cfg_name", CONFIGS)
def test_sampler_shapes(cfg_name):
  """The samplers' distributions: both branches of search/delete, placeholders, ties,
  repeated order tokens, multi-digit counts; the spec's ranges (PAPER = the paper's)."""
  cfg = CONFIGS[cfg_name]
  lo, hi = cfg.min_len, cfg.max_len

  def bodies(task):
    return [(_body(i, task, cfg), t.tolist()) for i, t in _examples(task, cfg_name)]

  yes = [t == _yes(cfg) for _, t in bodies("search")]
  assert 0.38 < np.mean(yes) < 0.62
  present = [_find(*_args(b, cfg)) >= 0 for b, _ in bodies("delete")]
  assert 0.62 < np.mean(present) < 0.88
  for task in ("search", "delete"):
    q_lens = [len(_args(b, cfg)[1]) for b, _ in bodies(task)]
    assert min(q_lens) < lo and max(q_lens) > binary.max_query_len(cfg.max_len)  # absent: long
  empties = collections.Counter(
      task for task in SET_OPS for _, t in bodies(task) if t == [cfg.empty_target])
  assert empties["union"] == 0 and empties["intersect"] > 0
  for task in SET_OPS:
    sizes = [len(b) - 1 for b, _ in bodies(task)]  # T
    assert lo - 1 <= min(sizes) and max(sizes) <= hi - 1
  counts = [len(t) for _, t in bodies("count")]
  assert max(counts) >= 2  # a count >= 10 occurs
  n_words = [len(_words(b, cfg.word_divider)) for b, _ in bodies("longest_word")]
  assert min(n_words) == 1 and max(n_words) <= unary.max_words(cfg.max_len)
  assert max(n_words) > unary.max_words(cfg.max_len) // 2
  ties = 0
  for b, _ in bodies("longest_word"):
    lens = [len(w) for w in _words(b, cfg.word_divider)]
    ties += lens.count(max(lens)) > 1
  assert ties > 0
  orders = [_args(b, cfg)[1] for b, _ in bodies("sort")]
  assert any(len(set(o)) < len(o) for o in orders)  # the "last index" rule is exercised
  m_lo, m_hi = binary.sort_order_range(cfg.min_len, cfg.max_len)
  assert min(map(len, orders)) == m_lo and max(map(len, orders)) > (m_lo + m_hi) // 2
  if cfg is PAPER:  # the spec's numbers
    assert binary.sort_order_range(cfg.min_len, cfg.max_len) == (5, 109)
    assert (binary.max_query_len(cfg.max_len), unary.max_words(cfg.max_len)) == (73, 110)


def test_answer_words_and_max_lengths():
  digits = np.zeros(4, np.int32)
  assert kernels.write_number(digits, 1, 137, PAPER.pool_low) == 3
  assert digits.tolist() == [0, 3, 5, 9]
  assert kernels.write_number(digits, 0, 0, TINY.pool_low) == 1 and digits[0] == 2
  assert gen.generate("length", TINY, "train", 0, 0)[1].tolist() == _digits(
      TINY, len(_body(gen.generate("length", TINY, "train", 0, 0)[0], "length", TINY)))
  assert {tuple(t.tolist()) for _, t in _examples("search", "paper")} == {(12,), (13,)}
  tiny = {  # inputs = 2 name ids + divider + body <= 64 + EOS; targets + EOS
      "reverse": 65, "deduplicate": 65, "duplicate": 129, "first_token": 2,
      "last_token": 2, "length": 3, "longest_word": 65, "count": 3, "search": 2,
      "delete": 63, "sort": 59, "replace": 62, "union": 32, "intersect": 32,
      "set1_minus_set2": 32, "set2_minus_set1": 32}
  for task, targets in tiny.items():
    assert gen.max_lengths(task, TINY) == {"inputs": 68, "targets": targets}, task
  assert gen.max_lengths("duplicate", PAPER)["targets"] == 441
  assert gen.max_lengths("count", PAPER)["targets"] == 4


def test_deterministic_and_index_sensitive():
  for task in TASKS:
    a = [gen.generate(task, TINY, "train", 0, i) for i in range(30)]
    for (ai, at), (bi, bt) in zip(a, _examples(task, "tiny")):
      np.testing.assert_array_equal(ai, bi)
      np.testing.assert_array_equal(at, bt)
    assert len({x.tobytes() for x, _ in a}) == len(a), task
    other = [gen.generate(task, TINY, "validation", 0, i)[0] for i in range(30)]
    assert sum(np.array_equal(x, y) for (x, _), y in zip(a, other)) == 0, task


def _cfg(**change):
  return dataclasses.replace(TINY, **change)


@pytest.mark.parametrize("task,change,field", [
    ("search", dict(max_len=20), "max_len"),  # an absent query needs 2 * 10 + 1
    ("delete", dict(min_len=1, max_len=3), "max_len"),
    ("sort", dict(max_len=10), "max_len"),  # m >= 5 needs 2 * 5 + 1
    ("count", dict(min_len=1, max_len=2), "max_len"),
    ("replace", dict(min_len=1, max_len=3), "max_len"),
    ("union", dict(min_len=1, max_len=2), "max_len"),
    ("intersect", dict(pool_high=20, max_len=64), "pool_size"),
    ("length", dict(pool_high=12), "pool_size"),
    ("count", dict(pool_high=12), "pool_size"),
    ("search", dict(pool_high=12), "pool_size"),
])
def test_impossible_configs_rejected(task, change, field):
  cfg = _cfg(**change)
  for call in (lambda: gen.generate(task, cfg, "train", 0, 0),
               lambda: gen.max_lengths(task, cfg)):  # registration time
    with pytest.raises(ValueError, match=rf"{task}.*{field} must be"):
      call()


def test_small_feasible_configs_work():
  for cfg in (_cfg(min_len=1, max_len=8), _cfg(min_len=5, max_len=11)):
    for task in TASKS:  # generate() asserts the length bounds itself
      for i in range(40):
        inputs, targets = gen.generate(task, cfg, "train", 0, i)
        body = _body(inputs, task, cfg)
        if task != "sort":
          assert targets.tolist() == (_reference(task, body, cfg) or [cfg.empty_target])
  buf = np.array([1, 2, 3, 2, 3, 1, 2, 3])  # seqs and queries side by side
  assert binary.find_first(buf, 0, 3, 3, 2) == 1  # [2, 3] in [1, 2, 3]
  assert binary.find_first(buf, 3, 2, 5, 3) == -1  # [1, 2, 3] longer than [2, 3]
  assert binary.find_first(buf, 0, 3, 5, 0) == 0  # the empty query


def test_mixtures_registered():
  import seqio
  from tasks import registry
  for name, suffix in (("simple_tasks", ""), ("simple_tasks_tiny", "_tiny")):
    mixture = seqio.MixtureRegistry.get(name)
    names = [t.name for t in mixture.tasks]
    assert len(names) == 18 and set(names) == {t + suffix for t in ALL_18}
    assert {mixture.get_rate(t) for t in mixture.tasks} == {1.0}
  for task in TASKS:
    assert task_metadata.max_lengths(task + "_tiny") == gen.max_lengths(task, TINY)


def test_same_examples_in_subprocess_without_tensorflow():
  # All 18 tasks; the subprocess stubs the `tasks` package so neither seqio nor TF loads.
  code = (
      "import json, sys, types\n"
      "pkg = types.ModuleType('tasks'); pkg.__path__ = ['tasks']\n"
      "sys.modules['tasks'] = pkg\n"
      "from tasks.synthetic import generators as g, config as c\n"
      f"out = [[g.generate(t, c.TINY, 'train', 5, i)[k].tolist() for k in (0, 1)]\n"
      f"       for t in {ALL_18!r} for i in (0, 123456789)]\n"
      "assert 'tensorflow' not in sys.modules and 'seqio' not in sys.modules\n"
      "print(json.dumps(out))\n")
  env = dict(os.environ, PYTHONHASHSEED="123")
  res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                       capture_output=True, text=True, check=True, timeout=60)
  expected = [[gen.generate(t, TINY, "train", 5, i)[k].tolist() for k in (0, 1)]
              for t in ALL_18 for i in (0, 123456789)]
  assert json.loads(res.stdout) == expected
