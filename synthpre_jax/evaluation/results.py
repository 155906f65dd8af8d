"""A run's result: which checkpoint counts, and the records later analysis reads.

The paper's number for a fine-tuning run is the test metric at the checkpoint with the
best validation token accuracy. The trainer logs every validation evaluation to
`<MODEL_DIR>/validation/metrics.jsonl` and checkpoints every evaluated step (keep-best
keeps the best one), so the choice is made from that file alone. `evaluate` then adds
its record to `<MODEL_DIR>/results.json`, one per split, step and decoding setting
(see `write_result`), which studies and reports read without loading any model
(`read_result`: the latest record, or one setting's). TensorFlow-free.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping, Optional, Union

from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax.training import curriculum
from synthpre_jax.training import metric_writers

SELECTION_METRIC = checkpoints.BEST_METRIC  # "token_accuracy"
RESULTS_FILE = "results.json"
RESULTS_VERSION = 2  # 2: {"results": {key: record}, "latest": key}; 1: one record


def validation_history(model_dir: str) -> list[dict[str, float]]:
  """The run's validation records, one per evaluated step, in step order.

  An incomplete last line (a kill while writing) is dropped with a warning; ValueError,
  naming the file and line, for a corrupt earlier one (`metric_writers.read_jsonl`)."""
  path = epath.Path(model_dir) / "validation" / "metrics.jsonl"
  return sorted(metric_writers.read_jsonl(path), key=lambda r: r["step"])


def saved_steps(model_dir: str) -> list[int]:
  """Steps with a complete checkpoint (checksums recorded: `checkpoints.complete_steps`,
  the same definition the trainer resumes by)."""
  return checkpoints.complete_steps(checkpoints.checkpoint_dir(model_dir))


def best_step(model_dir: str, metric: str = SELECTION_METRIC) -> tuple[int, float]:
  """(step, value) of the saved checkpoint with the highest validation `metric`.

  Ties go to the earliest step. Steps whose checkpoint is gone are skipped (with a
  warning if the overall best is among them). Raises FileNotFoundError when the run has
  no saved checkpoint or no validation record for any of them.
  """
  saved = set(saved_steps(model_dir))
  if not saved:
    raise FileNotFoundError(
        f"{model_dir} has no finished checkpoint (checkpoints/<step>/checksums.json). "
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


# A length-curriculum run's stage record.
CURRICULUM_FILE = curriculum.STATE_FILE


def select_step(model_dir: str, rule: Union[str, int]) -> tuple[int, str]:
  """(step, how it was chosen) of `model_dir`'s checkpoint picked by `rule`.

  'first_ge:x' is the paper's rule for pre-trained sources: the first evaluated step
  whose validation token accuracy is >= x, else the best one. A run without any
  validation record (e.g. a converted checkpoint) resolves every rule to its only step.
  Raises FileNotFoundError / ValueError when the chosen checkpoint does not exist."""
  kind, value = parse_step_rule(rule)
  if kind in ("best", "first_ge") and (epath.Path(model_dir) / CURRICULUM_FILE).exists():
    raise ValueError(
        f"{model_dir} is a length-curriculum run: its validation accuracy was measured "
        f"on whichever stage was current, so {rule!r} could pick a short stage's "
        "checkpoint. Read it with 'latest' or a step number.")
  saved = saved_steps(model_dir)
  if not saved:
    raise FileNotFoundError(f"{model_dir} holds no finished checkpoint "
                            "(checkpoints/<step>/checksums.json).")
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
  if step not in saved and kind == "step":
    raise FileNotFoundError(
        f"No checkpoint for step {step} in {model_dir}; saved steps: {saved}. Use "
        "'best', 'latest', 'first_ge:<x>' or one of those.")
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
  as given). A relative path is taken from the working directory. Errors name the Gin
  `macro` that set the path."""
  path = checkpoints.absolute_path(str(path))
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


