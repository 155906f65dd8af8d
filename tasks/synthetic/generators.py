"""The 18 simple synthetic tasks: registry, config checks and the batch API.

Example i of (task, split, seed) is a pure function of those four values: every random
number it uses is a counter-based hash of (task, split, seed, i, stream, position)
(`tasks/synthetic/counter_rng.py` for the example keys, `tasks/synthetic/kernels.py`
for the draws). Each task is a compiled kernel that writes a whole batch in one call, and
an example is the same whether drawn alone (`generate`) or in any batch
(`generate_batch`), in any process.

No TensorFlow here, so hosts and benchmarks can generate data without it. Adding a task
is one `@register(...)` above a `@kernels.kernel` function `(keys, p, out)` (see
`tasks/synthetic/unary.py`), in this package or in a user's own module (README,
"Adding a task"); `generate_batch` allocates the output and checks lengths,
and `max_lengths` reports the longest possible features. The tasks live in
`tasks/synthetic/unary.py` and `tasks/synthetic/binary.py`, imported (and so
registered) at the bottom.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import zlib
from typing import Callable, Optional, Sequence

import numpy as np

from tasks.synthetic import counter_rng, kernels
from tasks.synthetic.config import NAME_PREFIX_LEN, SyntheticConfig
from tasks.synthetic.ragged import Batch

# A kernel writes the examples of a batch: (keys: uint64 per example, kernels.Params,
# kernels.Out) -> None; see tasks/synthetic/kernels.py.
KernelFn = Callable[[np.ndarray, kernels.Params, kernels.Out], None]
LengthFn = Callable[[SyntheticConfig], int]
# Raises ValueError, naming the offending config field, if the task cannot be sampled
# under a config (e.g. a max_len too small for the sampler's fixed parts).
CheckFn = Callable[[str, SyntheticConfig], None]


@dataclasses.dataclass(frozen=True)
class TaskGenerator:
  """A task's compiled batch kernel, the longest body / target (no EOS) it can produce,
  and the check of the configs it supports."""

  kernel: KernelFn
  max_body_len: LengthFn
  max_target_len: LengthFn
  check: Optional[CheckFn] = None


GENERATORS: dict[str, TaskGenerator] = {}
# Called with the name of every generator registered after them (`on_register`).
_LISTENERS: list[Callable[[str], None]] = []


def on_register(listener: Callable[[str], None]) -> Callable[[str], None]:
  """Calls `listener(name)` for each generator registered from now on (the SeqIO
  registry uses it to register a task defined in a user's module); returns it."""
  _LISTENERS.append(listener)
  return listener


def register(name: str, *, max_body_len: LengthFn = lambda cfg: cfg.max_len,
             max_target_len: LengthFn = lambda cfg: cfg.max_len,
             check: Optional[CheckFn] = None) -> Callable[[KernelFn], KernelFn]:
  """Decorator adding a kernel to `GENERATORS` under `name` with its length bounds.

  Works from any module: once `tasks` has registered the SeqIO tasks, the listeners
  register `name`, `name_tiny` and their `_fixed` twins too. Raises ValueError if
  `name` is taken, or (from a listener) if the kernel's config check fails.
  """
  def add(fn: KernelFn) -> KernelFn:
    if name in GENERATORS:
      raise ValueError(f"Synthetic task {name!r} is already registered.")
    GENERATORS[name] = TaskGenerator(fn, max_body_len, max_target_len, check)
    try:
      for listener in list(_LISTENERS):
        listener(name)
    except Exception:
      del GENERATORS[name]  # not half-registered: fix the kernel and import again
      raise
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


def _run(task: str, gen: TaskGenerator, cfg: SyntheticConfig, keys: np.ndarray) -> Batch:
  """One kernel call writes every example; the output arrays are sized for the longest
  possible examples (pages never written are never touched) and returned as views.
  One example's worth of spare room at the end means an example longer than declared
  stays inside the arrays until `kernels.end` raises for it."""
  n = len(keys)
  header = np.asarray(cfg.name_prefix(task) + (cfg.task_divider,), np.int32)
  max_body, max_target = gen.max_body_len(cfg), gen.max_target_len(cfg)
  out = kernels.Out(inputs=np.empty((n + 1) * (len(header) + max_body), np.int32),
                    input_offsets=np.zeros(n + 1, np.int64),
                    targets=np.empty((n + 1) * max_target, np.int32),
                    target_offsets=np.zeros(n + 1, np.int64), header=header,
                    limits=np.asarray([cfg.min_len, max_body, max_target], np.int64))
  if n:
    gen.kernel(keys, kernels.params(cfg), out)
  return Batch(out.inputs[:out.input_offsets[-1]], np.diff(out.input_offsets),
               out.targets[:out.target_offsets[-1]], np.diff(out.target_offsets))


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
  return _run(task, gen, cfg, counter_rng.example_keys(task, split, seed, indices))


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
