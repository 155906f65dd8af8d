"""Saving checkpoints so that a failure stops the run at once and a finished save is
sealed with its checksums (`synthpre_jax.checkpoints.checksums`).

Orbax saves asynchronously: `Saver.save` starts a save, `Saver.poll` (every step, no
waiting) notices when it finished, checks it for errors and records its checksums;
`Saver.finish` waits for it. A failed save raises `CheckpointSaveError` naming the step
and the error; the previous complete checkpoint is left as it was.
"""

from __future__ import annotations

from typing import Optional

import jax
import orbax.checkpoint as ocp

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import checksums
from synthpre_jax.training.train_state import TrainState


class CheckpointSaveError(RuntimeError):
  """Saving the checkpoint of `step` failed; the run stopped."""

  def __init__(self, step: int, directory: str, cause: BaseException,
               previous: Optional[int]):
    self.step, self.directory = step, directory
    kept = (f"the previous checkpoint, step {previous}, is intact" if previous is not None
            else "no earlier checkpoint exists")
    super().__init__(
        f"Saving the checkpoint of step {step} in {directory} failed "
        f"({type(cause).__name__}: {cause}); stopped at once, {kept}. Fix the cause "
        "(disk space, permissions, quota) and re-run the same command to resume.")


class Saver:
  """Wraps the run's CheckpointManager; process 0 (`is_primary`) records checksums."""

  def __init__(self, manager: ocp.CheckpointManager, is_primary: bool = True):
    self.manager, self.is_primary = manager, is_primary
    self.pending: Optional[int] = None

  def save(self, state: TrainState, *, metrics: Optional[dict] = None,
           meta: Optional[dict] = None) -> None:
    """Finishes the previous save, then starts saving `state` (raises
    CheckpointSaveError if either fails)."""
    self.finish()
    step = int(jax.device_get(state.step))
    try:
      checkpoints.save(self.manager, state, metrics=metrics, meta=meta)
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(step, e) from e
    self.pending = step

  def poll(self) -> None:
    """Seals the pending save if it has finished; returns at once otherwise."""
    if self.pending is not None and not self.manager.is_saving_in_progress():
      self.finish()

  def finish(self) -> None:
    """Waits for the pending save, checks it, and records its checksums."""
    step, self.pending = self.pending, None
    if step is None:
      return
    try:
      self.manager.wait_until_finished()
      self.manager.check_for_errors()
      step_dir = self.manager.directory / str(step)
      if self.is_primary:
        if not (step_dir / "params").exists():
          raise FileNotFoundError(f"{step_dir} was not written")
        checksums.seal(step_dir)
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(step, e) from e

  def _error(self, step: int, cause: BaseException) -> CheckpointSaveError:
    done = [s for s in checkpoints.complete_steps(self.manager.directory) if s != step]
    return CheckpointSaveError(step, str(self.manager.directory), cause,
                               done[-1] if done else None)
