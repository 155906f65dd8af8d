"""Property tests of the LIME generator (tasks/synthetic/lime.py).

The checks re-derive everything from the token streams with an independent parser: the
prefix, pattern, substitution and result are read back using only the structural ids,
and substituting the substitution into the pattern must give the result in every mode.
"""
import dataclasses
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tasks.synthetic import lime
from tasks.synthetic.config import PAPER, TINY, SyntheticConfig

N = 300
CONFIGS = {"paper": PAPER, "tiny": lime.LIME_TINY}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_IDS = {":": 32000, "<sep>": 32001, "<UPPER>": 32002, "[": 32003, "<LOWER>": 32004,
             "<MATH>": 32005, "]": 32006}


def _ids(cfg):
  s = lime.LimeSymbols.for_config(cfg)
  return {":": s.colon, "<sep>": s.sep, "<UPPER>": s.upper, "[": s.lbracket,
          "<LOWER>": s.lower, "<MATH>": s.math, "]": s.rbracket}


def _parse_substitution(seq, ids):
  """`X : [ s1 .. sk ]` groups -> ordered list of (X, [s1..sk]); asserts the format."""
  groups, i = [], 0
  while i < len(seq):
    assert seq[i + 1] == ids[":"] and seq[i + 2] == ids["["], seq
    end = seq.index(ids["]"], i + 3)
    groups.append((seq[i], seq[i + 3:end]))
    i = end + 1
  return groups


def _parse(inputs, targets, mode, ids):
  """(used, lower, math, pattern, substitution groups, result) of one example."""
  x, y = inputs.tolist(), targets.tolist()
  assert x[0] == ids["<UPPER>"]
  i_lower = x.index(ids["<LOWER>"])
  i_math = x.index(ids["<MATH>"])
  used, lower, math = x[1:i_lower], x[i_lower + 1:i_math], x[i_math + 1:i_math + 21]
  assert x[i_math + 21] == ids["<sep>"]
  body = x[i_math + 22:]
  assert body.count(ids["<sep>"]) == 1 and ids["<sep>"] not in y
  k = body.index(ids["<sep>"])
  first, second = body[:k], body[k + 1:]
  if mode == "deduct":
    pattern, subst, result = first, second, y
  elif mode == "abduct":
    pattern, result, subst = first, second, y
  else:
    result, subst, pattern = first, second, y
  return used, lower, math, pattern, _parse_substitution(subst, ids), result


def _examples(mode, cfg, split="train", seed=0, n=N, start=0):
  return [lime.generate_lime(mode, cfg, split, seed, i) for i in range(start, start + n)]


@pytest.fixture(scope="module")
def examples():
  return {(m, c): _examples(m, cfg)
          for m in lime.LIME_MODES for c, cfg in CONFIGS.items()}


def test_structural_ids():
  assert _ids(PAPER) == PAPER_IDS
  assert dataclasses.astuple(lime.LimeSymbols.for_config(lime.LIME_TINY)) == tuple(
      range(500, 507))
  for cfg in CONFIGS.values():
    ids = set(_ids(cfg).values())
    assert len(ids) == 7
    assert not ids & set(cfg.special_ids.values())
    assert all(not cfg.pool_low <= i <= cfg.pool_high and 1 < i < cfg.vocab_size
               for i in ids)
  # A layout with room only below the pool uses the lowest free ids.
  low = SyntheticConfig(vocab_size=504, pool_low=10, pool_high=499, task_divider=503,
                        word_divider=502, arg_divider=501, empty_target=500)
  assert dataclasses.astuple(lime.LimeSymbols.for_config(low)) == tuple(range(2, 9))


