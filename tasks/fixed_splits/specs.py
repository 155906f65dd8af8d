"""The registered `_fixed` tasks: which generator each is drawn from, and their sizes.

Every catalogue task (`tasks/synthetic/catalog.py`) whose layout has a `FIXED_SIZES`
entry has a `<name>_fixed` twin; `ensure_built` finds or builds its cache
(`tasks/fixed_splits/build.py`). TensorFlow-free: the SeqIO registration is in
`tasks/fixed_splits/seqio_tasks.py`, the native source in `tasks/fixed_split_source.py`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Optional

from tasks import synthetic_streams
from tasks.fixed_splits import build as fixed_build
from tasks.fixed_splits import cache as fixed_cache
from tasks.synthetic import catalog
from tasks.synthetic.family import BatchFn, GenerateFn

SUFFIX = "_fixed"


@dataclasses.dataclass(frozen=True)
class FixedSizes:
  """How many examples to generate (at most) and keep, and files per split."""

  num_generated: int
  num_train: int
  num_validation: int
  num_files: int = 64


# Sizes of the `_fixed` tasks by layout suffix ("" = paper layout), read when a task
# first builds (tests shrink them).
FIXED_SIZES: dict[str, FixedSizes] = {
    "": FixedSizes(1_050_000, 1_000_000, 10_000, num_files=64),
    "_tiny": FixedSizes(21_000, 20_000, 1_000, num_files=8),
}


@dataclasses.dataclass(frozen=True)
class FixedTaskSpec:
  """What a `<name>_fixed` task builds: generator task id, config, function (per-example
  or batch), and the `FIXED_SIZES` key of its sizes."""

  task: str
  cfg: Any
  generate_fn: Optional[GenerateFn]  # per example (LIME, nesting), or None with a batch_fn
  sizes_key: str
  batch_fn: Optional[BatchFn] = None  # one call per chunk (the simple tasks)


# name -> spec of every `_fixed` task registered with SeqIO (`seqio_tasks.register_fixed`).
FIXED_TASKS: dict[str, FixedTaskSpec] = {}
_BUILT: dict[str, fixed_cache.FixedSplits] = {}  # per-process memo of ensure_built


def fixed_specs() -> dict[str, FixedTaskSpec]:
  """Catalogue task name -> the spec of its `_fixed` twin, for every catalogue task
  whose layout has a `FIXED_SIZES` entry (no seqio needed). A family with its own
  batch generator is drawn with it, the others one example at a time."""
  specs = {}
  for name, entry in catalog.synthetic_tasks().items():
    if entry.layout not in FIXED_SIZES:
      continue
    if entry.batch_native:
      specs[name] = FixedTaskSpec(entry.task, entry.cfg, None, entry.layout,
                                  batch_fn=entry.generate_batch)
    else:
      specs[name] = FixedTaskSpec(entry.task, entry.cfg, entry.generate, entry.layout)
  return specs


def fixed_spec(name: str) -> Optional[FixedTaskSpec]:
  """The spec of `_fixed` task `name` (registered, else from `fixed_specs`), or None."""
  if name in FIXED_TASKS:
    return FIXED_TASKS[name]
  return fixed_specs().get(name[:-len(SUFFIX)]) if name.endswith(SUFFIX) else None


def ensure_built(name: str, *, cache_dir: "Optional[str | os.PathLike]" = None,
                 num_workers: Optional[int] = None) -> fixed_cache.FixedSplits:
  """The cache of `_fixed` task `name`, built if needed (memoized per process).

  Raises ValueError for a name that is not a `_fixed` task, and what
  `build.build_fixed_splits` raises (RuntimeError where the cache is unusable and
  TensorFlow is missing)."""
  spec = fixed_spec(name)
  if spec is None:
    known = sorted(FIXED_TASKS) or [b + SUFFIX for b in sorted(fixed_specs())]
    raise ValueError(f"Unknown fixed-split task {name!r}; known: {', '.join(known)}")
  sizes = FIXED_SIZES[spec.sizes_key]
  kwargs = dict(generate_fn=spec.generate_fn, batch_fn=spec.batch_fn,
                num_generated=sizes.num_generated,
                num_train=sizes.num_train, num_validation=sizes.num_validation,
                num_files=sizes.num_files, seed=synthetic_streams.DATA_SEED,
                cache_dir=pathlib.Path(cache_dir) if cache_dir else fixed_cache.data_dir(),
                num_workers=num_workers, name=name)
  memo = json.dumps({k: str(v) for k, v in kwargs.items()}, sort_keys=True)
  if memo not in _BUILT:
    _BUILT[memo] = fixed_build.build_fixed_splits(spec.task, spec.cfg, **kwargs)
  return _BUILT[memo]
