"""LIME (Wu et al. 2021) as the synthetic pre-training paper (Wu, Li, Liang 2022) used it.

Pure numpy: example `index` of (mode, split, seed) is a pure function of those four
values and the token layout (`SyntheticConfig`).

One example (all draws from `seeding.example_rng(f"lime_{mode}", split, seed, index)`,
so each mode is its own stream, in exactly this order):

1. Symbols: 68 DISTINCT ids drawn uniformly without replacement from the token pool
   [pool_low, pool_high] (`rng.choice(pool_size, 68, replace=False)`); the first 24 are
   the "upper" symbols (rule variables), the next 24 "lower", the last 20 "math".
2. Rule: num_chars ~ U{3..5}; pattern_length ~ U{5..19}; pattern_chars = 2*num_chars
   draws with replacement from upper[:num_chars]; pattern_length draws with
   replacement from math; pattern = a uniform permutation of pattern_chars followed by
   the math draws. The used variables are the distinct upper symbols in pattern_chars,
   ordered by their index in `upper` (NOT by first appearance in the pattern).
3. Substitution: each used variable gets a string of length U{2..8} drawn with
   replacement, uniformly from the 44 symbols lower + math (all lengths in one draw,
   then all symbols in one draw, consumed in variable order). Written as
   `X : [ s1 .. sk ]` per variable, concatenated in variable order.
4. Result: the pattern with every variable replaced by its substitution string.
5. Prefix: `<UPPER>` + used variables (variable order) + `<LOWER>` + the 24 lower
   symbols + `<MATH>` + the 20 math symbols (both in drawn order) + `<sep>`. There is no
   task-name prefix and no task divider (unlike the 18 simple tasks).
6. Modes: deduct = prefix + pattern + <sep> + substitution -> result;
   abduct = prefix + pattern + <sep> + result -> substitution;
   induct = prefix + result + <sep> + substitution -> pattern.
7. Rejection: the WHOLE example (steps 1-6) is redrawn, continuing the same random
   generator, until inputs and targets each have at most `cfg.max_len` tokens (EOS not
   counted). `cfg.max_len` is the paper's 220 in `PAPER`; `cfg.min_len` is ignored (the
   spec sets no lower bound for LIME). With the paper's shapes the longest possible
   inputs/targets are 143/99 (deduct), 182/60 (abduct), 213/29 (induct), so at 220 the
   rejection never fires; it only matters for smaller bounds such as `LIME_TINY`'s,
   where it skews the data toward fewer variables and shorter strings.
   `cfg.max_len` below `MIN_MAX_LEN` (100) is rejected up front: the shortest possible
   input is 67 tokens, and at 100 induct already accepts only ~3% of its draws.

Structural ids (`LimeSymbols.for_config`): the 7 lowest ids in [2, vocab_size) that are
neither in the token pool nor one of the config's four special ids, assigned in the
order `:`, `<sep>`, `<UPPER>`, `[`, `<LOWER>`, `<MATH>`, `]`. For `PAPER` (pool
2..31999, specials 32096..32099) that is exactly the paper's 32000..32006; for `TINY`'s
layout (vocab 512, pool 2..499, specials 508..511) it is 500..506. A layout with fewer
than 7 such ids raises ValueError naming vocab_size / pool_low / pool_high.

The pool must hold at least 68 ids (ValueError naming pool_low / pool_high otherwise).
`LIME_TINY` is `TINY`'s id layout with max_len 127, so that inputs + EOS fit a
128-token feature (acceptance per draw ~0.98 deduct, ~0.58 abduct, ~0.35 induct).
`TINY` itself (max_len 64, below `MIN_MAX_LEN`) is rejected for LIME.

Outputs are int32 arrays WITHOUT EOS; `lime_max_lengths` includes SeqIO's EOS.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Optional

import numpy as np

from tasks.synthetic.config import EOS_ID, TINY, SyntheticConfig
from tasks.synthetic.seeding import example_rng

LIME_MODES = ("deduct", "abduct", "induct")

# Shapes of one example (the paper's; module constants, not configuration).
NUM_UPPER, NUM_LOWER, NUM_MATH = 24, 24, 20
NUM_SYMBOLS = NUM_UPPER + NUM_LOWER + NUM_MATH  # 68 distinct pool ids per example
NUM_CHARS = (3, 5)         # variables available to the rule: U{3..5}
PATTERN_LENGTH = (5, 19)   # math symbols in the pattern: U{5..19}
SUBST_LENGTH = (2, 8)      # length of each variable's substitution string: U{2..8}

# Smallest accepted cfg.max_len. Measured share of unconstrained draws that fit, at
# 100: deduct ~0.37, abduct ~0.07, induct ~0.03 (so up to ~30 redraws per induct
# example, a few ms); below it rejection gets too slow (the floor is 67 tokens).
MIN_MAX_LEN = 100
# Safety net against a pathological loop; unreachable for max_len >= MIN_MAX_LEN.
MAX_ATTEMPTS = 10_000


@dataclasses.dataclass(frozen=True)
class LimeSymbols:
  """Ids of LIME's 7 structural symbols; `for_config` derives them from a layout."""

  colon: int      # ":"
  sep: int        # "<sep>"
  upper: int      # "<UPPER>"
  lbracket: int   # "["
  lower: int      # "<LOWER>"
  math: int       # "<MATH>"
  rbracket: int   # "]"

  def __post_init__(self):
    ids = dataclasses.astuple(self)
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if isinstance(v, bool) or not isinstance(v, int) or v <= EOS_ID:
        raise ValueError(f"LimeSymbols.{f.name} must be an int >= 2, got {v!r}")
    if len(set(ids)) != len(ids):
      raise ValueError(f"LimeSymbols ids must be distinct, got {self}")

  @classmethod
  def for_config(cls, cfg: SyntheticConfig) -> "LimeSymbols":
    """The 7 lowest ids in [2, vocab_size) outside the pool and the special ids."""
    n = len(dataclasses.fields(cls))
    taken = set(cfg.special_ids.values())
    outside_pool = itertools.chain(range(EOS_ID + 1, min(cfg.pool_low, cfg.vocab_size)),
                                   range(cfg.pool_high + 1, cfg.vocab_size))
    free = list(itertools.islice((i for i in outside_pool if i not in taken), n))
    if len(free) == n:
      return cls(*free)
    raise ValueError(
        f"LIME needs {n} structural ids in [2, vocab_size) outside the token pool "
        f"[pool_low={cfg.pool_low}, pool_high={cfg.pool_high}] and the special ids "
        f"{sorted(taken)}, but vocab_size={cfg.vocab_size} leaves only {len(free)} "
        f"free: raise vocab_size or lower pool_high (or raise pool_low).")

  def as_dict(self) -> dict[str, int]:
    return dataclasses.asdict(self)


