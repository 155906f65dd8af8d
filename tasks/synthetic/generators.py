"""Pure-numpy generators of the synthetic tasks: one example = f(task, split, seed, index).

No TensorFlow here, so hosts and benchmarks can generate data without it. Adding a task
is one small `@register(...)` function returning (sequence, target); `generate` adds the
name prefix and divider, and `max_lengths` reports the longest possible features.

This module holds the registry, the shared helpers and the public API; the tasks live in
`tasks/synthetic/unary.py` and `tasks/synthetic/binary.py`, imported (and so registered)
at the bottom of this module.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import zlib
from typing import Callable, Optional

import numpy as np

from tasks.synthetic.config import NAME_PREFIX_LEN, SyntheticConfig

# A sampler draws the part after the task divider ("body") and the target, both
# without EOS, from the example's own random generator.
SampleFn = Callable[[np.random.Generator, SyntheticConfig], "tuple[np.ndarray, np.ndarray]"]
LengthFn = Callable[[SyntheticConfig], int]
# Raises ValueError, naming the offending config field, if the task cannot be sampled
# under a config (e.g. a max_len too small for the sampler's fixed parts).
CheckFn = Callable[[str, SyntheticConfig], None]


@dataclasses.dataclass(frozen=True)
class TaskGenerator:
  """A task's sampler, the longest body / target (no EOS) it can produce, and the check
  of the configs it supports."""

  sample: SampleFn
  max_body_len: LengthFn
  max_target_len: LengthFn
  check: Optional[CheckFn] = None


GENERATORS: dict[str, TaskGenerator] = {}


def register(name: str, *, max_body_len: LengthFn = lambda cfg: cfg.max_len,
             max_target_len: LengthFn = lambda cfg: cfg.max_len,
             check: Optional[CheckFn] = None) -> Callable[[SampleFn], SampleFn]:
  """Decorator adding a sampler to `GENERATORS` under `name` with its length bounds."""
  def add(fn: SampleFn) -> SampleFn:
    if name in GENERATORS:
      raise ValueError(f"Synthetic task {name!r} is already registered.")
    GENERATORS[name] = TaskGenerator(fn, max_body_len, max_target_len, check)
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


# Answer words. The reference code writes numbers and yes/no with SentencePiece pieces;
# here they are fixed ids at the bottom of the token pool, the same rule for every
# config: digit d (0..9) -> pool_low + d, "yes" -> pool_low + 10, "no" -> pool_low + 11
# (PAPER: digits 2..11, yes 12, no 13). They are ordinary pool ids, so they may also
# occur as random tokens in inputs, as the reference's pieces could.
YES_OFFSET = 10
NO_OFFSET = 11
NUM_ANSWER_IDS = 12


def number_tokens(cfg: SyntheticConfig, n: int) -> np.ndarray:
  """The decimal digits of n >= 0, one token per digit (`137 -> [d1, d3, d7]`)."""
  return np.asarray([cfg.pool_low + int(c) for c in str(int(n))], np.int32)


def require(task: str, cfg: SyntheticConfig, ok: bool, field: str, need: str) -> None:
  """Raises a ValueError naming `field` (a config attribute) unless ok."""
  if not ok:
    raise ValueError(
        f"Synthetic task {task!r} cannot be sampled with this config: {field} must be "
        f"{need}, got {field}={getattr(cfg, field)} ({cfg})")


def require_answer_ids(task: str, cfg: SyntheticConfig) -> None:
  """The pool must hold the `NUM_ANSWER_IDS` answer-word ids."""
  require(task, cfg, cfg.pool_size >= NUM_ANSWER_IDS, "pool_size",
          f">= {NUM_ANSWER_IDS} (digits 0-9, yes, no are pool ids)")


# ------------------------------------------------------------------ public API


def _get(task: str) -> TaskGenerator:
  if task not in GENERATORS:
    close = difflib.get_close_matches(task, GENERATORS, n=len(GENERATORS), cutoff=0)
    raise ValueError(f"Unknown synthetic task {task!r}. Known (closest first): "
                     f"{', '.join(close)}")
  return GENERATORS[task]


@functools.lru_cache(maxsize=None)
def _checked(task: str, cfg: SyntheticConfig) -> TaskGenerator:
  """The task's generator after its config check (cached per (task, cfg))."""
  gen = _get(task)
  if gen.check is not None:
    gen.check(task, cfg)
  return gen


def generate(task: str, cfg: SyntheticConfig, split: str, seed: int,
             index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): int32 (inputs, targets) without EOS.

  inputs = cfg.name_prefix(task) + [cfg.task_divider] + sampled body (for binary tasks
  body = seq + [cfg.arg_divider] + query). An empty target becomes [cfg.empty_target],
  as in the reference code (set operations with an empty result, or `delete` of a
  query from an empty sequence). Raises ValueError if the task cannot be sampled with
  `cfg` (see each task's `check`).
  """
  gen = _checked(task, cfg)
  body, target = gen.sample(example_rng(task, split, seed, index), cfg)
  if len(target) == 0:
    target = np.asarray([cfg.empty_target], np.int32)
  if (not cfg.min_len <= len(body) <= gen.max_body_len(cfg)
      or len(target) > gen.max_target_len(cfg)):
    raise AssertionError(  # a generator bug: max_lengths would be wrong
        f"{task}: body/target lengths {len(body)}/{len(target)} violate the length "
        f"range [{cfg.min_len}, {gen.max_body_len(cfg)}] / the declared maximum "
        f"target length {gen.max_target_len(cfg)}")
  inputs = np.concatenate(
      [np.asarray(cfg.name_prefix(task) + (cfg.task_divider,), np.int32),
       np.asarray(body, np.int32)])
  return inputs, np.asarray(target, np.int32)


def generate_batch(task: str, cfg: SyntheticConfig, split: str, seed: int, start: int,
                   count: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """Examples start .. start+count-1, as `generate` returns them (ragged)."""
  return [generate(task, cfg, split, seed, i) for i in range(start, start + count)]


def max_lengths(task: str, cfg: SyntheticConfig) -> dict[str, int]:
  """Longest possible `inputs` / `targets` of the task, INCLUDING SeqIO's EOS.

  Raises ValueError if the task cannot be sampled with `cfg`, so registering a task
  under an impossible config fails at registration time.
  """
  gen = _checked(task, cfg)
  return {"inputs": NAME_PREFIX_LEN + 1 + gen.max_body_len(cfg) + 1,
          "targets": gen.max_target_len(cfg) + 1}


# Registers the tasks (they import the helpers above, so this comes last).
from tasks.synthetic import binary, unary  # noqa: E402,F401  pylint: disable=wrong-import-position
