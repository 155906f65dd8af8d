"""Compiled (numba) building blocks of the simple-task generators.

Every simple task is one `@kernel` function `(keys, p, out)` that loops over a batch of
examples and writes each one where `out` says (`begin` / `end` below); README "Fast
synthetic data" gives the speed. `take_rows` and `row_hashes` (bottom) serve
`ragged.Batch.take` and the fixed splits' dedup.

Draw j of stream s (attempt a) of the example with key `key` is the counter-based hash
of `tasks/synthetic/counter_rng.py`: `sub = stream_key(key, s, a)`, then
`draw(sub, j) = mix64(sub + (j + 1) * GOLDEN)`. An example's numbers depend only on its
key, so it is the same drawn alone or in any batch, in any process.

Compiled kernels are cached on disk (the first use compiles). Numba keys its cache on
the kernel's own file only, so the cache directory here is keyed on the
hash of every kernel source file and numba's version: editing a helper can never leave
a stale kernel. `$SYNTHPRE_KERNEL_CACHE` overrides the directory (default
`$XDG_CACHE_HOME/synthpre_jax/kernels`, else `~/.cache/...`); an unwritable one means
compiling in every process. Old directories are left for you to delete.

Without numba (a lean accelerator image) the same functions run as plain Python on
numpy scalars with wrapping uint64 arithmetic: the same examples, bit for bit
(tests/test_native_pipeline.py), much slower; `NUMBA_MISSING` says which is used.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Callable, NamedTuple

import functools

import numpy as np

try:
  import numba
except ImportError:  # lean images: plain-Python kernels, the same outputs (see above)
  numba = None

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.counter_rng import GOLDEN, M1, M2, S27, S30, S31

ENV_CACHE = "SYNTHPRE_KERNEL_CACHE"
# The files whose code is compiled into the kernels (their hash names the cache).
KERNEL_SOURCES = ("kernels.py", "counter_rng.py", "generators.py", "registration.py",
                  "unary.py", "binary.py", "set_ops.py")
NUMBA_MISSING = numba is None
NUMBA_PIN = "numba==0.68.1"  # setup.py's pin: `pip install numba==0.68.1` compiles them


class Params(NamedTuple):
  """The config fields a kernel reads (numba takes a NamedTuple, not a dataclass)."""

  min_len: int
  max_len: int
  pool_low: int
  pool_size: int
  arg_divider: int
  word_divider: int
  empty_target: int


def params(cfg: SyntheticConfig) -> Params:
  return Params(cfg.min_len, cfg.max_len, cfg.pool_low, cfg.pool_size,
                cfg.arg_divider, cfg.word_divider, cfg.empty_target)


# ------------------------------------------------------------------ the disk cache


def cache_dir(source_dir: "str | None" = None) -> str:
  """Where compiled kernels are cached (see the module docstring); the hash reads
  `KERNEL_SOURCES` in source_dir (default: this package)."""
  root = os.environ.get(ENV_CACHE)
  if not root:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    root = os.path.join(base, "synthpre_jax", "kernels")
  h = hashlib.sha256(f"numba {numba.__version__} boundscheck "
                     f"{numba.config.BOUNDSCHECK}".encode())
  here = source_dir or os.path.dirname(os.path.abspath(__file__))
  for name in KERNEL_SOURCES:
    with open(os.path.join(here, name), "rb") as f:
      h.update(f.read())
  return os.path.join(root, h.hexdigest()[:16])


@contextlib.contextmanager
def _numba_cache_dir(path: str):
  """numba reads its cache directory when a function is decorated: set it for that."""
  old = numba.config.CACHE_DIR
  numba.config.CACHE_DIR = path
  try:
    yield
  finally:
    numba.config.CACHE_DIR = old


_CACHE_DIR: "str | None" = None


def kernel(fn: Callable) -> Callable:
  """Compiles a task kernel (nopython, no GIL held) with the on-disk cache above."""
  global _CACHE_DIR
  if numba is None:
    return _plain(fn)
  if _CACHE_DIR is None:
    _CACHE_DIR = cache_dir()
    try:
      os.makedirs(_CACHE_DIR, exist_ok=True)
      cache = os.access(_CACHE_DIR, os.W_OK)
    except OSError:
      cache = False
    if not cache:
      _CACHE_DIR = ""  # not writable: compile in every process
  if not _CACHE_DIR:
    return numba.njit(nogil=True)(fn)
  with _numba_cache_dir(_CACHE_DIR):
    return numba.njit(cache=True, nogil=True)(fn)


def _plain(fn: Callable) -> Callable:
  """`fn` as plain Python, with numpy's integer-overflow warnings off (numba wraps)."""
  @functools.wraps(fn)
  def run(*args, **kwargs):
    with np.errstate(over="ignore"):
      return fn(*args, **kwargs)
  return run


def _njit(*args, **kwargs) -> Callable:
  """numba.njit, or (numba missing) the function itself, as `@_njit` or `@_njit(...)`."""
  if numba is not None:
    return numba.njit(*args, **kwargs)
  return args[0] if args and callable(args[0]) else (lambda fn: fn)


helper = _njit  # building blocks: compiled into (and cached with) the kernels

# ------------------------------------------------------------------ draws

_STREAM_BASE = np.uint64(0x5851F42D4C957F2D)
_ATTEMPT_MUL = np.uint64(0xD6E8FEB86659FD93)
_S11, _S32 = np.uint64(11), np.uint64(32)
_TO_UNIT = 2.0 ** -53


@_njit(inline="always")
def mix64(z):
  """SplitMix64's finalizer (the same as counter_rng.mix64)."""
  z = (z ^ (z >> S30)) * M1
  z = (z ^ (z >> S27)) * M2
  return z ^ (z >> S31)