@functools.lru_cache(maxsize=64)
def check_config(cfg: SyntheticConfig) -> LimeSymbols:
  """Validates `cfg` for LIME and returns its structural ids (ValueError otherwise)."""
  if not isinstance(cfg, SyntheticConfig):
    raise TypeError(f"cfg must be a SyntheticConfig, got {type(cfg).__name__}")
  if cfg.pool_size < NUM_SYMBOLS:
    raise ValueError(
        f"LIME draws {NUM_SYMBOLS} distinct symbols per example, but the token pool "
        f"[pool_low={cfg.pool_low}, pool_high={cfg.pool_high}] holds only "
        f"{cfg.pool_size} ids: widen pool_low..pool_high to >= {NUM_SYMBOLS} ids.")
  if cfg.max_len < MIN_MAX_LEN:
    raise ValueError(
        f"LIME needs max_len >= {MIN_MAX_LEN} (its {NUM_SYMBOLS}-symbol prefix alone "
        f"is 49-53 tokens; the shortest input is 67), got max_len={cfg.max_len}: use "
        f"a config with a larger max_len, e.g. lime.LIME_TINY instead of TINY.")
  return LimeSymbols.for_config(cfg)


def _check_mode(mode: str) -> None:
  if mode not in LIME_MODES:
    raise ValueError(f"Unknown LIME mode {mode!r}; expected one of {LIME_MODES}")


def lime_task_name(mode: str) -> str:
  """The task key of a mode (`lime_deduct`, ...): names its random stream too."""
  _check_mode(mode)
  return f"lime_{mode}"


# ------------------------------------------------------------------ sampling


