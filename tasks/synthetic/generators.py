"""Pure-numpy generators of the synthetic tasks: one example = f(task, split, seed, index).

No TensorFlow here, so hosts and benchmarks can generate data without it. Adding a task
is one small `@register(...)` function returning (sequence, target); `generate` adds the
name prefix and divider, and `max_lengths` reports the longest possible features.
"""
from __future__ import annotations

import dataclasses
import difflib
import zlib
from typing import Callable

import numpy as np

from tasks.synthetic.config import NAME_PREFIX_LEN, SyntheticConfig

# A sampler draws the part after the task divider ("body") and the target, both
# without EOS, from the example's own random generator.
SampleFn = Callable[[np.random.Generator, SyntheticConfig], "tuple[np.ndarray, np.ndarray]"]
LengthFn = Callable[[SyntheticConfig], int]


@dataclasses.dataclass(frozen=True)
class TaskGenerator:
  """A task's sampler and the longest body / target (no EOS) it can produce."""

  sample: SampleFn
  max_body_len: LengthFn
  max_target_len: LengthFn


GENERATORS: dict[str, TaskGenerator] = {}


def register(name: str, *, max_body_len: LengthFn = lambda cfg: cfg.max_len,
             max_target_len: LengthFn = lambda cfg: cfg.max_len
             ) -> Callable[[SampleFn], SampleFn]:
  """Decorator adding a sampler to `GENERATORS` under `name` with its length bounds."""
  def add(fn: SampleFn) -> SampleFn:
    if name in GENERATORS:
      raise ValueError(f"Synthetic task {name!r} is already registered.")
    GENERATORS[name] = TaskGenerator(fn, max_body_len, max_target_len)
    return fn
  return add


# ------------------------------------------------------------------ helpers


def stable_hash(s: str) -> int:
  """A process-independent 32-bit hash of a string (Python's `hash` is salted)."""
  return zlib.crc32(s.encode("utf-8"))


def example_rng(task: str, split: str, seed: int, index: int) -> np.random.Generator:
  """The random generator of one example, a pure function of its four coordinates."""
  for name, v in (("seed", seed), ("index", index)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
      raise ValueError(f"{name} must be a non-negative int, got {v!r}")
  return np.random.default_rng(
      [stable_hash(task), stable_hash(split), int(seed), int(index)])


def rand_tokens(rng: np.random.Generator, cfg: SyntheticConfig, m: int) -> np.ndarray:
  """m i.i.d. uniform draws from the token pool [pool_low, pool_high]."""
  return rng.integers(cfg.pool_low, cfg.pool_high + 1, size=m, dtype=np.int32)


def partition_no_zeros(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
  """k positive parts summing to n: multinomial(n - k, uniform over k) + 1."""
  if not 1 <= k <= n:
    raise ValueError(f"partition_no_zeros needs 1 <= k <= n, got n={n}, k={k}")
  return rng.multinomial(n - k, np.full(k, 1.0 / k)) + 1


def sample_length(rng: np.random.Generator, cfg: SyntheticConfig) -> int:
  """L ~ U{min_len..max_len}."""
  return int(rng.integers(cfg.min_len, cfg.max_len + 1))


def unique_in_order(seq: np.ndarray) -> np.ndarray:
  """The distinct tokens of seq in order of first occurrence (`aabbbcbbbb -> abc`)."""
  _, first = np.unique(seq, return_index=True)
  return seq[np.sort(first)]


# ------------------------------------------------------------------ tasks


@register("identity")
def identity(rng: np.random.Generator, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = seq."""
  seq = rand_tokens(rng, cfg, sample_length(rng, cfg))
  return seq, seq.copy()


@register("set")
def set_(rng: np.random.Generator, cfg: SyntheticConfig):
  """k tokens (with replacement) repeated by a positive partition of L, shuffled;
  target = the unique tokens in order of first occurrence."""
  length = sample_length(rng, cfg)
  k = int(rng.integers(1, length + 1))
  sizes = partition_no_zeros(rng, length, k)
  seq = np.repeat(rand_tokens(rng, cfg, k), sizes)
  rng.shuffle(seq)
  return seq, unique_in_order(seq)


# ------------------------------------------------------------------ public API


def _get(task: str) -> TaskGenerator:
  if task not in GENERATORS:
    close = difflib.get_close_matches(task, GENERATORS, n=len(GENERATORS), cutoff=0)
    raise ValueError(f"Unknown synthetic task {task!r}. Known (closest first): "
                     f"{', '.join(close)}")
  return GENERATORS[task]


def generate(task: str, cfg: SyntheticConfig, split: str, seed: int,
             index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): int32 (inputs, targets) without EOS.

  inputs = cfg.name_prefix(task) + [cfg.task_divider] + sampled sequence.
  """
  gen = _get(task)
  body, target = gen.sample(example_rng(task, split, seed, index), cfg)
  if len(body) > gen.max_body_len(cfg) or len(target) > gen.max_target_len(cfg):
    raise AssertionError(  # a generator bug: max_lengths would be wrong
        f"{task}: body/target lengths {len(body)}/{len(target)} exceed the declared "
        f"maxima {gen.max_body_len(cfg)}/{gen.max_target_len(cfg)}")
  inputs = np.concatenate(
      [np.asarray(cfg.name_prefix(task) + (cfg.task_divider,), np.int32),
       np.asarray(body, np.int32)])
  return inputs, np.asarray(target, np.int32)


def generate_batch(task: str, cfg: SyntheticConfig, split: str, seed: int, start: int,
                   count: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """Examples start .. start+count-1, as `generate` returns them (ragged)."""
  return [generate(task, cfg, split, seed, i) for i in range(start, start + count)]


def max_lengths(task: str, cfg: SyntheticConfig) -> dict[str, int]:
  """Longest possible `inputs` / `targets` of the task, INCLUDING SeqIO's EOS."""
  gen = _get(task)
  return {"inputs": NAME_PREFIX_LEN + 1 + gen.max_body_len(cfg) + 1,
          "targets": gen.max_target_len(cfg) + 1}
