"""Command line: decode a split with a run's checkpoint, score it, record the result.

    python -m synthpre_jax.evaluate --gin_file=/path/to/run/config.gin \
        --gin.evaluate.split="'test'" --gin.evaluate.num_beams=4

Takes the same Gin files as `train` (a run's own `config.gin` is the simplest): the
model, task, feature lengths and MODEL_DIR come from the `train` bindings. By default it
picks the checkpoint with the best validation token accuracy (the paper's rule, see
`synthpre_jax.evaluation.results`), decodes every example of the split, or with
`evaluate.max_examples=k` a seeded uniform sample of k of them (`evaluate.sample_seed`,
default 0; nested for one seed; `synthpre_jax.data.examples`; an endless generated
stream gives its first k and needs max_examples), greedy for 1 beam, else beam search
with T5X's length penalty, scores it with the task's SeqIO metric functions plus
sequence accuracy on ids, and writes, next to the checkpoints:

  <MODEL_DIR>/eval/<split>_step<k>.<setting>.predictions.jsonl  {input, target,
                                                              prediction} a line
  <MODEL_DIR>/eval/<split>_step<k>.<setting>.metrics.json       the scores
  <MODEL_DIR>/results.json          one record per <split>_step<k>.<setting>, and which
                                    was written last (`results.read_result`)

<setting> names the decoding and the examples (`results.setting_name`): 'greedy' or
'beam<n>_alpha<a>', then '_len<L>' for a max_decode_length other than the default and
'_sample<k>_seed<s>' when max_examples sampled the split, e.g.
`test_step12.beam4_alpha0.6_len148_sample200_seed0`; so evaluating again with other
settings adds files and records instead of replacing them.

Metrics and result record say which examples were scored (`sample`: selection, k,
split size, seed). Inputs go through the task's own trimming to
TASK_FEATURE_LENGTHS['inputs'] (EOS kept, exactly as in training) and the truncated
ones are counted; targets are scored whole; decoding stops at
`evaluate.max_decode_length` tokens (default TASK_FEATURE_LENGTHS['targets']). An
`evaluate.*` binding in a training Gin file is kept in the run's config.gin and so
applies when evaluate reads it.

Multi-host: start one process per host with the same flags as `train`
(`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`, the JAX_* or SLURM
variables, or `--distributed=auto`). Every process reads the whole split and the
checkpoint's shards in the run's mesh; each decodes its devices' rows of every batch,
the predictions are gathered, and process 0 alone writes the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any, Optional, Sequence, Union

import gin
import jax
import numpy as np
from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax import decoding
from synthpre_jax import distributed
from synthpre_jax import partitioning
from synthpre_jax.cli import console
from synthpre_jax.cli import gin_utils, startup
from synthpre_jax.data import examples as examples_lib
from synthpre_jax.data import task_modules
from synthpre_jax.data import vocabulary
from synthpre_jax.evaluation import provenance
from synthpre_jax.evaluation import results
from synthpre_jax.models import registry
from synthpre_jax.training import losses, steps
from synthpre_jax.training import train_state as state_lib

log = logging.getLogger("synthpre_jax")

EOS_ID = 1


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What `evaluate` needs from the run's `train` bindings."""
  model_dir: str
  task: str
  feature_lengths: dict[str, int]
  model_config: registry.ModelConfig
  mesh_config: partitioning.MeshConfig
  batch_size: int
  mixture_or_task_module: Optional[str] = None


def run_spec_from_gin() -> RunSpec:
  """Reads the parsed `train` bindings (macros and @references resolved by Gin)."""
  bound = gin.get_bindings("train")
  missing = [k for k in ("model_dir", "mixture_or_task_name", "task_feature_lengths",
                         "model_config") if k not in bound]
  if missing:
    raise ValueError(f"The Gin files do not bind train.{', train.'.join(missing)}: pass "
                     "the run's config.gin or the Gin files it was trained with.")
  return RunSpec(model_dir=checkpoints.absolute_path(bound["model_dir"]),
                 task=bound["mixture_or_task_name"],
                 mixture_or_task_module=bound.get("mixture_or_task_module"),
                 feature_lengths=dict(bound["task_feature_lengths"]),
                 model_config=bound["model_config"],
                 mesh_config=bound.get("mesh_config", partitioning.MeshConfig()),
                 batch_size=int(bound.get("batch_size", 32)))