def _sample_parts(rng: np.random.Generator, cfg: SyntheticConfig, sym: LimeSymbols):
  """One unconstrained draw: (prefix, pattern, substitution, result) as int lists."""
  ids = (cfg.pool_low + rng.choice(cfg.pool_size, NUM_SYMBOLS, replace=False)).tolist()
  upper = ids[:NUM_UPPER]
  lower = ids[NUM_UPPER:NUM_UPPER + NUM_LOWER]
  math = ids[NUM_UPPER + NUM_LOWER:]

  num_chars = int(rng.integers(NUM_CHARS[0], NUM_CHARS[1] + 1))
  pattern_length = int(rng.integers(PATTERN_LENGTH[0], PATTERN_LENGTH[1] + 1))
  var_idx = rng.integers(0, num_chars, size=2 * num_chars).tolist()
  math_idx = rng.integers(0, NUM_MATH, size=pattern_length).tolist()
  pattern = [upper[i] for i in var_idx] + [math[i] for i in math_idx]
  pattern = [pattern[i] for i in rng.permutation(len(pattern)).tolist()]

  used = [upper[i] for i in sorted(set(var_idx))]  # in order of index in `upper`
  lower_math = lower + math
  lengths = rng.integers(SUBST_LENGTH[0], SUBST_LENGTH[1] + 1, size=len(used)).tolist()
  chars = rng.integers(0, len(lower_math), size=sum(lengths)).tolist()
  strings, substitution, at = {}, [], 0
  for var, k in zip(used, lengths):
    s = [lower_math[i] for i in chars[at:at + k]]
    at += k
    strings[var] = s
    substitution += [var, sym.colon, sym.lbracket, *s, sym.rbracket]

  result = []
  for tok in pattern:
    result += strings.get(tok, (tok,))

  prefix = [sym.upper, *used, sym.lower, *lower, sym.math, *math, sym.sep]
  return prefix, pattern, substitution, result


def _assemble(mode: str, prefix, pattern, substitution, result, sep: int):
  if mode == "deduct":
    return prefix + pattern + [sep] + substitution, result
  if mode == "abduct":
    return prefix + pattern + [sep] + result, substitution
  return prefix + result + [sep] + substitution, pattern  # induct


def generate_lime(mode: str, cfg: SyntheticConfig, split: str, seed: int,
                  index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of LIME `mode` for (split, seed): int32 (inputs, targets), no EOS."""
  _check_mode(mode)
  sym = check_config(cfg)
  rng = example_rng(lime_task_name(mode), split, seed, index)
  for _ in range(MAX_ATTEMPTS):
    inputs, targets = _assemble(mode, *_sample_parts(rng, cfg, sym), sep=sym.sep)
    if len(inputs) <= cfg.max_len and len(targets) <= cfg.max_len:
      return np.asarray(inputs, np.int32), np.asarray(targets, np.int32)
  raise RuntimeError(  # unreachable for max_len >= MIN_MAX_LEN
      f"LIME {mode}: no example within max_len={cfg.max_len} after {MAX_ATTEMPTS} "
      f"draws (split={split!r}, seed={seed}, index={index}).")


# ------------------------------------------------------------------ lengths


def _structural_max(mode: str) -> dict[str, int]:
  """Longest possible inputs/targets of a mode before the max_len bound (no EOS)."""
  max_vars = NUM_CHARS[1]  # at most num_chars distinct variables
  prefix = 1 + max_vars + 1 + NUM_LOWER + 1 + NUM_MATH + 1
  pattern = 2 * NUM_CHARS[1] + PATTERN_LENGTH[1]
  substitution = max_vars * (3 + SUBST_LENGTH[1] + 1)  # X : [ s1 .. sk ]
  result = 2 * NUM_CHARS[1] * SUBST_LENGTH[1] + PATTERN_LENGTH[1]
  return {
      "deduct": {"inputs": prefix + pattern + 1 + substitution, "targets": result},
      "abduct": {"inputs": prefix + pattern + 1 + result, "targets": substitution},
      "induct": {"inputs": prefix + result + 1 + substitution, "targets": pattern},
  }[mode]


def lime_max_lengths(cfg: SyntheticConfig, mode: Optional[str] = None
                     ) -> dict[str, int]:
  """Longest possible `inputs` / `targets` INCLUDING SeqIO's EOS.

  Per mode if `mode` is given, else the maximum over the three modes (the `lime`
  mixture). Each is min(cfg.max_len, the mode's structural maximum) + 1, a true upper
  bound; for `PAPER` the structural maxima (143/99, 182/60, 213/29) are reachable.
  """
  check_config(cfg)
  if mode is not None:
    _check_mode(mode)
  modes = LIME_MODES if mode is None else (mode,)
  return {feature: max(min(cfg.max_len, _structural_max(m)[feature]) + 1 for m in modes)
          for feature in ("inputs", "targets")}


# TINY's id layout (vocab 512, pool 2..499, specials 508..511; structural ids 500..506)
# with a bound LIME can meet; inputs + EOS fit 128. Rejection fires here (see top).
LIME_TINY = dataclasses.replace(TINY, max_len=127)
