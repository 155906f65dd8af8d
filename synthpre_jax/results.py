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
from typing import Any, Mapping, Optional, Union

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


def parse_step_rule(rule: Union[str, int]) -> tuple[str, Optional[float]]:
  """('latest'|'best'|'first_ge'|'step', threshold or step) of a checkpoint-step rule:
  'latest', 'best', 'first_ge:<x>' or a step number; ValueError otherwise."""
  if isinstance(rule, bool):
    raise ValueError(f"Bad checkpoint step rule {rule!r}")
  if isinstance(rule, int) or (isinstance(rule, str) and rule.isdigit()):
    return "step", float(int(rule))
  if rule in ("latest", "best"):
    return rule, None
  if isinstance(rule, str) and rule.startswith("first_ge:"):
    try:
      return "first_ge", float(rule.split(":", 1)[1])
    except ValueError:
      pass
  raise ValueError(f"Bad checkpoint step rule {rule!r}: use 'latest', 'best', "
                   "'first_ge:<validation token accuracy>' (e.g. 'first_ge:0.99', the "
                   "paper's rule) or a step number.")


def select_step(model_dir: str, rule: Union[str, int]) -> tuple[int, str]:
  """(step, how it was chosen) of `model_dir`'s checkpoint picked by `rule`.

  'first_ge:x' is the paper's rule for pre-trained sources: the first evaluated step
  whose validation token accuracy is >= x, else the best one. A run without any
  validation record (e.g. a converted checkpoint) resolves every rule to its only step.
  Raises FileNotFoundError / ValueError when the chosen checkpoint does not exist."""
  kind, value = parse_step_rule(rule)
  saved = saved_steps(model_dir)
  if not saved:
    raise FileNotFoundError(f"{model_dir} holds no finished checkpoint "
                            "(checkpoints/<step>/params).")
  history = [r for r in validation_history(model_dir) if SELECTION_METRIC in r]
  if kind == "step":
    step, how = int(value), "given step"
  elif kind == "latest":
    step, how = saved[-1], "latest"
  elif not history and len(saved) == 1:
    return saved[0], f"{rule}: the only checkpoint (no validation records)"
  elif kind == "first_ge":
    first = next((r for r in history if r[SELECTION_METRIC] >= value), None)
    if first is None:
      step, acc = best_step(model_dir)
      how = (f"{rule}: no validation token accuracy reached {value:g}; best instead "
             f"({acc:.4f})")
    else:
      step = int(first["step"])
      how = f"{rule}: first step with validation token accuracy {first[SELECTION_METRIC]:.4f}"
  else:
    step, acc = best_step(model_dir)
    how = f"best validation token accuracy ({acc:.4f})"
  if step not in saved:
    raise FileNotFoundError(
        f"The checkpoint step rule {rule!r} chose step {step} of {model_dir}, but that "
        f"checkpoint no longer exists (saved: {saved}); retention deleted it. Re-run the "
        "source with CheckpointConfig.keep_first_reaching set (gin/pretrain.gin does) or "
        "a larger CHECKPOINTS_TO_KEEP, or choose one of the saved steps.")
  return step, how


def resolve_checkpoint(path: str, rule: Union[str, int] = "latest",
                       macro: str = "INITIAL_CHECKPOINT_PATH"
                       ) -> tuple[epath.Path, Optional[int], str]:
  """(params path, step, how) for a checkpoint given as a run's MODEL_DIR (the `rule`
  picks the step), its checkpoints/ directory or one checkpoints/<step> directory (used
  as given). Errors name the Gin `macro` that set the path."""
  p = epath.Path(path)
  if (p / "params").exists():
    step = int(p.name) if p.name.isdigit() else None
    return p / "params", step, "the step directory given"
  model_dir = p.parent if p.name == "checkpoints" and not (p / "checkpoints").exists() else p
  if not checkpoints.checkpoint_dir(str(model_dir)).exists():  # a bare dir of steps
    params = checkpoints.resolve_params_path(path, macro=macro)  # or raises
    return params, int(params.parent.name), "latest (no run directory to apply a rule)"
  try:
    step, how = select_step(str(model_dir), rule)
  except (FileNotFoundError, ValueError) as e:
    raise type(e)(f"{macro} {path!r}: {e}") from e
  return checkpoints.checkpoint_dir(str(model_dir)) / str(step) / "params", step, how


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
