"""What a study writes besides the runs themselves: cell records, attempts, done markers.

A cell's record (`records/<cell id>.json`) is what reports read; its fields are listed
in docs/studies.md and must stay stable (reports read old study directories).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping, Optional

from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax.evaluation import provenance
from synthpre_jax.evaluation import results
from synthpre_jax.study.spec import Cell, Study, size_examples, size_percent

RECORD_VERSION = 2
DONE_MARKER = "study_done.json"
ATTEMPTS_FILE = "study_attempts.json"


def is_done(path: str) -> bool:
  """Whether the run in `path` finished (its done marker exists)."""
  return os.path.exists(os.path.join(path, DONE_MARKER))


def mark_done(path: str, seconds: float) -> None:
  results.write_json_atomic(epath.Path(path) / DONE_MARKER, {"seconds": round(seconds, 3)})


def record_attempt(cell_dir: str, what: str, seconds: float, exit_code: Optional[int]
                   ) -> None:
  """Appends one train/eval attempt to `<cell_dir>/study_attempts.json` (atomically)."""
  path = epath.Path(cell_dir) / ATTEMPTS_FILE
  attempts = read_attempts(cell_dir)
  attempts.append({"step": what, "seconds": round(seconds, 3), "exit_code": exit_code,
                   "ended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
  results.write_json_atomic(path, {"attempts": attempts})


def read_attempts(cell_dir: str) -> list[dict[str, Any]]:
  """The cell's recorded attempts ([] when none); ValueError naming a corrupt file."""
  path = epath.Path(cell_dir) / ATTEMPTS_FILE
  if not path.exists():
    return []
  try:
    return list(json.loads(path.read_text())["attempts"])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{path} is not a list of attempts ({e}); delete it to restart "
                     "the cell's wall-time count.") from e


def attempt_times(cell_dir: str) -> dict[str, float]:
  """Seconds per step ('train', 'eval') summed over every recorded attempt."""
  times: dict[str, float] = {}
  for attempt in read_attempts(cell_dir):
    times[attempt["step"]] = times.get(attempt["step"], 0.0) + float(attempt["seconds"])
  return times


def token_fields(spec: Study, cell: Cell, run: Mapping[str, Any]) -> dict[str, Any]:
  """For a `<source>@<step>` cell: the run it reads (`natural_run`), the step
  (`natural_step`) and the pre-training tokens it stands for (`natural_tokens` = step x
  the checkpoint meta's `tokens_per_step`: batch x (inputs + targets) positions, padding
  included; None when the checkpoint predates that field). {} for other sources."""
  source = spec.sources[cell.source]
  if source.step_of is None:
    return {}
  ckpt = run.get("initial_checkpoint") or {}
  step = int(ckpt["step"]) if ckpt.get("step") is not None else int(source.checkpoint_step)
  params = ckpt.get("params_path") or os.path.join(
      spec.pretrain_dir(source.step_of), "checkpoints", str(step), "params")
  try:
    per_step = (checkpoints.read_meta(epath.Path(params)) or {}).get("tokens_per_step")
  except (OSError, ValueError):
    per_step = None
  return {"natural_run": source.step_of, "natural_step": step,
          "natural_tokens_per_step": per_step,
          "natural_tokens": None if per_step is None else step * int(per_step)}


def make_record(spec: Study, cell: Cell, result: Mapping[str, Any],
                times: Mapping[str, float], attempts: Optional[int] = None
                ) -> dict[str, Any]:
  """The cell's record: what the report reads (it never opens a model). `times`:
  seconds per step summed over the cell's `attempts` (None: not counted). ValueError
  when the evaluation lacks the task's metric."""
  task = spec.tasks[cell.task]
  metrics = dict(result.get("metrics", {}))
  if task.metric not in metrics:  # e.g. 'validation_token_accuracy' of results.json
    if isinstance(result.get(task.metric), (int, float)):
      metrics[task.metric] = float(result[task.metric])
    else:
      raise ValueError(f"Task {cell.task!r} reports metric {task.metric!r}, but the "
                       f"evaluation gave only {sorted(metrics)} (and results.json has no "
                       "such number): fix the task's `metric`.")
  source = spec.sources[cell.source]
  run = provenance.read_run_record(spec.cell_dir(cell)) or {}
  examples, percent = size_examples(cell.size, task.train_size), size_percent(cell.size)
  return {
      "version": RECORD_VERSION, "cell_id": cell.cell_id, "study": spec.name,
      "source": cell.source, "task": cell.task, "seed": cell.seed,
      "size": cell.size if percent is None else examples, "size_percent": percent,
      "subset_seed": spec.cell_subset_seed(cell) if cell.size is not None else None,
      "data_seed": spec.cell_data_seed(cell),
      "source_checkpoint": run.get("initial_checkpoint"),
      "init_source": run.get("init_transform"),
      "vocabulary": run.get("vocabulary"),
      "allow_vocab_mismatch": run.get("allow_vocab_mismatch"),
      "code_version": run.get("code_version"),
      "gin_config_hash": run.get("gin_config_hash"),
      "train_examples": examples,
      "mixture_or_task_name": spec.cell_task_name(cell),
      "metric": task.metric, "score": float(metrics[task.metric]),
      "metrics": dict(metrics), "transfer_mode": source.transfer_mode,
      "result": dict(result), "cell_dir": spec.cell_dir(cell),
      **token_fields(spec, cell, run),
      "wall_time_s": round(sum(times.values()), 3),
      **{f"{k}_time_s": round(v, 3) for k, v in times.items()},
      "wall_time_attempts": attempts,
      "wall_time_note": (f"sum of all {attempts} train/evaluate attempt(s) of this cell, "
                         f"interrupted and failed ones included ({ATTEMPTS_FILE})"
                         if attempts is not None else "not measured here"),
      "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }


def write_record(spec: Study, cell: Cell, record: Mapping[str, Any]) -> None:
  results.write_json_atomic(epath.Path(spec.record_path(cell)), dict(record))


def check_study_dir(spec: Study) -> None:
  """ValueError when the directory's study.json names other `model_gin_files`: its runs
  were made with another model and would be reused."""
  path = epath.Path(spec.study_dir) / "study.json"
  if path.exists():
    before = json.loads(path.read_text()).get("model_gin_files", [])
    if list(before) != list(spec.model_gin_files):
      raise ValueError(
          f"{spec.study_dir} holds runs made with study.model_gin_files = {before}, not "
          f"{list(spec.model_gin_files)}: finished runs would be reused as if made with "
          "the new model. Use another study_dir (--study_dir=...).")


def write_study_json(spec: Study) -> None:
  """Writes study.json (after `check_study_dir`)."""
  check_study_dir(spec)
  results.write_json_atomic(epath.Path(spec.study_dir) / "study.json", spec.to_json())
