"""Statistics over seeds for study reports: t intervals, paired sign-flip tests, and a
paired bootstrap of the % of natural benefit. numpy/scipy only (no TensorFlow).

Paired tests and the bootstrap take per-seed scores aligned by seed: `a[i]` and `b[i]`
come from cells that share task, training-set size and seed.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats

ALTERNATIVES = ("two-sided", "greater", "less")
EXACT_MAX_N = 20  # up to 2**20 sign assignments are enumerated
MONTE_CARLO_SEED = 0  # numpy default_rng seed of the sign-flip test beyond EXACT_MAX_N
MONTE_CARLO_DRAWS = 100_000
BOOTSTRAP_SEED = 0  # numpy default_rng seed of benefit_bootstrap_ci
BOOTSTRAP_RESAMPLES = 10_000


class MeanCI(NamedTuple):
  """A mean over seeds with its Student t interval, mean ± half_width; half_width is
  None (interval n/a) for a single value."""
  mean: float
  half_width: Optional[float]
  n: int
  level: float = 0.95

  @property
  def low(self) -> Optional[float]:
    return None if self.half_width is None else self.mean - self.half_width

  @property
  def high(self) -> Optional[float]:
    return None if self.half_width is None else self.mean + self.half_width


class SignFlipResult(NamedTuple):
  """A paired sign-flip test: p-value, mean of a - b, pairs, alternative, and whether
  every sign assignment was enumerated (else a Monte Carlo estimate)."""
  p_value: float
  mean_difference: float
  n: int
  alternative: str
  exact: bool


class BenefitCI(NamedTuple):
  """% of natural benefit (None: undefined) with its percentile bootstrap interval
  (None when there is nothing to resample or a resample is undefined)."""
  estimate: Optional[float]
  low: Optional[float]
  high: Optional[float]
  level: float
  resamples: int
  seed: int
  undefined_resamples: int


def _finite_array(values: Sequence[float], name: str) -> np.ndarray:
  array = np.asarray(values, dtype=np.float64)
  if array.ndim != 1 or array.size == 0:
    raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {values!r}.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} holds a NaN or infinite value: {values!r}.")
  return array


def _check_level(level: float) -> None:
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1), got {level!r}.")


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
  """Mean with the Student t interval mean ± t_{(1+level)/2, n-1} · s / sqrt(n), s the
  sample SD. One value: half_width None. Raises ValueError on empty or non-finite
  input or a level outside (0, 1)."""
  _check_level(level)
  x = _finite_array(values, "values")
  mean = float(np.mean(x))
  if x.size < 2:
    return MeanCI(mean, None, 1, level)
  sd = float(np.std(x, ddof=1))
  t = float(scipy_stats.t.ppf((1.0 + level) / 2.0, x.size - 1))
  return MeanCI(mean, t * sd / math.sqrt(x.size), int(x.size), level)


def smallest_p_value(n: int, alternative: str = "two-sided") -> float:
  """The smallest p an exact sign-flip test on n nonzero differences can give: 1/2^n
  one-sided, 2/2^n two-sided (1 for n = 0)."""
  _check_alternative(alternative)
  if n <= 0:
    return 1.0
  return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / 2.0 ** n)


def _check_alternative(alternative: str) -> None:
  if alternative not in ALTERNATIVES:
    raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}.")


def _all_signed_sums(d: np.ndarray) -> np.ndarray:
  """sum_i s_i d_i for every s in {-1, +1}^n (2^n values)."""
  sums = np.zeros(1)
  for value in d:
    sums = np.concatenate([sums + value, sums - value])
  return sums


def _monte_carlo_signed_sums(d: np.ndarray, draws: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  out, chunk = [], max(1, 2 ** 22 // d.size)
  for start in range(0, draws, chunk):
    signs = rng.choice([-1.0, 1.0], size=(min(chunk, draws - start), d.size))
    out.append(signs @ d)
  return np.concatenate(out)


def _as_extreme(sums: np.ndarray, observed: float, alternative: str,
                tol: float) -> np.ndarray:
  if alternative == "greater":
    return sums >= observed - tol
  if alternative == "less":
    return sums <= observed + tol
  return np.abs(sums) >= abs(observed) - tol


def paired_sign_flip_test(a: Sequence[float], b: Sequence[float],
                          alternative: str = "two-sided") -> SignFlipResult:
  """Paired sign-flip permutation test of mean(a - b) = 0 against `alternative`
  ('greater': a > b; 'less': a < b; 'two-sided').

  p is the fraction of sign assignments of the differences a_i - b_i whose mean is at
  least as extreme as the observed one, the observed assignment included: exact
  (all 2^n) for n <= EXACT_MAX_N, else MONTE_CARLO_DRAWS random assignments drawn with
  numpy default_rng(MONTE_CARLO_SEED), p = (1 + hits) / (1 + draws). All-zero
  differences give p = 1. Raises ValueError on unequal lengths, empty or non-finite
  input, or an unknown alternative.
  """
  _check_alternative(alternative)
  x, y = _finite_array(a, "a"), _finite_array(b, "b")
  if x.size != y.size:
    raise ValueError(f"a and b must pair up seed by seed: {x.size} != {y.size} values.")
  d = x - y
  n = int(d.size)
  mean_difference = float(np.mean(d))
  if not np.any(d):
    return SignFlipResult(1.0, 0.0, n, alternative, True)
  observed = float(np.sum(d))
  tol = 1e-9 * float(np.sum(np.abs(d)))  # summation-order rounding of equal sums
  if n <= EXACT_MAX_N:
    hits = _as_extreme(_all_signed_sums(d), observed, alternative, tol)
    return SignFlipResult(float(np.mean(hits)), mean_difference, n, alternative, True)
  sums = _monte_carlo_signed_sums(d, MONTE_CARLO_DRAWS, MONTE_CARLO_SEED)
  hits = int(np.sum(_as_extreme(sums, observed, alternative, tol)))
  return SignFlipResult((1 + hits) / (1 + MONTE_CARLO_DRAWS), mean_difference, n,
                        alternative, False)


def _benefit(score: np.ndarray, scratch: np.ndarray, natural: np.ndarray) -> np.ndarray:
  gap = natural - scratch
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(gap != 0, 100.0 * (score - scratch) / np.where(gap != 0, gap, 1.0),
                    np.nan)


def benefit_bootstrap_ci(
    tasks: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]], *,
    level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED) -> BenefitCI:
  """% of natural benefit averaged over tasks, with a paired percentile bootstrap.

  `tasks` holds one (source, scratch, natural) triple of per-seed scores per task, the
  three aligned by seed. A task's benefit is 100 (mean source - mean scratch) /
  (mean natural - mean scratch); the estimate is its mean over tasks (None if a task's
  natural == scratch). Each of `resamples` resamples draws, per task, seed indices
  with replacement (numpy default_rng(seed)) and applies them to source, scratch and
  natural together. The interval is None when every task has one seed or when some
  resample has natural == scratch (counted in undefined_resamples). Raises ValueError
  on empty input, misaligned triples or a bad level / resample count.
  """
  _check_level(level)
  if not tasks:
    raise ValueError("benefit_bootstrap_ci needs at least one task.")
  if resamples < 1:
    raise ValueError(f"resamples must be >= 1, got {resamples}.")
  triples = []
  for i, triple in enumerate(tasks):
    arrays = [_finite_array(v, f"task {i} {name}")
              for v, name in zip(triple, ("source", "scratch", "natural"))]
    if len({a.size for a in arrays}) != 1:
      raise ValueError(f"task {i}: source, scratch and natural must be aligned by seed, "
                       f"got {[a.size for a in arrays]} values.")
    triples.append(arrays)
  point = [_benefit(*(np.array([a.mean()]) for a in t))[0] for t in triples]
  estimate = None if np.any(np.isnan(point)) else float(np.mean(point))
  if all(t[0].size < 2 for t in triples):
    return BenefitCI(estimate, None, None, level, resamples, seed, 0)
  rng = np.random.default_rng(seed)
  total = np.zeros(resamples)
  for source, scratch, natural in triples:
    idx = rng.integers(0, source.size, size=(resamples, source.size))
    total += _benefit(source[idx].mean(1), scratch[idx].mean(1), natural[idx].mean(1))
  undefined = int(np.sum(np.isnan(total)))
  if undefined:
    return BenefitCI(estimate, None, None, level, resamples, seed, undefined)
  low, high = np.quantile(total / len(triples), [(1 - level) / 2, (1 + level) / 2])
  return BenefitCI(estimate, float(low), float(high), level, resamples, seed, 0)
