"""Where metrics go: TensorBoard (clu, when TensorFlow is installed) and a JSONL file.

Only process 0 writes. The JSONL file (`<MODEL_DIR>/<name>/metrics.jsonl`) is what later
analysis reads without TensorFlow; TensorBoard events land in the same directory.
"""

from __future__ import annotations

import json
import logging
from typing import Mapping

import jax
from etils import epath


class JsonlWriter:
  """Appends one JSON object per write: {"step": s, "<metric>": value, ...}.

  On resume from step k, records after k (written by the interrupted run, and about to
  be written again) are dropped first, so each step appears once.
  """

  def __init__(self, path: epath.Path, resume_step: int = 0):
    self._path = path
    self._path.parent.mkdir(parents=True, exist_ok=True)
    if self._path.exists():
      kept = [line for line in self._path.read_text().splitlines()
              if line.strip() and json.loads(line)["step"] <= resume_step]
      tmp = self._path.parent / (self._path.name + ".tmp")
      tmp.write_text("".join(line + "\n" for line in kept))
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
