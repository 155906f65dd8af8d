"""Pure-numpy, vectorized generators of the 18 simple synthetic tasks.

Example i of (task, split, seed) is a pure function of those four values: every random
number it uses is a counter-based hash of (task, split, seed, i, stream, position)
(`tasks/synthetic/counter_rng.py`). A sampler therefore draws a whole batch of
examples with a few whole-array numpy operations, and an example is the same whether
drawn alone (`generate`) or in any batch (`generate_batch`), in any process.

No TensorFlow here, so hosts and benchmarks can generate data without it. Adding a task
is one `@register(...)` function `(draws, cfg) -> (body, target)` over a batch (both
`Ragged`); `generate_batch` adds the name prefix and divider, and `max_lengths`
reports the longest possible features. The tasks live in `tasks/synthetic/unary.py`
and `tasks/synthetic/binary.py`, imported (and so registered) at the bottom.

Batches are processed in blocks of `BLOCK` examples (cache-sized arrays); the result
does not depend on the block size.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import zlib
from typing import Callable, Optional, Sequence

import numpy as np

from tasks.synthetic import counter_rng, malloc_tuning
from tasks.synthetic.config import NAME_PREFIX_LEN, SyntheticConfig
from tasks.synthetic.counter_rng import Draws
from tasks.synthetic.ragged import (Batch, Ragged, concat_rows, const_rows, offsets,
                                    positions, segment_ids)

# A sampler draws the part after the task divider ("body") and the target of every
# example of a batch, both without EOS.
SampleFn = Callable[[Draws, SyntheticConfig], "tuple[Ragged, Ragged]"]
LengthFn = Callable[[SyntheticConfig], int]
# Raises ValueError, naming the offending config field, if the task cannot be sampled
# under a config (e.g. a max_len too small for the sampler's fixed parts).
CheckFn = Callable[[str, SyntheticConfig], None]

BLOCK = 2048  # examples per internal block (<= 2^SEG_BITS)


@dataclasses.dataclass(frozen=True)
class TaskGenerator:
  """A task's batch sampler, the longest body / target (no EOS) it can produce, and the
  check of the configs it supports."""

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
  """A per-example numpy Generator, for the per-example families (LIME, nesting)."""
  for name, v in (("seed", seed), ("index", index)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
      raise ValueError(f"{name} must be a non-negative int, got {v!r}")
  return np.random.default_rng(
      [stable_hash(task), stable_hash(split), int(seed), int(index)])


class Elements:
  """Row / position bookkeeping of a ragged layout with the given row lengths."""

  def __init__(self, lengths: np.ndarray):
    self.lengths = np.asarray(lengths, np.int64)
    self.offsets = offsets(self.lengths)
    self.seg = segment_ids(self.lengths)
    self.pos = positions(self.lengths, self.offsets)

  @property
  def start(self) -> np.ndarray:
    """Flat index of each row's first element."""
    return self.offsets[:-1]

  @functools.cached_property
  def pos_golden(self) -> np.ndarray:
    """The draw counters of `pos` (see counter_rng.golden_steps), shared by streams."""
    return counter_rng.golden_steps(self.pos)

  @functools.cached_property
  def row_start(self) -> np.ndarray:
    """Flat index of the first element of every element's row."""
    return self.start[self.seg]

  def row_of(self, per_row: np.ndarray) -> np.ndarray:
    """A per-row value broadcast to every element."""
    return per_row[self.seg]

  def draw_ints(self, draws: Draws, stream: int, lo, hi, attempt: int = 0) -> np.ndarray:
    """Draw `pos` of every element's row: U{lo..hi} (scalars or per element)."""
    return draws.elem_ints(stream, self.seg, self.pos, lo, hi, attempt, self.pos_golden)


def rand_tokens(draws: Draws, cfg: SyntheticConfig, stream: int, seg: np.ndarray,
                pos: np.ndarray, attempt: int = 0,
                pos_golden: "np.ndarray | None" = None) -> np.ndarray:
  """Uniform draws from the token pool [pool_low, pool_high] (int32), elementwise."""
  return draws.elem_ints(stream, seg, pos, cfg.pool_low, cfg.pool_high, attempt,
                         pos_golden).astype(np.int32)


def elem_tokens(draws: Draws, cfg: SyntheticConfig, stream: int, el: "Elements",
                attempt: int = 0) -> np.ndarray:
  """Draw `pos` of the token stream for every element of `el`."""
  return rand_tokens(draws, cfg, stream, el.seg, el.pos, attempt, el.pos_golden)


def partition_bins(draws: Draws, stream: int, n: np.ndarray, k: np.ndarray) -> Elements:
  """partition_no_zeros(n, k) in element form: the n elements of each row get bins,
  the first k the bins 0..k-1 (every part non-empty) and the other n - k a U{0..k-1}
  each (draw j of `stream` for element j), so the part sizes are multinomial(n - k,
  uniform over k) + 1. Returns the Elements of n with `.bin` set."""
  el = Elements(n)
  kk = el.row_of(np.asarray(k, np.int64))
  balls = el.draw_ints(draws, stream, 0, np.maximum(kk, 1) - 1)
  el.bin = np.where(el.pos < kk, el.pos, balls)
  return el


def partition_no_zeros(draws: Draws, stream: int, n: np.ndarray,
                       k: np.ndarray) -> Ragged:
  """Part sizes of `partition_bins` per row (k positive parts summing to n)."""
  n, k = np.asarray(n, np.int64), np.asarray(k, np.int64)
  if np.any(k < 1) or np.any(k > n):
    raise ValueError(f"partition_no_zeros needs 1 <= k <= n, got n={n}, k={k}")
  el = partition_bins(draws, stream, n, k)
  koffs = offsets(k)
  sizes = np.bincount(koffs[el.seg] + el.bin, minlength=int(koffs[-1]))
  return Ragged(sizes.astype(np.int64), k)


