"""synthpre_jax.study.stats: t intervals, paired sign-flip tests and the benefit bootstrap,
checked against values worked out by hand."""
import itertools
import math

import numpy as np
import pytest

from synthpre_jax.study import stats


def _hand_sign_flip_p(d, alternative):
  """Reference p-value: enumerate every sign assignment with itertools."""
  observed = sum(d)
  sums = [sum(s * x for s, x in zip(signs, d))
          for signs in itertools.product((1, -1), repeat=len(d))]
  if alternative == "greater":
    hits = [t >= observed - 1e-12 for t in sums]
  elif alternative == "less":
    hits = [t <= observed + 1e-12 for t in sums]
  else:
    hits = [abs(t) >= abs(observed) - 1e-12 for t in sums]
  return sum(hits) / len(sums)


def test_sign_flip_one_to_five():
  a, b = [1, 2, 3, 4, 5], [0] * 5
  two = stats.paired_sign_flip_test(a, b)
  assert two.p_value == pytest.approx(2 / 32) and two.exact and two.n == 5
  assert two.mean_difference == pytest.approx(3.0)
  assert stats.paired_sign_flip_test(a, b, "greater").p_value == pytest.approx(1 / 32)
  assert stats.paired_sign_flip_test(a, b, "less").p_value == pytest.approx(1.0)
  assert stats.paired_sign_flip_test(b, a, "less").p_value == pytest.approx(1 / 32)


def test_sign_flip_mixed_signs_by_hand():
  # d = [3, -1, 2], observed sum 4; the 8 signed sums are 6, 2, 4, 0, 0, -4, -2, -6.
  a, b = [3, 0, 5], [0, 1, 3]
  assert stats.paired_sign_flip_test(a, b, "greater").p_value == pytest.approx(2 / 8)
  assert stats.paired_sign_flip_test(a, b, "two-sided").p_value == pytest.approx(4 / 8)
  assert stats.paired_sign_flip_test(a, b, "less").p_value == pytest.approx(7 / 8)
  d = [0.7, -0.3, 1.1, 0.2, -0.4, 0.9]
  for alternative in stats.ALTERNATIVES:
    assert stats.paired_sign_flip_test(d, [0] * 6, alternative).p_value == pytest.approx(
        _hand_sign_flip_p(d, alternative))


def test_sign_flip_zeros_and_ties():
  for alternative in stats.ALTERNATIVES:  # all-zero differences
    result = stats.paired_sign_flip_test([1.5, 2.0, 3.0], [1.5, 2.0, 3.0], alternative)
    assert result.p_value == 1.0 and result.mean_difference == 0.0
  # A zero difference counts both ways: d = [0, 0, 2] -> sums 2 or -2, half each.
  assert stats.paired_sign_flip_test([0, 0, 2], [0, 0, 0], "greater").p_value == 0.5
  assert stats.paired_sign_flip_test([0, 0, 2], [0, 0, 0]).p_value == 1.0
  # Tied magnitudes cancelling: d = [1, -1], observed 0; sums 2, 0, 0, -2.
  assert stats.paired_sign_flip_test([1, 0], [0, 1]).p_value == 1.0
  assert stats.paired_sign_flip_test([1, 0], [0, 1], "greater").p_value == 0.75


def test_sign_flip_float_rounding_counts_the_observed_assignment():
  # 0.3 - 0.2 etc. are not exact in binary; the observed assignment must still count.
  a, b = [0.3, 0.5, 0.7], [0.2, 0.3, 0.4]
  assert stats.paired_sign_flip_test(a, b, "greater").p_value == pytest.approx(1 / 8)
  assert stats.paired_sign_flip_test(a, b).p_value == pytest.approx(2 / 8)


def test_sign_flip_monte_carlo_beyond_exact_limit():
  n = stats.EXACT_MAX_N + 5
  a = list(range(1, n + 1))
  first = stats.paired_sign_flip_test(a, [0] * n, "greater")
  assert not first.exact and first.n == n
  # Counting the observed assignment: p >= 1 / (1 + draws), and seeded: repeatable.
  assert first.p_value >= 1 / (1 + stats.MONTE_CARLO_DRAWS)
  assert first.p_value < 1e-3
  assert stats.paired_sign_flip_test(a, [0] * n, "greater") == first
  # Observed mean 0: every drawn assignment is as extreme, p = (1 + draws) / (1 + draws).
  balanced = stats.paired_sign_flip_test([1, -1] * n, [0] * (2 * n))
  assert not balanced.exact and balanced.p_value == 1.0


def test_sign_flip_bad_inputs():
  with pytest.raises(ValueError, match="pair up"):
    stats.paired_sign_flip_test([1, 2], [1])
  with pytest.raises(ValueError, match="alternative"):
    stats.paired_sign_flip_test([1], [0], "bigger")
  with pytest.raises(ValueError, match="NaN"):
    stats.paired_sign_flip_test([1, float("nan")], [0, 0])
  with pytest.raises(ValueError, match="non-empty"):
    stats.paired_sign_flip_test([], [])