def choose_step(model_dir: str, checkpoint_step: Union[str, int]
                ) -> tuple[int, str, Optional[float]]:
  """(step, how it was chosen, its validation token accuracy if known) for a rule of
  `results.select_step`: 'best' (the paper's rule for scoring), 'latest',
  'first_ge:<x>' or a step."""
  if checkpoint_step == "best":
    step, value = results.best_step(model_dir)
    return step, "best_validation_token_accuracy", value
  step, how = results.select_step(model_dir, checkpoint_step)
  value = next((r.get(results.SELECTION_METRIC) for r in results.validation_history(
      model_dir) if r["step"] == step), None)
  return step, how, value


def check_vocabulary(spec: RunSpec, step: int, task: Any) -> None:
  """Refuses to decode with another vocabulary than the checkpoint was trained with
  (ValueError naming both); checkpoints that record none are logged as unchecked."""
  params_path = checkpoints.checkpoint_dir(spec.model_dir) / str(step) / "params"
  recorded = (checkpoints.read_meta(params_path) or {}).get("vocabulary")
  current = vocabulary.task_identity(task.output_features)
  if not recorded:
    log.warning("Checkpoint %s records no vocabulary (written before vocabulary "
                "records): not checked against %s.", params_path,
                vocabulary.describe(current))
  elif not vocabulary.same(recorded, current):
    raise ValueError(
        f"Vocabulary mismatch: {params_path} was trained with "
        f"{vocabulary.describe(recorded)}, but task {spec.task!r} now uses "
        f"{vocabulary.describe(current)}, so its ids would be decoded as other tokens. "
        f"Evaluate with the run's vocabulary (SYNTHPRE_VOCAB_PATH as when it was "
        f"trained; T5's: {vocabulary.T5_VOCAB_PATH}).")


def load_params(spec: RunSpec, step: int, mesh) -> Any:
  """The parameters of checkpoint `step`, placed in their training shardings."""
  shapes, shardings = state_lib.abstract_params(registry.build_model(spec.model_config), mesh)
  path = checkpoints.checkpoint_dir(spec.model_dir) / str(step) / "params"
  expected = {k: tuple(v.shape) for k, v in checkpoints.flat_names(shapes).items()}
  checkpoints.check_compatible(checkpoints.params_metadata(path), expected, str(path))
  return checkpoints.load_params(path, shapes, shardings)


def _strip(ids: np.ndarray) -> list[int]:
  """Ids up to and including the first EOS; trailing padding dropped."""
  out = []
  for t in ids.tolist():
    if t == 0:
      break
    out.append(int(t))
    if t == EOS_ID:
      break
  return out


def _text(vocab, ids: Sequence[int]) -> Any:
  """The vocabulary's decoding of ids without EOS (PassThrough vocabularies give ids)."""
  body = [t for t in ids if t != EOS_ID]
  out = vocab.decode(body)
  return out.tolist() if isinstance(out, np.ndarray) else out


def encoder_tokens(examples: Sequence[dict], length: int, rows: int) -> np.ndarray:
  """[rows, length] int32: each example's 'inputs' (already trimmed to `length` by the
  task's preprocessing) zero-padded, extra rows zero. Raises ValueError if one is
  longer, i.e. was not read with that inputs length."""
  tokens = np.zeros((rows, length), np.int32)
  for i, ex in enumerate(examples):
    ids = ex["inputs"]
    if len(ids) > length:
      raise ValueError(f"An input of {len(ids)} tokens exceeds the inputs length {length}; "
                       "read the examples with eval_sample(inputs_length=...).")
    tokens[i, :len(ids)] = ids
  return tokens


