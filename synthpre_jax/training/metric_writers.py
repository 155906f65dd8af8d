"""Where metrics go: TensorBoard (clu, when TensorFlow is installed) and a JSONL file.

Only process 0 writes. The JSONL file (`<MODEL_DIR>/<name>/metrics.jsonl`) is what later
analysis reads without TensorFlow; TensorBoard events land in the same directory.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

import jax
from etils import epath


def _parse_record(line: str, path: Any, number: int) -> dict[str, Any]:
  """One line's {"step": int, ...} record; ValueError naming `path` and line otherwise."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}, line {number}: not valid JSON ({e.msg}): {line[:80]!r}. "
                     "Fix or delete that line.") from e
  if not isinstance(record, dict) or not isinstance(record.get("step"), int):
    raise ValueError(f"{path}, line {number}: not a metrics record with an integer "
                     f"'step': {line[:80]!r}. Fix or delete that line.")
  return record


def read_jsonl(path: Any) -> list[dict[str, Any]]:
  """The records of a metrics.jsonl file, in file order ([] when it does not exist).

  A last line that does not parse (a process killed while writing it) is dropped with
  a warning. Raises ValueError, naming the file and line, for any other bad line.
  """
  path = epath.Path(path)
  if not path.exists():
    return []
  numbered = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1)
              if line.strip()]
  records = []
  for position, (number, line) in enumerate(numbered):
    try:
      records.append(_parse_record(line, path, number))
    except ValueError as e:
      if position < len(numbered) - 1:
        raise
      logging.getLogger("synthpre_jax").warning(
          "Dropping the incomplete last line %d of %s (a run killed while writing it): "
          "%s", number, path, e.__cause__ or e)
  return records


class JsonlWriter:
  """Appends one JSON object per write: {"step": s, "<metric>": value, ...}.

  On resume from step k, records after k (written by the interrupted run, and about to
  be written again) and an incomplete last line are dropped first, so each step
  appears once. Raises ValueError (naming file and line) for a corrupt earlier line.
  """

  def __init__(self, path: epath.Path, resume_step: int = 0):
    self._path = path
    self._path.parent.mkdir(parents=True, exist_ok=True)
    if self._path.exists():
      kept = [r for r in read_jsonl(self._path) if r["step"] <= resume_step]
      tmp = self._path.parent / (self._path.name + ".tmp")
      tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
      tmp.replace(self._path)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    with self._path.open("a") as f:
      f.write(json.dumps(record) + "\n")

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class MetricWriter:
  """Fans scalars out to the JSONL writer and, when available, TensorBoard."""

  def __init__(self, model_dir: str, name: str, resume_step: int = 0):
    self._writers = []
    if jax.process_index() != 0:
      return
    logdir = epath.Path(model_dir) / name
    self._writers.append(JsonlWriter(logdir / "metrics.jsonl", resume_step))
    try:  # clu's SummaryWriter needs TensorFlow; accelerator images may lack it.
      from clu.metric_writers import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._writers.append(SummaryWriter(str(logdir)))
    except ImportError as e:
      logging.warning("TensorBoard summaries disabled (%s); metrics still go to %s.",
                      e, logdir / "metrics.jsonl")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for w in self._writers:
      w.write_scalars(step, scalars)

  def flush(self) -> None:
    for w in self._writers:
      w.flush()

  def close(self) -> None:
    for w in self._writers:
      w.close()
