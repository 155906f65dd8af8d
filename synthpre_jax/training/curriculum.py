"""A length curriculum: train on a sequence of tasks, moving on at an accuracy threshold.

As in "Procedural Pretraining" (Jiang et al. 2026): the run trains on `stages[0]` until
its validation `metric` (token accuracy) reaches `threshold` at an evaluation, then on
the next stage, and so on; the last stage is the run's own task and is kept to the end.
Each stage's batches are the stage task's stream from its own position 0, so a stage's
data do not depend on when it began. The steps at which stages began are written to
`<MODEL_DIR>/curriculum.json` (by process 0, atomically); a resumed run keeps those up to
its checkpoint's step and feeds the same batches as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import jax
from etils import epath

from synthpre_jax.training import hooks as hooks_lib

log = logging.getLogger("synthpre_jax")

STATE_FILE = "curriculum.json"
# (task name, start position in that task's stream) -> batches.
StageBatchesFn = Callable[[str, int], Iterator[Any]]


@dataclasses.dataclass(frozen=True)
class LengthCurriculum:
  """The stages before the run's task, shortest first, and when to leave each.

  stages: task names (e.g. 'dyck_len15_tiny', 'dyck_len31_tiny'); the run's
    MIXTURE_OR_TASK_NAME follows them as the last stage.
  threshold: leave a stage at the first evaluation whose `metric` is >= threshold (0:
    at every evaluation, a fixed schedule of EVAL_PERIOD steps per stage).
  metric: a validation metric of the trainer ('token_accuracy', 'sequence_accuracy').
  """
  stages: Sequence[str]
  threshold: float = 0.99
  metric: str = "token_accuracy"

  def __post_init__(self):
    object.__setattr__(self, "stages", tuple(self.stages))
    if not self.stages or not all(isinstance(s, str) and s for s in self.stages):
      raise ValueError(f"LengthCurriculum.stages must list task names, got {self.stages!r}.")
    if not 0.0 <= self.threshold <= 1.0:
      raise ValueError(f"LengthCurriculum.threshold must be in [0, 1], got {self.threshold}.")
    if self.metric not in ("token_accuracy", "sequence_accuracy"):
      raise ValueError(f"LengthCurriculum.metric must be 'token_accuracy' or "
                       f"'sequence_accuracy', got {self.metric!r}.")


class CurriculumRun:
  """One run's curriculum: the current stage, its batches, and the hook that advances it.

  `tasks` = the curriculum's stages + the run's task. `starts[k]` is the step (0-based
  index of the first step) at which stage k began; `starts[0]` is 0.
  """

  def __init__(self, curriculum: LengthCurriculum, final_task: str, model_dir: str,
               eval_period: int):
    if final_task in curriculum.stages:
      raise ValueError(f"LengthCurriculum.stages lists the run's own task {final_task!r}: "
                       "it is the last stage already; list only the stages before it.")
    self.curriculum = curriculum
    self.tasks = curriculum.stages + (final_task,)
    self.path = epath.Path(model_dir) / STATE_FILE
    self.eval_period = eval_period
    self.starts = [0]

  @property
  def stage(self) -> int:
    return len(self.starts) - 1

  @property
  def task(self) -> str:
    return self.tasks[self.stage]

  def resume(self, start_step: int) -> None:
    """Reads the stage starts up to `start_step` (the checkpoint's step) from the file."""
    self.starts = [0]
    if start_step > 0 and self.path.exists():
      saved = json.loads(self.path.read_text())
      if list(saved.get("tasks", [])) != list(self.tasks):
        raise ValueError(
            f"{self.path} was written for the stages {saved.get('tasks')}, not "
            f"{list(self.tasks)}: resume with the same LengthCurriculum, or use a new "
            "MODEL_DIR.")
      self.starts += [int(s) for s in saved["starts"][1:] if int(s) <= start_step]
    log.info("length curriculum: stage %d/%d (%s) at step %d; stages %s, threshold %s on "
             "validation %s", self.stage + 1, len(self.tasks), self.task, start_step,
             list(self.tasks), self.curriculum.threshold, self.curriculum.metric)

  def _write(self) -> None:
    # Not evaluation.results.write_json_atomic: training/ sits below evaluation/.
    if jax.process_index() != 0:
      return
    tmp = self.path.parent / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({"tasks": list(self.tasks), "starts": self.starts,
                               "threshold": self.curriculum.threshold,
                               "metric": self.curriculum.metric}, indent=1))
    tmp.replace(self.path)  # epath: also on gs:// model dirs

  def train_batches(self, make_batches: StageBatchesFn, start_step: int) -> Iterator[Any]:
    """The run's batches from `start_step` on: each from the stage current at its step,
    the stage's stream read from (step - the stage's start)."""
    self.resume(start_step)
    step, stage, batches = start_step, None, None
    while True:
      if stage != self.stage:
        stage = self.stage
        batches = make_batches(self.task, step - self.starts[stage])
      yield next(batches)
      step += 1

  def eval_batches(self, make_eval: Callable[[str], Iterable[Any]]) -> Iterable[Any]:
    """The current stage's validation batches."""
    return make_eval(self.task)

  def advance(self, info: hooks_lib.StepInfo) -> None:
    """The hook: after an evaluation whose metric reaches the threshold, the next stage
    starts with the next step."""
    if info.eval_metrics is None or self.stage == len(self.tasks) - 1:
      return
    value = info.eval_metrics[self.curriculum.metric]
    if value < self.curriculum.threshold:
      return
    self.starts.append(info.step)
    self._write()
    log.info("length curriculum: validation %s %.4f >= %s at step %d: stage %d/%d (%s) "
             "from the next step", self.curriculum.metric, value,
             self.curriculum.threshold, info.step, self.stage + 1, len(self.tasks),
             self.task)

  def hook(self) -> hooks_lib.Hook:
    return hooks_lib.every_n_steps(self.advance, self.eval_period)


def stage_summary(model_dir: str) -> Optional[dict]:
  """The curriculum.json of a run (None when it had no curriculum)."""
  path = epath.Path(model_dir) / STATE_FILE
  return json.loads(path.read_text()) if path.exists() else None
