"""The simple synthetic tasks' batch API: `generate_batch`, `generate`, `max_lengths`.

Example i of (task, split, seed) is a pure function of those four values: every random
number it uses is a counter-based hash of (task, split, seed, i, stream, position)
(`tasks/synthetic/counter_rng.py` for the example keys, `tasks/synthetic/kernels.py`
for the draws). Each task is a compiled kernel that writes a whole batch in one call, and
an example is the same whether drawn alone (`generate`) or in any batch
(`generate_batch`), in any process. No TensorFlow here.

Adding a task is one `@register(...)` (`tasks/synthetic/registration.py`) above a
`@kernels.kernel` function `(keys, p, out)`, in this package or in a user's own module
(README, "Adding a task"). Importing this module registers the paper's 18 tasks
(`tasks/synthetic/binary.py`, `tasks/synthetic/set_ops.py`, `tasks/synthetic/unary.py`,
registered in that order).
"""
from __future__ import annotations

import difflib
import functools
from typing import Sequence

import numpy as np

from tasks.synthetic import binary, set_ops, unary  # noqa: F401  (register the paper's tasks)
from tasks.synthetic import counter_rng, kernels
from tasks.synthetic.config import NAME_PREFIX_LEN, SyntheticConfig
from tasks.synthetic.ragged import Batch
from tasks.synthetic.registration import (GENERATORS, TaskGenerator, on_register,
                                          register)

__all__ = ["GENERATORS", "TaskGenerator", "generate", "generate_batch", "max_lengths",
           "on_register", "register"]

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


