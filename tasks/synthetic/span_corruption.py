"""T5's span-corruption objective in pure numpy, deterministic per example.

Same segmentation rule as T5's `random_spans_noise_mask` and the same output format as
its `span_corruption` (`noise_span_to_unique_sentinel` for inputs,
`nonnoise_span_to_unique_sentinel` for targets), written here from the algorithm's
description; randomness comes from a numpy Generator instead of TF stateless ops, so
the masks are T5's distribution, not T5's exact draws.

For a sequence of `length` tokens (counts computed in float32 and rounded half to even,
as `tf.round` does in T5):

1. num_noise = round(length * noise_density), clamped to [1, length - 1];
   num_spans = max(1, round(num_noise / mean_noise_span_length));
   num_nonnoise = length - num_noise. (A length below 2 is treated as 2 and the mask
   cut back, as in T5: a 1-token sequence gets no noise.)
2. The noise tokens are split into num_spans non-empty spans, and the non-noise tokens
   into num_spans non-empty spans, each by a uniformly random composition: num_spans - 1
   distinct cut points chosen uniformly among the n - 1 gaps (T5 shuffles a 0/1 vector
   with num_spans - 1 ones; same distribution).
3. The spans are interleaved starting with NON-noise: nonnoise_0, noise_0, nonnoise_1,
   noise_1, ... so a mask always starts with a kept token and ends with a noise span
   (T5 without `random_roll`).

Format (sentinel j = first_sentinel - j, counting DOWN like T5's extra_ids, whose
extra_id_0 is 32099): inputs = the tokens with noise span j replaced by sentinel j;
targets = the tokens with non-noise span j replaced by sentinel j and the noise kept,
i.e. `s0 noise_0 s1 noise_1 ...` for a mask from step 3. No EOS is added here.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=4096)
def noise_counts(length: int, noise_density: float,
                 mean_noise_span_length: float) -> tuple[int, int]:
  """(num_noise_tokens, num_noise_spans) of a sequence of `length` tokens, as T5."""
  if length < 1:
    raise ValueError(f"span corruption needs a non-empty sequence, got length {length}")
  n = max(length, 2)
  num_noise = int(np.rint(np.float32(n) * np.float32(noise_density)))
  num_noise = min(max(num_noise, 1), n - 1)
  num_spans = int(np.rint(np.float32(num_noise) / np.float32(mean_noise_span_length)))
  return num_noise, max(num_spans, 1)


def check_params(noise_density: float, mean_noise_span_length: float) -> None:
  """ValueError unless 0 < noise_density < 1 and mean_noise_span_length >= 1."""
  if not 0.0 < noise_density < 1.0:
    raise ValueError(f"noise_density must be in (0, 1), got {noise_density!r}")
  if not mean_noise_span_length >= 1.0:
    raise ValueError(
        f"mean_noise_span_length must be >= 1, got {mean_noise_span_length!r}")


def _random_composition(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
  """k positive parts summing to n, uniform over all such compositions."""
  cuts = np.sort(rng.choice(n - 1, size=k - 1, replace=False)) + 1
  return np.diff(np.concatenate([[0], cuts, [n]]))


def random_spans_noise_mask(rng: np.random.Generator, length: int,
                            noise_density: float = 0.15,
                            mean_noise_span_length: float = 3.0) -> np.ndarray:
  """Boolean mask of `length` (True = noise), segmented as in the module docstring."""
  check_params(noise_density, mean_noise_span_length)
  n = max(length, 2)
  num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
  num_nonnoise = n - num_noise
  if num_spans > num_nonnoise:
    raise ValueError(
        f"length {length} is too short for {num_spans} noise spans with "
        f"noise_density={noise_density}, mean_noise_span_length="
        f"{mean_noise_span_length}: each span needs a kept token before it")
  noise_lengths = _random_composition(rng, num_noise, num_spans)
  nonnoise_lengths = _random_composition(rng, num_nonnoise, num_spans)
  interleaved = np.stack([nonnoise_lengths, noise_lengths], axis=1).reshape(-1)
  is_noise = np.tile([False, True], num_spans)
  return np.repeat(is_noise, interleaved)[:length]


def _replace_spans(tokens: np.ndarray, span_mask: np.ndarray,
                   first_sentinel: int) -> np.ndarray:
  """tokens with each run of True in span_mask replaced by one sentinel (descending)."""
  starts = span_mask & ~np.concatenate([[False], span_mask[:-1]])
  sentinels = first_sentinel - (np.cumsum(starts) - 1)
  out = np.where(starts, sentinels, tokens)
  return out[~span_mask | starts].astype(np.int32)


def span_corrupt(tokens: np.ndarray, noise_mask: np.ndarray,
                 first_sentinel: int) -> tuple[np.ndarray, np.ndarray]:
  """(inputs, targets) of T5 span corruption of `tokens` under `noise_mask`."""
  tokens = np.asarray(tokens)
  noise_mask = np.asarray(noise_mask, bool)
  if tokens.shape != noise_mask.shape or tokens.ndim != 1:
    raise ValueError(f"tokens {tokens.shape} and noise_mask {noise_mask.shape} must be "
                     f"1-D of the same length")
  return (_replace_spans(tokens, noise_mask, first_sentinel),
          _replace_spans(tokens, ~noise_mask, first_sentinel))


def corrupted_lengths(length: int, noise_density: float,
                      mean_noise_span_length: float) -> tuple[int, int]:
  """Lengths (inputs, targets) of the span corruption of a `length`-token sequence
  (no EOS): they depend on the length only, not on the draw."""
  num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
  if length < 2:
    return length, 1  # T5's degenerate case: no noise; targets = one sentinel
  return length - num_noise + num_spans, num_noise + num_spans