@pytest.mark.parametrize("cfg_name", CONFIGS)
@pytest.mark.parametrize("mode", lime.LIME_MODES)
def test_substitution_into_pattern_gives_result(examples, mode, cfg_name):
  cfg = CONFIGS[cfg_name]
  ids = _ids(cfg)
  structural = set(ids.values())
  stats = {"n_vars": set(), "n_math": set(), "n_var_slots": set(), "sub_len": set()}
  for inputs, targets in examples[(mode, cfg_name)]:
    assert inputs.dtype == np.int32 and targets.dtype == np.int32
    assert inputs.ndim == 1 and targets.ndim == 1
    assert not {0, 1} & (set(inputs.tolist()) | set(targets.tolist()))  # no pad/EOS
    used, lower, math, pattern, groups, result = _parse(inputs, targets, mode, ids)

    # The visible symbols: distinct, disjoint upper / lower / math, all in the pool.
    symbols = used + lower + math
    assert len(lower) == 24 and len(math) == 20 and 1 <= len(used) <= 5
    assert len(set(symbols)) == len(symbols)
    assert all(cfg.pool_low <= t <= cfg.pool_high for t in symbols)

    # Pattern = variables and math only; used variables = its distinct variables.
    variables = [t for t in pattern if t in used]
    assert all(t in used or t in math for t in pattern)
    assert set(variables) == set(used)
    assert len(variables) in (6, 8, 10) and len(set(variables)) <= len(variables) // 2
    n_math = len(pattern) - len(variables)
    assert 5 <= n_math <= 19

    # Substitution: one group per used variable, in the prefix's order, strings of
    # 2..8 symbols from lower + math.
    assert [v for v, _ in groups] == used
    for _, s in groups:
      assert 2 <= len(s) <= 8
      assert all(t in lower or t in math for t in s)
    table = dict(groups)
    assert result == [t for tok in pattern for t in table.get(tok, [tok])]
    assert not structural & set(result) and not structural & set(pattern)

    # Length bounds (EOS added by SeqIO counts towards lime_max_lengths).
    assert len(inputs) <= cfg.max_len and len(targets) <= cfg.max_len
    for maxima in (lime.lime_max_lengths(cfg, mode), lime.lime_max_lengths(cfg)):
      assert len(inputs) + 1 <= maxima["inputs"]
      assert len(targets) + 1 <= maxima["targets"]

    stats["n_vars"].add(len(used))
    stats["n_math"].add(n_math)
    stats["n_var_slots"].add(len(variables))
    stats["sub_len"] |= {len(s) for _, s in groups}
  # The ranges are covered end to end (a few hundred draws are plenty).
  assert stats["n_math"] >= {5, 19} and stats["sub_len"] >= {2, 8}
  assert stats["n_var_slots"] == {6, 8, 10} and stats["n_vars"] >= {2, 3, 4}
  if cfg is PAPER:
    assert 5 in stats["n_vars"]


def test_paper_rejection_never_needed_and_lengths_reach_the_bounds(examples):
  # At 220 no draw is rejected, so the longest examples approach the structural maxima.
  longest = {m: max(len(x) for x, _ in examples[(m, "paper")]) for m in lime.LIME_MODES}
  assert longest["induct"] > longest["abduct"] > longest["deduct"] > 100
  assert all(len(x) <= 220 for m in lime.LIME_MODES for x, _ in examples[(m, "paper")])


def test_max_lengths_values():
  # prefix <= 1+5+1+24+1+20+1 = 53, pattern <= 10+19 = 29, substitution <= 5*12 = 60,
  # result <= 19+10*8 = 99; +1 for EOS; capped at max_len+1.
  assert lime.lime_max_lengths(PAPER, "deduct") == {"inputs": 144, "targets": 100}
  assert lime.lime_max_lengths(PAPER, "abduct") == {"inputs": 183, "targets": 61}
  assert lime.lime_max_lengths(PAPER, "induct") == {"inputs": 214, "targets": 30}
  assert lime.lime_max_lengths(PAPER) == {"inputs": 214, "targets": 100}
  tiny = lime.LIME_TINY
  assert lime.lime_max_lengths(tiny, "deduct") == {"inputs": 128, "targets": 100}
  assert lime.lime_max_lengths(tiny, "abduct") == {"inputs": 128, "targets": 61}
  assert lime.lime_max_lengths(tiny, "induct") == {"inputs": 128, "targets": 30}
  assert lime.lime_max_lengths(tiny) == {"inputs": 128, "targets": 100}


