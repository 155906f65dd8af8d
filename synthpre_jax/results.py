"""A run's result: which checkpoint counts, and the one record later analysis reads.

The paper's number for a fine-tuning run is the test metric at the checkpoint with the
best validation token accuracy. The trainer logs every validation evaluation to
`<MODEL_DIR>/validation/metrics.jsonl` and checkpoints every evaluated step (keep-best
keeps the best one), so the choice is made from that file alone. `evaluate` then writes
`<MODEL_DIR>/results.json` (see `write_result`), which studies and reports read without
loading any model. TensorFlow-free.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping, Optional

from etils import epath

from synthpre_jax import checkpoints

SELECTION_METRIC = checkpoints.BEST_METRIC  # "token_accuracy"
RESULTS_FILE = "results.json"
RESULTS_VERSION = 1


def validation_history(model_dir: str) -> list[dict[str, float]]:
  """The run's validation records, one per evaluated step, in step order."""
  path = epath.Path(model_dir) / "validation" / "metrics.jsonl"
  if not path.exists():
    return []
  records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return sorted(records, key=lambda r: r["step"])


def saved_steps(model_dir: str) -> list[int]:
  """Steps with a finished checkpoint (Orbax renames a step dir only when complete)."""
  root = checkpoints.checkpoint_dir(model_dir)
  if not root.exists():
    return []
  return sorted(int(c.name) for c in root.iterdir()
                if c.name.isdigit() and (c / "params").exists())


def best_step(model_dir: str, metric: str = SELECTION_METRIC) -> tuple[int, float]:
  """(step, value) of the saved checkpoint with the highest validation `metric`.

  Ties go to the earliest step. Steps whose checkpoint is gone are skipped (with a
  warning if the overall best is among them). Raises FileNotFoundError when the run has
  no saved checkpoint or no validation record for any of them.
  """
  saved = set(saved_steps(model_dir))
  if not saved:
    raise FileNotFoundError(
        f"{model_dir} has no finished checkpoint under checkpoints/<step>/params. "
        "Has the run started, or is MODEL_DIR the right directory?")
  history = [r for r in validation_history(model_dir) if metric in r]
  candidates = [r for r in history if r["step"] in saved]
  if not candidates:
    raise FileNotFoundError(
        f"{model_dir} has no validation {metric} for any saved checkpoint (steps "
        f"{sorted(saved)}; looked in validation/metrics.jsonl). Train with an "
        "evaluation split, or choose the step yourself (EVAL_CHECKPOINT_STEP).")
  best = max(candidates, key=lambda r: (r[metric], -r["step"]))
  overall = max(history, key=lambda r: (r[metric], -r["step"]))
  if overall["step"] != best["step"]:
    logging.getLogger("synthpre_jax").warning(
        "The best validation %s (%.4f at step %d) has no checkpoint left; using step "
        "%d (%.4f).", metric, overall[metric], overall["step"], best["step"], best[metric])
  return int(best["step"]), float(best[metric])


def write_json_atomic(path: epath.Path, obj: Any) -> None:
  """Writes JSON to a temporary name, then renames: never a half-written file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / (path.name + ".tmp")
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
  tmp.replace(path)


def write_result(model_dir: str, *, task: str, split: str, step: int,
                 metrics: Mapping[str, float], selection: str,
                 validation_value: Optional[float], num_examples: int,
                 decoding: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None
                 ) -> epath.Path:
  """Writes `<model_dir>/results.json`, the run's one result record, and returns its path.

  `selection` says how `step` was chosen ('best_validation_token_accuracy', 'latest'
  or 'given'); `validation_value` is that step's validation token accuracy when known.
  """
  record = {
      "version": RESULTS_VERSION,
      "model_dir": str(model_dir),
      "task": task,
      "split": split,
      "step": int(step),
      "selection": selection,
      "validation_" + SELECTION_METRIC: validation_value,
      "metrics": {k: float(v) for k, v in metrics.items()},
      "num_examples": int(num_examples),
      "decoding": dict(decoding),
      "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      **dict(extra or {}),
  }
  path = epath.Path(model_dir) / RESULTS_FILE
  write_json_atomic(path, record)
  return path


def read_result(model_dir_or_file: str) -> dict[str, Any]:
  """Reads a run's results.json (given the run's MODEL_DIR or the file itself)."""
  path = epath.Path(model_dir_or_file)
  if path.is_dir():
    path = path / RESULTS_FILE
  if not path.exists():
    raise FileNotFoundError(f"No result record at {path}: run `python -m "
                            "synthpre_jax.evaluate` on that run first.")
  return json.loads(path.read_text())
