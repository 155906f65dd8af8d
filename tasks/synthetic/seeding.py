"""Per-example random generators of the per-example families (LIME, nesting, nonsense
summary): a numpy Generator seeded by (task, split, seed, index), the same in any process."""
from __future__ import annotations

import zlib

import numpy as np


def stable_hash(s: str) -> int:
  """A process-independent 32-bit hash of a string (Python's `hash` is salted)."""
  return zlib.crc32(s.encode("utf-8"))


def example_rng(task: str, split: str, seed: int, index: int) -> np.random.Generator:
  """A per-example numpy Generator, for the per-example families (LIME, nesting)."""
  for name, v in (("seed", seed), ("index", index)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
      raise ValueError(f"{name} must be a non-negative int, got {v!r}")
  return np.random.default_rng(
      [stable_hash(task), stable_hash(split), int(seed), int(index)])
