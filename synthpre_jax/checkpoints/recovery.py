"""Resuming a run from the newest checkpoint that verifies; damaged steps moved aside.

Run by the trainer on its own `<MODEL_DIR>/checkpoints/` before the CheckpointManager
is created. A step that Orbax finished writing but that has no checksums yet (the run
stopped between the two, or the step predates checksums) is sealed first. A step that
is incomplete (empty, a part missing), fails verification, or cannot be read is
*moved* (never deleted) to `checkpoints/corrupt/<step>-<UTC timestamp>`, and the next
older step is tried. A step whose parameters do not match the model is refused
(ValueError) without moving anything: that is a configuration error, not damage.
Every process takes the same decisions; only process 0 (`is_primary`) moves or seals.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Optional

from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import checksums
from synthpre_jax.training.train_state import TrainState

CORRUPT_DIR = "corrupt"
TRAINING_PARTS = ("params", "opt_state")
ORBAX_FINISHED = "_CHECKPOINT_METADATA"  # written by Orbax when a step is finalised
_CALLS = itertools.count()  # barrier names: the same sequence on every process


def quarantine(step_dir: epath.Path) -> epath.Path:
  """Moves `step_dir` to `<checkpoints>/corrupt/<step>-<UTC timestamp>`; returns it."""
  stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
  dest = step_dir.parent / CORRUPT_DIR / f"{step_dir.name}-{stamp}"
  i = 1
  while dest.exists():
    dest, i = step_dir.parent / CORRUPT_DIR / f"{step_dir.name}-{stamp}-{i}", i + 1
  dest.parent.mkdir(parents=True, exist_ok=True)
  step_dir.rename(dest)
  return dest


def _finished_by_orbax(step_dir: epath.Path) -> bool:
  return (step_dir / ORBAX_FINISHED).exists() and all(
      (step_dir / part).is_dir() for part in TRAINING_PARTS)


def tidy(root: epath.Path, is_primary: bool) -> list[str]:
  """Seals Orbax-finished steps that lack checksums and moves incomplete step
  directories aside; returns restore-log lines saying what was done."""
  lines = []
  if not root.exists():
    return lines
  for step_dir in sorted((c for c in root.iterdir() if c.name.isdigit()),
                         key=lambda c: int(c.name)):
    if checksums.is_complete(step_dir):
      continue
    if _finished_by_orbax(step_dir):
      if is_primary:
        checksums.seal(step_dir)
      lines.append(f"  step {step_dir.name}: written without checksums (the run stopped "
                   "before recording them, or an older version wrote it) -> recorded now")
      continue
    missing = [p for p in TRAINING_PARTS if not (step_dir / p).is_dir()]
    what = f"{', '.join(missing)} missing" if missing else "save never finished"
    dest = quarantine(step_dir) if is_primary else step_dir
    lines.append(f"  step {step_dir.name}: INCOMPLETE ({what}) -> moved to {dest}")
  return lines


def restore_newest(root: epath.Path, shapes: TrainState, shardings: TrainState, *,
                   verify: str = "full", is_primary: bool = True,
                   barrier: Callable[[str], None] = lambda name: None
                   ) -> tuple[Optional[TrainState], list[str]]:
  """(state of the newest step that verifies and reads, or None; restore-log lines).

  Raises ValueError (nothing moved) when a step's parameters do not match `shapes`.
  `barrier(name)` waits for every process (process 0's moves and seals done)."""
  call = next(_CALLS)
  lines = tidy(root, is_primary)
  barrier(f"synthpre_jax_checkpoints_tidied_{call}")
  state, more = _newest_good(root, shapes, shardings, verify, is_primary)
  barrier(f"synthpre_jax_checkpoints_restored_{call}")
  return state, lines + more


def _newest_good(root: epath.Path, shapes: TrainState, shardings: TrainState,
                 verify: str, is_primary: bool) -> tuple[Optional[TrainState], list[str]]:
  """The newest complete step that verifies and reads (damaged ones moved aside)."""
  lines = []
  expected = {k: tuple(v.shape) for k, v in checkpoints.flat_names(shapes.params).items()}
  for step in reversed(checkpoints.complete_steps(root)):
    step_dir = root / str(step)
    try:
      checksums.verify(step_dir, TRAINING_PARTS, mode=verify)
      saved = checkpoints.params_metadata(step_dir / "params")
    except Exception as e:  # pylint: disable=broad-except
      lines.append(_moved(step_dir, e, is_primary))
      continue
    checkpoints.check_compatible(saved, expected, str(step_dir))  # ValueError: refuse
    try:
      state = checkpoints.restore_state(step_dir, shapes, shardings, verify=None)
    except Exception as e:  # pylint: disable=broad-except
      lines.append(_moved(step_dir, e, is_primary))
      continue
    lines.append(f"  step {step}: checksums verified ({verify})")
    return state, lines
  return None, lines


def _moved(step_dir: epath.Path, error: Exception, is_primary: bool) -> str:
  """Moves a damaged step aside (process 0) and returns the log line naming it."""
  dest = quarantine(step_dir) if is_primary else step_dir
  reason = str(error).splitlines()[0][:400] if str(error) else type(error).__name__
  return (f"  step {step_dir.name}: DAMAGED ({type(error).__name__}: {reason}) -> moved "
          f"to {dest}; trying the previous step")
