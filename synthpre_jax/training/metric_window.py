"""The training-metrics window: per-step sums accumulated from one log step to the next.

Each logged training record covers exactly the steps since the previous log step, even
when checkpoints fall in between: checkpoint steps check the running sums for NaN/inf
without clearing them, and the window's sums travel in the checkpoint's `meta`
(`state()` / `from_state()`), so a resumed run logs what an uninterrupted one would.
Sums are accumulated in float64, one step at a time in step order, which makes them
independent of where the run was interrupted. TensorFlow-free.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax

LAST_VALUE_KEYS = ("learning_rate",)  # reported as the window's last step's value


class MetricWindow:
  """Per-step metric sums since `start_step` (the last log step, or the run's start)."""

  def __init__(self, start_step: int, sums: Optional[Mapping[str, float]] = None):
    self.start_step = int(start_step)
    self._sums: dict[str, float] = dict(sums or {})
    self._pending: list[Any] = []  # device values of steps not yet fetched

  def add(self, step_sums: Mapping[str, Any]) -> None:
    """Adds one step's sums (device arrays are fetched lazily, at the next `totals`)."""
    self._pending.append(step_sums)

  def totals(self) -> dict[str, float]:
    """The window's sums so far (learning_rate: the last step's); fetches pending steps."""
    for step_sums in jax.device_get(self._pending):
      for k, v in step_sums.items():
        self._sums[k] = float(v) if k in LAST_VALUE_KEYS else self._sums.get(k, 0.0) + float(v)
    self._pending = []
    return dict(self._sums)

  def close(self, step: int) -> dict[str, float]:
    """The window's totals; a new, empty window starts at `step`."""
    out = self.totals()
    self.start_step, self._sums = int(step), {}
    return out

  def state(self) -> dict[str, Any]:
    """A JSON-able snapshot (for checkpoint meta): {"start_step", "sums"}."""
    return {"start_step": self.start_step, "sums": self.totals()}

  @classmethod
  def from_state(cls, state: Optional[Mapping[str, Any]], resume_step: int
                 ) -> tuple["MetricWindow", Optional[str]]:
    """The window saved at `resume_step`, or an empty one starting there with a note
    saying why (a checkpoint written before windows were saved)."""
    if state and "sums" in state and int(state.get("start_step", -1)) <= resume_step:
      return cls(int(state["start_step"]), state["sums"]), None
    return cls(resume_step), (
        f"the checkpoint at step {resume_step} holds no training-metrics window, so the "
        f"first training record after it covers only the steps after {resume_step}")
