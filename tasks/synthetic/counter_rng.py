"""Counter-based random numbers of the synthetic generators: the example keys.

Draw j of stream s (attempt a) of example i of (task, split, seed) is a 64-bit hash of
those coordinates, computed with SplitMix64's finalizer (`mix64`):

    key_i    = mix64(base(task, split, seed) XOR i)            # one per example
    sub_i,s  = mix64(key_i XOR stream_const(s, a))   # per example & stream (kernels.py)
    draw_j   = mix64(sub_i,s + (j + 1) * 0x9E3779B97F4A7C15)    # SplitMix64's sequence

`base` is the first 8 bytes of BLAKE2b("task\\0split\\0seed"). This module computes
the keys (numpy, whole batches); the compiled kernels compute the draws from them
(`tasks/synthetic/kernels.py`: `stream_key`, `draw`). Why not one `np.random.Generator`
per example (the first design): building one costs ~15 us and every call ~1 us, which
capped generation near 5k examples/s. A stateless hash costs nanoseconds, and an
example's draws never depend on which other examples share its batch, so an example is
the same whether drawn alone or in any batch, in any process. Samplers name each draw
by (stream, position), so rejection loops redraw with `attempt` + 1 and stay
per-example.

Integers U{lo..hi} are (top 32 bits * range) >> 32 (bias below range / 2^32, i.e.
< 1e-5 relative for the 32k-id pool); floats in [0, 1) take the top 53 bits.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
S30, S27, S31 = (np.uint64(s) for s in (30, 27, 31))  # mix64's shifts


def mix64(z: np.ndarray) -> np.ndarray:
  """SplitMix64's finalizer, elementwise on uint64 (a bijection of 64-bit words).

  Works in place on `z` (and returns it); pass a copy to keep the input."""
  t = np.right_shift(z, S30)
  z ^= t
  z *= M1
  np.right_shift(z, S27, out=t)
  z ^= t
  z *= M2
  np.right_shift(z, S31, out=t)
  z ^= t
  return z


def _base(task: str, split: str, seed: int) -> int:
  digest = hashlib.blake2b(f"{task}\0{split}\0{int(seed)}".encode("utf-8"),
                           digest_size=8).digest()
  return int.from_bytes(digest, "little")


def check_indices(indices: "Sequence[int] | np.ndarray") -> np.ndarray:
  """Example indices as int64; ValueError unless a 1-D array of ints in [0, 2^63)."""
  a = np.asarray(indices)
  if a.ndim != 1:
    raise ValueError(f"indices must be 1-D, got shape {a.shape}")
  if a.size and (a.dtype == bool or not np.issubdtype(a.dtype, np.integer)):
    raise ValueError(f"indices must be integers, got dtype {a.dtype}")
  a = a.astype(np.int64, copy=False) if a.size else np.zeros(0, np.int64)
  if a.size and a.min() < 0:
    raise ValueError(f"indices must be non-negative, got {int(a.min())}")
  return a


def example_keys(task: str, split: str, seed: int,
                 indices: "Sequence[int] | np.ndarray") -> np.ndarray:
  """uint64 key of each example (see the module docstring)."""
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int, got {seed!r}")
  idx = check_indices(indices).astype(np.uint64)
  return mix64(idx ^ np.uint64(_base(task, split, int(seed))))  # a fresh array