def decode_split(spec: RunSpec, params: Any, mesh, examples: list[dict], *,
                 num_beams: int, alpha: float, batch_size: int,
                 max_decode_length: Optional[int] = None) -> list[list[int]]:
  """Predicted id lists for `examples` (in order), at most `max_decode_length` tokens
  each (default TASK_FEATURE_LENGTHS['targets'])."""
  in_len = spec.feature_lengths["inputs"]
  max_decode = max_decode_length or spec.feature_lengths["targets"]
  preds = []
  shards = partitioning.data_shards(mesh)
  rows = -(-batch_size // shards) * shards
  with console.progress(len(examples), desc="decoded", unit="examples",
                        enabled=jax.process_index() == 0) as advance:
    for start in range(0, len(examples), rows):
      chunk = examples[start:start + rows]
      tokens = encoder_tokens(chunk, in_len, rows)
      out = decoding.predict_batch(spec.model_config, params, tokens,
                                   max_decode_length=max_decode, num_beams=num_beams,
                                   alpha=alpha, mesh=mesh)
      preds.extend(_strip(row) for row in out[:len(chunk)])
      advance(len(chunk))
  return preds


def teacher_forced_batch(examples: Sequence[dict], inputs_length: int,
                         targets_length: int, rows: int) -> tuple[dict, int]:
  """The training view of `examples` as one batch (encoder inputs, shifted decoder
  inputs, targets trimmed to `targets_length` with EOS kept as `append_eos_after_trim`
  does) and how many targets were trimmed."""
  targets = np.zeros((rows, targets_length), np.int32)
  trimmed = 0
  for i, ex in enumerate(examples):
    ids = _strip(np.asarray(ex["targets"]))
    if len(ids) > targets_length:  # trim, keeping a final EOS (append_eos_after_trim)
      cut = ids[:targets_length - 1] + [EOS_ID] if ids[-1] == EOS_ID else ids[:targets_length]
      ids, trimmed = cut, trimmed + 1
    targets[i, :len(ids)] = ids
  decoder_inputs = np.zeros_like(targets)
  decoder_inputs[:, 1:] = targets[:, :-1]
  return {"encoder_input_tokens": encoder_tokens(examples, inputs_length, rows),
          "decoder_input_tokens": decoder_inputs,
          "decoder_target_tokens": targets}, trimmed


def reference_scores(spec: RunSpec, params: Any, mesh, examples: list[dict], *,
                     batch_size: int) -> dict[str, float]:
  """How likely the model finds each reference target (teacher-forced, no z-loss):

  `reference_log_likelihood` (mean log-probability per target token, nats; higher is
  better), `reference_token_accuracy` (argmax == reference) and
  `reference_targets_trimmed` (targets longer than TASK_FEATURE_LENGTHS['targets'],
  scored on their first tokens as in training). At small scale these separate
  sources long before decoded exact match moves.
  """
  model = registry.build_model(spec.model_config)
  _, shardings = state_lib.abstract_params(model, mesh)
  eval_step = steps.make_eval_step(model, mesh, shardings, z_loss=0.0)
  shards = partitioning.data_shards(mesh)
  rows = -(-batch_size // shards) * shards
  totals: dict[str, float] = {}
  trimmed = 0
  for start in range(0, len(examples), rows):
    batch, cut = teacher_forced_batch(examples[start:start + rows],
                                      spec.feature_lengths["inputs"],
                                      spec.feature_lengths["targets"], rows)
    trimmed += cut
    sharding = partitioning.batch_sharding(mesh)
    batch = {k: decoding.global_array(v, sharding) for k, v in batch.items()}
    sums = jax.device_get(eval_step(params, batch))
    for k, v in sums.items():
      totals[k] = totals.get(k, 0.0) + float(v)
  summary = losses.summarize(totals)
  return {"reference_log_likelihood": -summary["loss"],
          "reference_token_accuracy": summary["token_accuracy"],
          "reference_targets_trimmed": float(trimmed)}


def score(task, examples: list[dict], preds: list[list[int]]) -> tuple[dict, list[dict]]:
  """The task's metric functions on postprocessed text, plus sequence accuracy on ids."""
  vocab = task.output_features["targets"].vocabulary
  post = task.postprocess_fn or (lambda x, **_: x)
  targets, predictions, rows = [], [], []
  for ex, pred in zip(examples, preds):
    target_ids = _strip(np.asarray(ex["targets"]))
    target_text = ex.get("targets_pretokenized", _text(vocab, target_ids))
    pred_text = _text(vocab, pred)
    targets.append(post(target_text, example=ex, is_target=True))
    predictions.append(post(pred_text, example=ex, is_target=False))
    input_text = ex.get("inputs_pretokenized", ex["inputs"].tolist())
    rows.append({"input": input_text, "target": target_text, "prediction": pred_text})
  same = [list(p) == _strip(np.asarray(ex["targets"])) for ex, p in zip(examples, preds)]
  metrics = {"sequence_accuracy": 100.0 * float(np.mean(same)) if same else 0.0}
  for fn in task.metric_fns:
    metrics.update({k: float(v) for k, v in fn(targets, predictions).items()})
  return metrics, rows


def _json_default(value: Any) -> Any:
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return str(value)


def _decode_length(spec: RunSpec, max_decode_length: Optional[int]) -> int:
  """`evaluate.max_decode_length`, default TASK_FEATURE_LENGTHS['targets']."""
  if max_decode_length is None:
    return int(spec.feature_lengths["targets"])
  if isinstance(max_decode_length, bool) or not isinstance(max_decode_length, int) or (
      max_decode_length < 1):
    raise ValueError(f"evaluate.max_decode_length must be an int >= 1 or None (the "
                     f"targets feature length), got {max_decode_length!r}.")
  return max_decode_length


def _write_eval_files(spec: RunSpec, split: str, step: int, setting: str,
                      rows: list[dict], record: dict[str, Any]) -> None:
  """<MODEL_DIR>/eval/<split>_step<k>.<setting>.predictions.jsonl and .metrics.json,
  each written under a temporary name and renamed."""
  out_dir = epath.Path(spec.model_dir) / "eval"
  stem = results.result_key(split, step, setting)
  out_dir.mkdir(parents=True, exist_ok=True)
  tmp = out_dir / f"{stem}.predictions.jsonl.tmp"
  tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
  tmp.replace(out_dir / f"{stem}.predictions.jsonl")
  results.write_json_atomic(out_dir / f"{stem}.metrics.json", {
      "task": spec.task, "split": split, "step": step,
      "setting": results.result_key(split, step, setting), **record})


@gin.configurable(denylist=["devices"])
def evaluate(*, split: str = "test", checkpoint_step: Union[str, int] = "best",
             num_beams: int = 1, alpha: float = 0.6, batch_size: Optional[int] = None,
             max_examples: Optional[int] = None, sample_seed: int = 0,
             max_decode_length: Optional[int] = None, write_result: bool = True,
             decode: bool = True, devices: Optional[list] = None) -> dict[str, Any]:
  """Decodes and scores `split` at `checkpoint_step` ('best', 'latest' or a step).

  Every evaluation also scores the references teacher-forced (`reference_scores`);
  `decode=False` does only that (setting name 'teacher_forced', no task metric): the
  cheap, sensitive measure for small studies.

  `max_examples=k` scores a seeded uniform sample of k examples (seed `sample_seed`;
  the first k of an endless stream, which needs it); `max_decode_length` defaults to
  TASK_FEATURE_LENGTHS['targets']; `batch_size` to the run's BATCH_SIZE;
  `write_result` adds the record to `<MODEL_DIR>/results.json` and makes it the latest
  (turn it off to score other splits or steps without changing which record is the
  run's result). Output names carry the settings (module docstring). Returns the
  metrics on process 0 ({} on the others: process 0 alone scores and writes). Raises
  ValueError for bad settings, FileNotFoundError without a checkpoint.
  """
  spec = run_spec_from_gin()
  task_modules.import_task_modules(spec.mixture_or_task_module)
  gin_utils.forward_legacy_data_dir(gin.get_bindings("train").get("downstream_data_dir"))
  if num_beams < 1:
    raise ValueError(f"evaluate.num_beams must be >= 1, got {num_beams}.")
  decoding.check_supports_decoding(spec.model_config, num_beams)
  max_decode = _decode_length(spec, max_decode_length)
  task = examples_lib.pipeline.resolve_task(spec.task)
  step, rule, val = choose_step(spec.model_dir, checkpoint_step)
  check_vocabulary(spec, step, task)
  sample = examples_lib.eval_sample(spec.task, split,
                                    inputs_length=spec.feature_lengths["inputs"],
                                    max_examples=max_examples, sample_seed=sample_seed)
  examples = sample.examples
  if not examples:
    raise ValueError(f"Split {split!r} of {spec.task!r} has no examples.")
  log.info("Evaluating %s split %r (%s) at step %d (%s%s), %s", spec.task, split,
           sample.info(), step, rule,
           f", validation token accuracy {val:.4f}" if val is not None else "",
           "teacher-forced only" if not decode else "greedy" if num_beams == 1 else
           f"beam search ({num_beams} beams, alpha {alpha})")
  mesh = partitioning.make_mesh(spec.mesh_config, devices)
  params = load_params(spec, step, mesh)
  preds = decode_split(spec, params, mesh, examples, num_beams=num_beams, alpha=alpha,
                       batch_size=batch_size or spec.batch_size,
                       max_decode_length=max_decode) if decode else None
  reference = reference_scores(spec, params, mesh, examples,
                               batch_size=batch_size or spec.batch_size)
  if jax.process_index() != 0:  # every process holds the same predictions: one scores
    return {}
  if sample.inputs_truncated:
    log.warning("%d of %d inputs were longer than TASK_FEATURE_LENGTHS['inputs']=%d and "
                "were truncated (as in training).", sample.inputs_truncated,
                len(examples), spec.feature_lengths["inputs"])
  if decode:
    metrics, rows = score(task, examples, preds)
    decoding_info = {"num_beams": num_beams, "alpha": alpha,
                     "max_decode_length": max_decode}
  else:
    metrics, rows, decoding_info = {}, [], {"teacher_forced": True}
  metrics.update(reference)
  log.info("%s %s step %d: %s", spec.task, split, step,
           ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))
  extra = {"inputs_truncated": sample.inputs_truncated, "sample": sample.info(),
           "run": provenance.read_run_record(spec.model_dir)}
  setting = results.setting_name(
      num_beams=num_beams, alpha=alpha, max_decode_length=max_decode,
      default_decode_length=_decode_length(spec, None), sample=sample.info(),
      decode=decode)
  _write_eval_files(spec, split, step, setting, rows, {
      "metrics": metrics, "num_examples": len(examples), "decoding": decoding_info,
      **extra})
  if write_result:
    path = results.write_result(
        spec.model_dir, task=spec.task, split=split, step=step, metrics=metrics,
        selection=rule, validation_value=val, num_examples=len(examples),
        decoding=decoding_info, extra=extra, setting=setting)
    log.info("Result record: %s", path)
  return metrics


def main(argv: Optional[Sequence[str]] = None) -> int:
  startup.setup_logging()
  flags, rest = startup.parse_distributed_flags(sys.argv[1:] if argv is None else argv)
  args, bindings = gin_utils.parse_args(
      rest, prog="python -m synthpre_jax.evaluate", configurable=evaluate,
      parents=[startup.distributed_parser()],
      description="Decode a split with a run's checkpoint (best validation token accuracy by "
      "default), score it, and write predictions, metrics and results.json. "
      "Multi-process flags as for train: --coordinator_address=HOST:PORT "
      "--num_processes=N --process_id=I --initialization_timeout=SECONDS "
      "--distributed=auto.")
  return run_from_gin(args.gin_file, bindings, search_paths=args.gin_search_paths,
                      distributed_flags=flags)


def run_from_gin(gin_files: Sequence[str], bindings: Sequence[str] = (), *,
                 search_paths: Optional[Sequence[str]] = None,
                 distributed_flags: Optional[argparse.Namespace] = None) -> int:
  """Runs `evaluate` from Gin files (a run's config.gin) and 'NAME = value' bindings,
  parsed in a clean Gin state, after the multi-process start-up of `distributed_flags`
  (default: no flags). Returns the command line's exit code: 0, or 1 for bad input or
  processes that disagree (logged)."""
  flags = distributed_flags or startup.distributed_parser().parse_args([])
  try:
    gin_utils.parse_gin(gin_files, bindings, search_paths)
    startup.start_processes(flags)
    evaluate()
  except (ValueError, FileNotFoundError, PermissionError, distributed.DistributedError) as e:
    log.error("%s", e)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
