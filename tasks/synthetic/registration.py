"""The simple tasks' generator registry and the config checks their kernels share.

`register` adds a compiled kernel (`tasks/synthetic/kernels.py`) under a task name;
`tasks/synthetic/unary.py`, `tasks/synthetic/binary.py` and users' modules register
with it, and `tasks/synthetic/generators.py` draws examples from `GENERATORS`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from tasks.synthetic import kernels
from tasks.synthetic.config import SyntheticConfig

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