def setting_name(*, num_beams: int, alpha: float, max_decode_length: int,
                 default_decode_length: int,
                 sample: Optional[Mapping[str, Any]] = None, decode: bool = True) -> str:
  """The decoding settings and the scored sample as a name part: 'greedy',
  'beam<n>_alpha<a>' or 'teacher_forced' (no decoding, `decode=False`), then '_len<L>'
  when `max_decode_length` is not the default (decoding only) and
  '_sample<k>_seed<s>' (seeded sample) or '_first<k>' (first k of a stream) when only
  part of the split was scored (`sample` as `data.examples.EvalSample.info()`)."""
  name = "greedy" if num_beams == 1 else f"beam{num_beams}_alpha{alpha:g}"
  if not decode:
    name = "teacher_forced"
  elif max_decode_length != default_decode_length:
    name += f"_len{max_decode_length}"
  selection = (sample or {}).get("selection")
  if selection == "seeded_uniform":
    name += f"_sample{sample['num_examples']}_seed{sample['seed']}"
  elif selection == "first":
    name += f"_first{sample['num_examples']}"
  return name


def result_key(split: str, step: int, setting: Optional[str] = None) -> str:
  """'<split>_step<k>.<setting>': a result's key in results.json and the stem of its
  eval/ files."""
  return f"{split}_step{int(step)}" + (f".{setting}" if setting else "")


def write_result(model_dir: str, *, task: str, split: str, step: int,
                 metrics: Mapping[str, float], selection: str,
                 validation_value: Optional[float], num_examples: int,
                 decoding: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None,
                 setting: Optional[str] = None) -> epath.Path:
  """Adds a result record to `<model_dir>/results.json` and returns the file's path.

  The file keeps one record per `result_key(split, step, setting)` (an evaluation with
  the same key replaces its record) and names the one written last `latest`; it is
  rewritten atomically. `selection` says how `step` was chosen
  ('best_validation_token_accuracy', 'latest' or 'given'); `validation_value` is that
  step's validation token accuracy when known. Raises ValueError when the existing
  file cannot be read (it is left as it is).
  """
  key = result_key(split, step, setting)
  record = {
      "version": RESULTS_VERSION,
      "model_dir": str(model_dir),
      "setting": key,
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
  entries = _read_results_file(path)["results"] if path.exists() else {}
  entries[key] = record
  write_json_atomic(path, {"version": RESULTS_VERSION, "latest": key, "results": entries})
  return path


def _read_results_file(path: epath.Path) -> dict[str, Any]:
  """{"results": {key: record}, "latest": key} of a results.json of either version;
  ValueError naming the file when it is not one."""
  try:
    doc = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON ({e}); re-run `python -m "
                     "synthpre_jax.evaluate` to write it again.") from e
  if isinstance(doc, dict) and "results" not in doc and "metrics" in doc:  # version 1
    key = doc.get("setting") or result_key(doc.get("split", "unknown"), doc.get("step", 0))
    doc = {"latest": key, "results": {key: doc}}
  if not (isinstance(doc, dict) and isinstance(doc.get("results"), dict)
          and doc.get("latest") in doc["results"]):
    raise ValueError(f"{path} is not a result file (expected {{'results': {{...}}, "
                     "'latest': key}); re-run `python -m synthpre_jax.evaluate`.")
  return doc


def read_result(model_dir_or_file: str, setting: Optional[str] = None) -> dict[str, Any]:
  """A run's result record from its results.json (given the MODEL_DIR or the file).

  Without `setting`, the record written last. `setting` is a key ('test_step12.greedy')
  or its part after the step ('greedy', 'beam4_alpha0.6'): the most recent record
  with it. Raises FileNotFoundError without the file, ValueError for an unreadable
  file or an unknown setting (the message lists the file's keys).
  """
  path = epath.Path(model_dir_or_file)
  if path.is_dir():
    path = path / RESULTS_FILE
  if not path.exists():
    raise FileNotFoundError(f"No result record at {path}: run `python -m "
                            "synthpre_jax.evaluate` on that run first.")
  doc = _read_results_file(path)
  entries, latest = doc["results"], doc["latest"]
  if setting is None:
    return entries[latest]
  if setting in entries:
    return entries[setting]
  matches = [k for k in entries if k.split(".", 1)[-1] == setting]
  if not matches:
    raise ValueError(f"{path} has no result for setting {setting!r}; it has "
                     f"{sorted(entries)}.")
  return entries[max(matches, key=lambda k: (entries[k].get("written_at", ""),
                                             k == latest))]
