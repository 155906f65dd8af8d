"""Counter-based random numbers for the vectorized generators.

Draw j of stream s (attempt a) of example i of (task, split, seed) is a 64-bit hash of
those coordinates, computed with SplitMix64's finalizer (`mix64`):

    key_i    = mix64(base(task, split, seed) XOR i)            # one per example
    sub_i,s  = mix64(key_i XOR stream_const(s, a))             # one per example & stream
    draw_j   = mix64(sub_i,s + (j + 1) * 0x9E3779B97F4A7C15)    # SplitMix64's sequence

`base` is the first 8 bytes of BLAKE2b("task\\0split\\0seed"). Why not one
`np.random.Generator` per example (the previous design): building one costs ~15 us and
every call ~1 us, which capped generation near 5k examples/s. A stateless hash is
vectorizable over any set of (example, draw) pairs, and an example's draws never depend
on which other examples share its batch, so an example is the same whether drawn alone
or in any batch, in any process. Samplers name each draw by (stream, position), so
rejection loops redraw with `attempt` + 1 and stay per-example.

Integers U{lo..hi} are (top 32 bits * range) >> 32 (bias below range / 2^32, i.e.
< 1e-5 relative for the 32k-id pool); floats in [0, 1) take the top 53 bits.
"""
from __future__ import annotations

import hashlib
from typing import Sequence, Union

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
GOLDEN = np.uint64(_GOLDEN)
M1 = np.uint64(_M1)
M2 = np.uint64(_M2)
_S30, _S27, _S31, _S11, _S32 = (np.uint64(s) for s in (30, 27, 31, 11, 32))
_TO_UNIT = 2.0 ** -53

IntLike = Union[int, np.ndarray]


def mix64(z: np.ndarray) -> np.ndarray:
  """SplitMix64's finalizer, elementwise on uint64 (a bijection of 64-bit words).

  Works in place on `z` (and returns it); pass a copy to keep the input."""
  t = np.right_shift(z, _S30)
  z ^= t
  z *= M1
  np.right_shift(z, _S27, out=t)
  z ^= t
  z *= M2
  np.right_shift(z, _S31, out=t)
  z ^= t
  return z


def mix64_int(z: int) -> int:
  """`mix64` of one Python int (for constants)."""
  z &= MASK64
  z = ((z ^ (z >> 30)) * _M1) & MASK64
  z = ((z ^ (z >> 27)) * _M2) & MASK64
  return z ^ (z >> 31)


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


_STREAM_CONSTS: dict[tuple[int, int], np.uint64] = {}


def stream_const(stream: int, attempt: int = 0) -> np.uint64:
  """The constant that names (stream, attempt)."""
  key = (stream, attempt)
  c = _STREAM_CONSTS.get(key)
  if c is None:
    c = np.uint64(mix64_int(mix64_int(stream * _GOLDEN + 0x5851F42D4C957F2D)
                            ^ (attempt * 0xD6E8FEB86659FD93)))
    _STREAM_CONSTS[key] = c
  return c


def unit(u: np.ndarray) -> np.ndarray:
  """uint64 words -> float64 in [0, 1) (top 53 bits)."""
  return (u >> _S11).astype(np.float64) * _TO_UNIT


def bounded(u: np.ndarray, n: IntLike) -> np.ndarray:
  """uint64 words -> int64 in [0, n) (1 <= n < 2^31, scalar or elementwise), as
  (top 32 bits * n) >> 32 (Lemire): each value has probability within n / 2^32 of
  1 / n (< 1e-5 relative for the pool of 32k ids). Consumes `u` (in place)."""
  u >>= _S32
  u *= np.asarray(n).astype(np.uint64)
  u >>= _S32
  return u.view(np.int64)


class Draws:
  """The random draws of a batch of examples, by (stream, attempt, position)."""

  def __init__(self, keys: np.ndarray):
    self.keys = keys

  def __len__(self) -> int:
    return len(self.keys)

  def take(self, rows: np.ndarray) -> "Draws":
    """The draws of examples `rows` of this batch (the same numbers as here)."""
    return Draws(self.keys[rows])

  def sub(self, stream: int, attempt: int = 0) -> np.ndarray:
    """Per-example sub-keys of (stream, attempt)."""
    return mix64(self.keys ^ stream_const(stream, attempt))  # `^` makes a new array

  def u64(self, stream: int, attempt: int = 0) -> np.ndarray:
    """Draw 0 of the stream, one word per example."""
    return mix64(self.sub(stream, attempt) + GOLDEN)

  def ints(self, stream: int, lo: IntLike, hi: IntLike, attempt: int = 0) -> np.ndarray:
    """One U{lo..hi} per example (lo <= hi; scalars or per-example arrays)."""
    lo = np.asarray(lo, np.int64)
    return bounded(self.u64(stream, attempt), np.asarray(hi, np.int64) - lo + 1) + lo

  def unit(self, stream: int, attempt: int = 0) -> np.ndarray:
    """One float in [0, 1) per example."""
    return unit(self.u64(stream, attempt))

  def words(self, stream: int, seg: np.ndarray, pos: np.ndarray,
            attempt: int = 0, pos_golden: "np.ndarray | None" = None) -> np.ndarray:
    """Draw `pos` of example `seg`, elementwise (seg: row in this batch).
    `pos_golden` = (pos + 1) * GOLDEN, if the caller has it."""
    z = self.sub(stream, attempt)[seg]
    z += golden_steps(pos) if pos_golden is None else pos_golden
    return mix64(z)

  def elem_ints(self, stream: int, seg: np.ndarray, pos: np.ndarray, lo: IntLike,
                hi: IntLike, attempt: int = 0,
                pos_golden: "np.ndarray | None" = None) -> np.ndarray:
    """U{lo..hi} for draw `pos` of example `seg`, elementwise."""
    lo = np.asarray(lo, np.int64)
    x = bounded(self.words(stream, seg, pos, attempt, pos_golden),
                np.asarray(hi, np.int64) - lo + 1)
    x += lo
    return x


def golden_steps(pos: np.ndarray) -> np.ndarray:
  """(pos + 1) * GOLDEN as uint64: the counter of draw `pos`."""
  g = pos.astype(np.uint64)
  g += np.uint64(1)
  g *= GOLDEN
  return g