@_njit(inline="always")
def stream_key(key, stream, attempt=0):
  """The sub-key of (stream, attempt) of an example: mix64(key ^ stream_const(s, a))
  with stream_const(s, a) = mix64(mix64(s * GOLDEN + C1) ^ (a * C2))."""
  const = mix64(mix64(np.uint64(stream) * GOLDEN + _STREAM_BASE)
                ^ (np.uint64(attempt) * _ATTEMPT_MUL))
  return mix64(key ^ const)


@_njit(inline="always")
def draw(sub, j):
  """Draw j (a uint64) of a stream."""
  return mix64(sub + np.uint64(j + 1) * GOLDEN)


@_njit(inline="always")
def draw_int(sub, j, lo, hi):
  """Draw j as U{lo..hi} (lo <= hi < lo + 2^31): (top 32 bits * range) >> 32."""
  span = np.uint64(hi - lo + 1)
  return lo + np.int64(((draw(sub, j) >> _S32) * span) >> _S32)


@_njit(inline="always")
def draw_unit(sub, j):
  """Draw j as a float in [0, 1) (top 53 bits)."""
  return np.float64(draw(sub, j) >> _S11) * _TO_UNIT


@_njit(inline="always")
def draw_token(sub, j, p):
  """Draw j as a uniform pool token."""
  return draw_int(sub, j, p.pool_low, p.pool_low + p.pool_size - 1)


# ------------------------------------------------------------------ shared samplers


@helper
def shuffle(values, start, n, sub):
  """Fisher-Yates on values[start:start + n]: swap i with a U{0..i} (draw i), i = n-1..1."""
  for i in range(n - 1, 0, -1):
    r = start + draw_int(sub, i, 0, i)
    t = values[start + i]
    values[start + i] = values[r]
    values[r] = t


@helper
def partition_bins(bins, n, k, sub):
  """bins[0:n] = the bin of each of n balls in k bins, no bin empty: ball j < k goes
  to bin j, ball j >= k to a U{0..k-1} (draw j), so bin sizes are 1 + multinomial(n - k,
  uniform over k) (the reference's partition_no_zeros). Needs 1 <= k <= n."""
  for j in range(n):
    bins[j] = j if j < k else draw_int(sub, j, 0, k - 1)


@helper
def write_number(buf, at, value, pool_low):
  """The decimal digits of value >= 0 at buf[at:], digit d as pool_low + d; returns the
  number of digits (`137 -> [d1 d3 d7]`)."""
  n = 1
  p = 10
  while value >= p:
    n += 1
    p *= 10
  for i in range(n - 1, -1, -1):
    buf[at + i] = pool_low + value % 10
    value //= 10
  return n


# ------------------------------------------------------------------ output


class Out(NamedTuple):
  """Where a kernel writes a batch: example e's inputs go to inputs[input_offsets[e]:]
  (header, then body) and its target to targets[target_offsets[e]:]; `end` sets the
  next offsets. limits = [min body length, max body length, max target length]."""

  inputs: np.ndarray
  input_offsets: np.ndarray
  targets: np.ndarray
  target_offsets: np.ndarray
  header: np.ndarray
  limits: np.ndarray


@helper
def begin(out, e):
  """Writes example e's header; returns (where its body starts, where its target starts)."""
  at = out.input_offsets[e]
  for h in range(len(out.header)):
    out.inputs[at + h] = out.header[h]
  return at + len(out.header), out.target_offsets[e]


@helper
def end(out, e, body_len, target_len, empty_target):
  """Closes example e: an empty target becomes [empty_target]; lengths are checked
  against `limits` (a violation is a generator bug)."""
  if target_len == 0:
    out.targets[out.target_offsets[e]] = empty_target
    target_len = 1
  if body_len > out.limits[1] or target_len > out.limits[2]:
    raise AssertionError("a synthetic kernel wrote more than its declared maximum length")
  if body_len < out.limits[0]:
    raise AssertionError("a synthetic kernel wrote a body shorter than min_len")
  out.input_offsets[e + 1] = out.input_offsets[e] + len(out.header) + body_len
  out.target_offsets[e + 1] = out.target_offsets[e] + target_len


# ------------------------------------------------------------------ ragged rows


@kernel
def take_rows(values, offsets, rows):
  """Rows `rows` (valid indices) of a ragged array (values, offsets): (values, lengths)
  of the result, one pass (numpy needs a repeat, an arange and a gather)."""
  lengths = np.empty(len(rows), np.int64)
  total = 0
  for i in range(len(rows)):
    lengths[i] = offsets[rows[i] + 1] - offsets[rows[i]]
    total += lengths[i]
  out = np.empty(total, values.dtype)
  at = 0
  for i in range(len(rows)):
    start = offsets[rows[i]]
    out[at:at + lengths[i]] = values[start:start + lengths[i]]
    at += lengths[i]
  return out, lengths


@kernel
def row_hashes(values, offsets, k_token, k_length):
  """A 64-bit hash of every row: mix64 of (the wrapping sum over the row of
  mix64(id * k_token + (position + 1) * GOLDEN)) ^ mix64(length * k_length + k_token)."""
  n = len(offsets) - 1
  out = np.empty(n, np.uint64)
  for r in range(n):
    acc = np.uint64(0)
    start = offsets[r]
    for j in range(start, offsets[r + 1]):
      acc += mix64(np.uint64(values[j]) * k_token + np.uint64(j - start + 1) * GOLDEN)
    length = np.uint64(offsets[r + 1] - start)
    out[r] = mix64(acc ^ mix64(length * k_length + k_token))
  return out
