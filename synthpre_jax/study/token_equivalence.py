"""Natural-token equivalence: how many natural pre-training tokens give a source's score.

The curve is the downstream score of one pre-training run fine-tuned from several of its
steps (study sources `<run>@<step>`, the study spec's `token_steps`, synthpre_jax/study/spec.py), against the
pre-training tokens each step stands for. Its mean scores are made monotone
non-decreasing in tokens (weighted isotonic regression, pool-adjacent-violators, weights
= seeds per point) and joined piecewise-linearly (linear in tokens); a score's equivalent
is the fewest tokens at which that fit reaches it. A score under the fit's first point is
-inf ("below" the smallest point, 0 tokens when the curve starts at step 0), one above
its last point +inf ("beyond" the largest). The interval is a percentile bootstrap over
seeds: each curve point's and the source's per-seed scores are resampled independently
(numpy default_rng(seed)), the curve refitted and the score inverted. numpy only.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np

BOOTSTRAP_SEED = 0  # numpy default_rng seed of equivalence_ci
BOOTSTRAP_RESAMPLES = 4000


class EquivalenceCI(NamedTuple):
  """Equivalent tokens (-inf: below the curve, +inf: beyond it) with its percentile
  bootstrap interval (None when nothing has two seeds to resample)."""
  estimate: float
  low: Optional[float]
  high: Optional[float]
  level: float
  resamples: int
  seed: int


def isotonic_fit(values: Sequence[float], weights: Optional[Sequence[float]] = None
                 ) -> np.ndarray:
  """The weighted least-squares non-decreasing fit of `values` in their order (pool
  adjacent violators): a noisy curve made monotone before it is inverted."""
  y = np.asarray(values, dtype=np.float64)
  w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
  if y.ndim != 1 or y.size == 0 or w.shape != y.shape or np.any(w <= 0):
    raise ValueError(f"isotonic_fit needs a non-empty 1-D sequence and as many positive "
                     f"weights, got {values!r} and {weights!r}.")
  blocks: list[list[float]] = []  # [mean, weight, count]
  for value, weight in zip(y, w):
    blocks.append([float(value), float(weight), 1])
    while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
      m2, w2, c2 = blocks.pop()
      m1, w1, c1 = blocks.pop()
      blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
  return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])


def invert(tokens: Sequence[float], fitted: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """Per row, the fewest tokens at which the piecewise-linear non-decreasing `fitted`
  (rows x points, or one row) reaches `scores`; -inf below its first point, +inf above
  its last: the inverse of the fitted curve."""
  t = np.asarray(tokens, dtype=np.float64)
  f = np.atleast_2d(np.asarray(fitted, dtype=np.float64))
  s = np.broadcast_to(np.asarray(scores, dtype=np.float64), f.shape[:1]).astype(np.float64)
  out = np.empty(f.shape[0])
  below, beyond = s < f[:, 0], s > f[:, -1]
  inside = ~(below | beyond)
  j = np.argmax(f >= s[:, None], axis=1)  # first point reaching the score
  rows = np.nonzero(inside)[0]
  jr = j[rows]
  at_first = jr == 0
  out[rows[at_first]] = t[0]
  r, k = rows[~at_first], jr[~at_first]
  f0, f1 = f[r, k - 1], f[r, k]  # f0 < score <= f1
  out[r] = t[k - 1] + (s[r] - f0) / (f1 - f0) * (t[k] - t[k - 1])
  out[below], out[beyond] = -math.inf, math.inf
  return out


def _check_curve(tokens: Sequence[float], curve: Sequence[Sequence[float]]
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
  t = np.asarray(tokens, dtype=np.float64)
  arrays = [np.asarray(c, dtype=np.float64) for c in curve]
  if t.ndim != 1 or t.size < 2 or len(arrays) != t.size:
    raise ValueError(f"A token curve needs >= 2 points, one list of per-seed scores per "
                     f"token count; got {t.size} token counts and {len(arrays)} lists.")
  if np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
    raise ValueError(f"The curve's token counts must be finite and increasing: {list(t)}.")
  if any(a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
    raise ValueError("Every curve point needs finite per-seed scores.")
  return t, arrays


def equivalent_tokens(tokens: Sequence[float], curve: Sequence[Sequence[float]],
                      score: float) -> float:
  """Tokens at which the isotonic, piecewise-linear fit of the curve's mean scores
  (`curve[i]`: per-seed scores at `tokens[i]`, increasing) reaches `score`; -inf/+inf
  outside the curve. Raises ValueError on a malformed curve."""
  t, arrays = _check_curve(tokens, curve)
  fitted = isotonic_fit([a.mean() for a in arrays], [a.size for a in arrays])
  return float(invert(t, fitted, np.array([float(score)]))[0])


def _order_statistics(values: np.ndarray, level: float) -> tuple[float, float]:
  """Percentile bounds without interpolation (values may be infinite)."""
  v = np.sort(values)
  lo = int(math.floor((1.0 - level) / 2.0 * (v.size - 1)))
  hi = int(math.ceil((1.0 + level) / 2.0 * (v.size - 1)))
  return float(v[lo]), float(v[hi])


def equivalence_ci(tokens: Sequence[float], curve: Sequence[Sequence[float]],
                   scores: Sequence[float], *, level: float = 0.95,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                   ) -> EquivalenceCI:
  """`equivalent_tokens` of mean(`scores`) with a percentile bootstrap interval: each
  resample draws every curve point's seeds and the source's seeds with replacement
  (independently), refits the curve and inverts. Raises ValueError on bad input."""
  if not 0.0 < level < 1.0 or resamples < 1:
    raise ValueError(f"level must be in (0, 1) and resamples >= 1, got {level}, {resamples}.")
  t, arrays = _check_curve(tokens, curve)
  x = np.asarray(scores, dtype=np.float64)
  if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
    raise ValueError(f"scores must be a non-empty list of finite numbers, got {scores!r}.")
  estimate = equivalent_tokens(t, arrays, float(x.mean()))
  if all(a.size < 2 for a in arrays) and x.size < 2:
    return EquivalenceCI(estimate, None, None, level, resamples, seed)
  rng = np.random.default_rng(seed)
  means = np.stack([a[rng.integers(0, a.size, size=(resamples, a.size))].mean(1)
                    for a in arrays], axis=1)
  weights = [a.size for a in arrays]
  fitted = np.stack([isotonic_fit(row, weights) for row in means])
  drawn = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(1)
  low, high = _order_statistics(invert(t, fitted, drawn), level)
  return EquivalenceCI(estimate, low, high, level, resamples, seed)