# Bit layout of shuffle keys: [row: SEG_BITS][random: 41][position: POS_BITS] <= 63.
POS_BITS = 11  # config.MAX_LEN_LIMIT = 2^11 - 1
SEG_BITS = 11  # BLOCK <= 2^11
RAND_BITS = 41


def shuffle_order(draws: Draws, stream: int, el: Elements) -> np.ndarray:
  """A uniformly random permutation within every row: flat indices `perm` such that
  `x[perm]` is x shuffled row by row. Sorts (row, 41 random bits, position) packed in
  an int64 of fixed layout; random keys of one row tie with probability < 1e-8, and
  ties keep position order."""
  if not len(el.seg):
    return np.zeros(0, np.int64)
  if int(el.seg[-1]) >> SEG_BITS or int(el.lengths.max()) > (1 << POS_BITS):
    raise ValueError(f"shuffle_order: at most {1 << SEG_BITS} rows of <= "
                     f"{1 << POS_BITS} elements")
  key = draws.words(stream, el.seg, el.pos, pos_golden=el.pos_golden)
  key >>= np.uint64(64 - RAND_BITS)
  key <<= np.uint64(POS_BITS)
  key = key.view(np.int64)
  key |= el.pos
  key |= el.seg << (RAND_BITS + POS_BITS)
  key.sort()
  key &= (1 << POS_BITS) - 1
  key += el.row_start
  return key


def number_tokens(cfg: SyntheticConfig, n: "int | np.ndarray") -> "np.ndarray | Ragged":
  """Decimal digits, one token per digit, digit d -> pool_low + d (`137 -> [d1 d3 d7]`).

  An int gives one int32 array; an array of ints gives a Ragged of their digits."""
  if np.ndim(n) == 0:
    return np.asarray([cfg.pool_low + int(c) for c in str(int(n))], np.int32)
  n = np.asarray(n, np.int64)
  ndig = np.ones(len(n), np.int64)
  p = 10
  while np.any(n >= p):
    ndig += n >= p
    p *= 10
  el = Elements(ndig)
  power = 10 ** (el.row_of(ndig) - 1 - el.pos)
  digits = (el.row_of(n) // power) % 10
  return Ragged((digits + cfg.pool_low).astype(np.int32), ndig)


# Answer words. The reference code writes numbers and yes/no with SentencePiece pieces;
# here they are fixed ids at the bottom of the token pool, the same rule for every
# config: digit d (0..9) -> pool_low + d, "yes" -> pool_low + 10, "no" -> pool_low + 11
# (PAPER: digits 2..11, yes 12, no 13). They are ordinary pool ids, so they may also
# occur as random tokens in inputs, as the reference's pieces could.
YES_OFFSET = 10
NO_OFFSET = 11
NUM_ANSWER_IDS = 12


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


def _block(task: str, gen: TaskGenerator, cfg: SyntheticConfig, keys: np.ndarray) -> Batch:
  body, target = gen.sample(Draws(keys), cfg)
  empty = target.lengths == 0
  if empty.any():  # [empty_target] in place of an empty result
    target = concat_rows([target, Ragged(np.full(int(empty.sum()), cfg.empty_target,
                                                 np.int32), empty.astype(np.int64))])
  if len(keys) and (body.lengths.min() < cfg.min_len
                    or body.lengths.max() > gen.max_body_len(cfg)
                    or target.lengths.max() > gen.max_target_len(cfg)):
    raise AssertionError(  # a generator bug: max_lengths would be wrong
        f"{task}: body/target lengths {body.lengths.min()}..{body.lengths.max()} / "
        f"{target.lengths.max()} violate the length range [{cfg.min_len}, "
        f"{gen.max_body_len(cfg)}] / the declared maximum target length "
        f"{gen.max_target_len(cfg)}")
  header = const_rows(cfg.name_prefix(task) + (cfg.task_divider,), len(keys))
  inputs = concat_rows([header, body])
  return Batch(inputs.values, inputs.lengths, target.values.astype(np.int32),
               target.lengths)


def generate_batch(task: str, cfg: SyntheticConfig, split: str, seed: int,
                   indices: "Sequence[int] | np.ndarray") -> Batch:
  """Examples `indices` of (task, split, seed) as a ragged int32 `Batch`, no EOS.

  inputs = cfg.name_prefix(task) + [cfg.task_divider] + sampled body (for binary tasks
  body = seq + [cfg.arg_divider] + query). An empty target becomes [cfg.empty_target],
  as in the reference code (set operations with an empty result, or `delete` of a
  query from an empty sequence). Example j of the result is the same for any batch
  holding its index. Raises ValueError if the task cannot be sampled with `cfg` (see
  each task's `check`) or an index is not a non-negative int.
  """
  gen = _checked(task, cfg)
  malloc_tuning.tune()
  keys = counter_rng.example_keys(task, split, seed, indices)
  blocks = [_block(task, gen, cfg, keys[s:s + BLOCK])
            for s in range(0, max(len(keys), 1), BLOCK)]
  return blocks[0] if len(blocks) == 1 else Batch.concatenate(blocks)


def generate(task: str, cfg: SyntheticConfig, split: str, seed: int,
             index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): int32 (inputs, targets) without EOS.

  The same as example 0 of `generate_batch(task, cfg, split, seed, [index])`."""
  if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
    raise ValueError(f"index must be a non-negative int, got {index!r}")
  return generate_batch(task, cfg, split, seed, [index]).example(0)


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