def test_smallest_p_value():
  assert stats.smallest_p_value(5, "greater") == 1 / 32
  assert stats.smallest_p_value(4, "greater") == 1 / 16 > 0.05  # 4 seeds: never significant
  assert stats.smallest_p_value(5) == 2 / 32
  assert stats.smallest_p_value(0) == 1.0
  # The bound is reached: all differences positive.
  assert stats.paired_sign_flip_test([1, 2, 3, 4], [0] * 4, "greater").p_value == 1 / 16


def test_mean_ci_against_hand_t_quantile():
  ci = stats.mean_ci([1, 2, 3, 4, 5])
  sd = math.sqrt(2.5)  # sample SD of 1..5
  assert ci.mean == 3.0 and ci.n == 5 and ci.level == 0.95
  assert ci.half_width == pytest.approx(2.776445 * sd / math.sqrt(5), rel=1e-6)
  assert ci.low == pytest.approx(3 - 1.963243, abs=1e-6)
  assert ci.high == pytest.approx(3 + 1.963243, abs=1e-6)
  ninety = stats.mean_ci([1, 2, 3, 4, 5], level=0.90)  # t_{0.95, 4} = 2.131847
  assert ninety.half_width == pytest.approx(2.131847 * sd / math.sqrt(5), rel=1e-6)
  two = stats.mean_ci([30.0, 32.0])  # t_{0.975, 1} = 12.706205, SD sqrt(2)
  assert two.half_width == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)


def test_mean_ci_one_value_and_constant_values():
  one = stats.mean_ci([0.7])
  assert one.mean == 0.7 and one.n == 1
  assert one.half_width is None and one.low is None and one.high is None
  flat = stats.mean_ci([2.0, 2.0, 2.0])
  assert flat.half_width == 0.0 and flat.low == flat.high == 2.0
  with pytest.raises(ValueError, match="level"):
    stats.mean_ci([1, 2], level=95)
  with pytest.raises(ValueError, match="non-empty"):
    stats.mean_ci([])


def test_benefit_bootstrap_one_seed_and_average_over_tasks():
  one = stats.benefit_bootstrap_ci([([30.0], [10.0], [50.0])])
  assert one.estimate == pytest.approx(50.0) and one.low is None and one.high is None
  # Two tasks: 50% and 100 * (0.2 - 0.1) / (0.5 - 0.1) = 25% -> mean 37.5%.
  two = stats.benefit_bootstrap_ci([([30.0], [10.0], [50.0]), ([0.2], [0.1], [0.5])])
  assert two.estimate == pytest.approx(37.5)
  undefined = stats.benefit_bootstrap_ci([([30.0], [10.0], [10.0])])
  assert undefined.estimate is None


def test_benefit_bootstrap_resamples_seeds_jointly():
  # On every seed the source sits half way between scratch and natural, while the seeds
  # differ a lot: joint resampling gives exactly 50% every time, independent would not.
  scratch = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
  natural = np.array([11.0, 13.0, 20.0, 12.0, 9.0])
  source = (scratch + natural) / 2
  ci = stats.benefit_bootstrap_ci([(source, scratch, natural)], resamples=2000)
  assert ci.estimate == pytest.approx(50.0)
  assert ci.low == pytest.approx(50.0) and ci.high == pytest.approx(50.0)
  assert ci.resamples == 2000 and ci.seed == stats.BOOTSTRAP_SEED


def test_benefit_bootstrap_is_seeded_and_brackets_the_estimate():
  task = ([15.0, 16.5, 17.0, 18.0, 19.5], [10.0, 11.0, 12.0, 13.0, 14.0],
          [20.0, 22.0, 21.0, 25.0, 23.0])
  first = stats.benefit_bootstrap_ci([task])
  assert first == stats.benefit_bootstrap_ci([task])  # fixed default seed
  assert first.seed == stats.BOOTSTRAP_SEED and first.resamples == stats.BOOTSTRAP_RESAMPLES
  assert first.low < first.estimate < first.high
  other = stats.benefit_bootstrap_ci([task], seed=first.seed + 1)
  assert (other.low, other.high) != (first.low, first.high)
  assert stats.benefit_bootstrap_ci([task], level=0.5).high < first.high


def test_benefit_bootstrap_undefined_resamples():
  # Seed 1 has natural == scratch: resampling it twice leaves no natural benefit.
  ci = stats.benefit_bootstrap_ci([([3.0, 2.0], [1.0, 2.0], [5.0, 2.0])], resamples=1000)
  assert ci.estimate == pytest.approx(100 * (2.5 - 1.5) / (3.5 - 1.5))
  assert ci.undefined_resamples > 0 and ci.low is None and ci.high is None


def test_benefit_bootstrap_bad_inputs():
  with pytest.raises(ValueError, match="aligned by seed"):
    stats.benefit_bootstrap_ci([([1.0, 2.0], [1.0], [2.0, 3.0])])
  with pytest.raises(ValueError, match="at least one task"):
    stats.benefit_bootstrap_ci([])
  with pytest.raises(ValueError, match="resamples"):
    stats.benefit_bootstrap_ci([([1.0], [0.0], [2.0])], resamples=0)