def test_determinism_and_streams():
  a = lime.generate_lime("deduct", PAPER, "train", 3, 17)
  b = lime.generate_lime("deduct", PAPER, "train", 3, 17)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  others = [lime.generate_lime("deduct", PAPER, "validation", 3, 17),
            lime.generate_lime("deduct", PAPER, "train", 4, 17),
            lime.generate_lime("deduct", PAPER, "train", 3, 18),
            lime.generate_lime("abduct", PAPER, "train", 3, 17)]
  for o in others:
    assert not np.array_equal(a[0], o[0])


def test_data_stream_is_pinned():
  # CRC32 of examples 0..9 (seed 0, train) per mode. Conventions the parser cannot see
  # (e.g. variables ordered by their index among the upper symbols, the order of the
  # random draws) live only here: a change to them changes ALL LIME data, so it must
  # be deliberate. Update these numbers only together with the module's docstring.
  expected = {
      "paper": {"deduct": 2741604005, "abduct": 574721111, "induct": 3622271079},
      "tiny": {"deduct": 411392043, "abduct": 1963536403, "induct": 4126986294},
  }
  for name, cfg in CONFIGS.items():
    for mode in lime.LIME_MODES:
      h = 0
      for x, y in _examples(mode, cfg, n=10):
        h = zlib.crc32(np.concatenate([x, [-1], y]).astype("<i4").tobytes(), h)
      assert h == expected[name][mode], (name, mode)


# Run without seqio (so without TensorFlow): `tasks/__init__` then skips the registry,
# and the generator must still work, as on a lean accelerator host.
_SNIPPET = """
import json, sys
sys.modules["seqio"] = None
from tasks.synthetic import lime
from tasks.synthetic.config import PAPER
assert "tensorflow" not in sys.modules
print(json.dumps({name: [[x.tolist(), y.tolist()] for m in lime.LIME_MODES
                         for x, y in (lime.generate_lime(m, cfg, "train", 7, i)
                                      for i in (0, 9))]
                  for name, cfg in (("paper", PAPER), ("tiny", lime.LIME_TINY))}))
"""


def test_determinism_across_processes_without_tensorflow():
  env = dict(os.environ, PYTHONHASHSEED="123", PYTHONPATH=REPO)
  out = subprocess.run([sys.executable, "-c", _SNIPPET], cwd=REPO, env=env,
                       capture_output=True, text=True, check=True).stdout
  theirs = json.loads(out.strip().splitlines()[-1])
  for name, cfg in (("paper", PAPER), ("tiny", lime.LIME_TINY)):
    here = [[x.tolist(), y.tolist()] for m in lime.LIME_MODES
            for x, y in (lime.generate_lime(m, cfg, "train", 7, i) for i in (0, 9))]
    assert theirs[name] == here


def test_bad_configs_rejected():
  small_pool = dataclasses.replace(lime.LIME_TINY, pool_low=2, pool_high=60)
  with pytest.raises(ValueError, match="pool_low.*pool_high"):
    lime.generate_lime("deduct", small_pool, "train", 0, 0)
  with pytest.raises(ValueError, match="max_len"):
    lime.generate_lime("deduct", TINY, "train", 0, 0)  # max_len 64 < MIN_MAX_LEN
  with pytest.raises(ValueError, match="max_len"):
    lime.lime_max_lengths(TINY)
  # Pool 2..503 with specials 508..511 leaves only 504..507: 4 < 7 structural ids.
  crowded = dataclasses.replace(lime.LIME_TINY, pool_high=503)
  with pytest.raises(ValueError, match="vocab_size"):
    lime.generate_lime("induct", crowded, "train", 0, 0)
  with pytest.raises(ValueError, match="vocab_size"):
    lime.LimeSymbols.for_config(crowded)
  with pytest.raises(ValueError, match="mode"):
    lime.generate_lime("deduce", PAPER, "train", 0, 0)
  with pytest.raises(ValueError, match="mode"):
    lime.lime_max_lengths(PAPER, "lime")
  with pytest.raises(ValueError, match="distinct"):
    lime.LimeSymbols(5, 5, 6, 7, 8, 9, 10)
  with pytest.raises(ValueError, match="colon"):
    lime.LimeSymbols(1, 5, 6, 7, 8, 9, 10)
  with pytest.raises(ValueError, match="index"):
    lime.generate_lime("deduct", PAPER, "train", 0, -1)
