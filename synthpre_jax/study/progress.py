"""The study's progress lines: steps done, elapsed time and the estimated time left."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def hms(seconds: float) -> str:
  """`1h02m03s` from an hour on, else `2m03s`."""
  s = int(round(seconds))
  return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else \
      f"{s // 60}m{s % 60:02d}s"


class Progress:
  """Prints `done/total, elapsed, estimated remaining` after each step. Pre-training
  runs and cells are timed apart: the estimate is each kind's steps left x that kind's
  mean time so far, and says "unknown" while a kind with steps left has none timed yet."""

  def __init__(self, pretrains: int, cells: int, already_done: int = 0,
               out: Optional[TextIO] = None):
    self.total, self.done, self.t0 = pretrains + cells, already_done, time.time()
    self.left = {"pretrain": pretrains, "cell": cells - already_done}
    self.seconds: dict[str, list[float]] = {"pretrain": [], "cell": []}
    self.out = out or sys.stdout

  def remaining(self) -> Optional[float]:
    """Estimated seconds left, or None while a kind with steps left is untimed."""
    total = 0.0
    for kind, left in self.left.items():
      if left > 0:
        if not self.seconds[kind]:
          return None
        total += left * sum(self.seconds[kind]) / len(self.seconds[kind])
    return total

  def step(self, what: str, status: str, seconds: float, kind: str = "cell",
           timed: bool = True) -> None:
    """Counts one finished step of `kind` ('pretrain' or 'cell'); `timed=False` (a
    skipped step) leaves it out of the mean times."""
    self.done += 1
    self.left[kind] -= 1
    if timed:
      self.seconds[kind].append(seconds)
    left = self.remaining()
    estimate = ("unknown until a cell is timed" if left is None and self.left["cell"]
                and not self.seconds["cell"] else
                "unknown" if left is None else hms(left))
    self.out.write(f"[study] {self.done}/{self.total} done | {what}: {status} "
                   f"({hms(seconds)}) | elapsed {hms(time.time() - self.t0)} | "
                   f"est. remaining {estimate}\n")
    self.out.flush()
