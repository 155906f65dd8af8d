"""The training loop: restore decisions, sharded steps, logging, eval and checkpoints.

Library code: takes plain config dataclasses and data callables, no Gin and no
TensorFlow (the data callables come from the data layer). See `synthpre_jax.cli.train` for
the Gin-wired command line.

Multi-process (see `synthpre_jax.distributed`): the mesh spans every process's devices;
each process feeds only its own rows of every global batch
(`jax.make_array_from_process_local_data`); metrics files are written by process 0;
checkpoints are written collectively by Orbax (every process calls save); evaluation
keeps all processes in step even when their validation shards differ in length.

SIGTERM (preemption): the run saves a checkpoint at the next step boundary (all
processes at the same step) and raises `Preempted`; the same command resumes it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils

from synthpre_jax import checkpoints
from synthpre_jax import distributed
from synthpre_jax import partitioning
from synthpre_jax.checkpoints import saver as checkpoint_saver
from synthpre_jax.checkpoints import transfer_modes
from synthpre_jax.models import registry
from synthpre_jax.training import flops as flops_lib
from synthpre_jax.training import hooks as hooks_lib
from synthpre_jax.training import losses
from synthpre_jax.training import metric_window
from synthpre_jax.training import metric_writers
from synthpre_jax.training import optimizers
from synthpre_jax.training import parts as parts_lib
from synthpre_jax.training import restore
from synthpre_jax.training import train_state as state_lib

log = logging.getLogger("synthpre_jax")

NumpyBatch = Mapping[str, np.ndarray]
TrainDataFn = Callable[[int], Iterator[NumpyBatch]]   # start_step -> per-process batches
EvalDataFn = Callable[[], Iterable[NumpyBatch]]
InitTransform = restore.InitTransform


class TrainingDivergedError(RuntimeError):
  """The loss became NaN or inf; the last good checkpoint is kept."""


class Preempted(RuntimeError):
  """SIGTERM stopped the run after it saved a checkpoint at `step`; re-run to resume."""

  def __init__(self, step: int, directory: str):
    self.step, self.directory = step, directory
    super().__init__(
        f"Stopped by SIGTERM (preemption) at step {step}: a complete checkpoint was saved "
        f"in {directory}. Re-run the same command to resume from it.")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """What a run does. `batch_size` is global (all processes); lengths are for logging
  tokens/s and MFU. `transfer_mode` applies to `initial_checkpoint_path` only."""
  model_dir: str
  train_steps: int
  batch_size: int
  inputs_length: int
  targets_length: int
  seed: int = 0
  log_period: int = 100
  eval_period: int = 1000
  eval_steps: Optional[int] = 20  # batches per evaluation; None = the whole split
  z_loss: float = 1e-4
  loss_normalizing_factor: Optional[str] = None
  initial_checkpoint_path: Optional[str] = None
  transfer_mode: str = "all"
  # The task's vocabulary identity (synthpre_jax.data.vocabulary), recorded in every
  # checkpoint's meta and checked against the checkpoints this run reads.
  vocabulary: Optional[Mapping[str, Any]] = None
  allow_vocab_mismatch: bool = False

  def __post_init__(self):
    for name in ("train_steps", "batch_size", "log_period", "eval_period"):
      if getattr(self, name) < 1:
        raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}.")
    mode = transfer_modes.parse(self.transfer_mode)  # ValueError naming a bad mode
    if self.allow_vocab_mismatch and mode.kind == "all":
      # A regex that takes the embedding is refused at restore (vocabulary.check_transfer).
      raise ValueError("ALLOW_VOCAB_MISMATCH=True needs TRANSFER_MODE="
                       "'all_but_embeddings' (or a partial mode that keeps the embedding "
                       "fresh): a copied embedding must match the run's vocabulary.")


@dataclasses.dataclass
class TrainResult:
  state: state_lib.TrainState
  train_metrics: dict[str, float]
  eval_metrics: dict[str, float]
  restore_log: list[str]


def ensure_writable(model_dir: str) -> None:
  """Creates MODEL_DIR and proves it can be written, or raises with what to fix."""
  path = epath.Path(model_dir)
  probe = path / f".write_probe_{uuid.uuid4().hex}"
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe.write_text("ok")
    probe.unlink()
  except (OSError, ValueError) as e:
    raise PermissionError(
        f"MODEL_DIR {model_dir!r} cannot be written ({type(e).__name__}: {e}). Choose a "
        "directory you can create files in, e.g. --gin.MODEL_DIR=\"'/tmp/my_run'\".") from e


def _to_global(batch: NumpyBatch, mesh) -> dict[str, jax.Array]:
  """This process's rows -> global arrays of process_count x as many rows (the
  process's devices hold exactly its rows; `check_process_layout` made sure)."""
  sharding = partitioning.batch_sharding(mesh)
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    global_shape = (v.shape[0] * jax.process_count(),) + v.shape[1:]
    out[k] = jax.make_array_from_process_local_data(sharding, v, global_shape)
  return out


def _processes_status(code: int) -> np.ndarray:
  """Every process's `code` (one small all-gather); just [code] in one process."""
  if jax.process_count() == 1:
    return np.array([code])
  return np.asarray(multihost_utils.process_allgather(np.array([code], np.int32))).ravel()


def _sum_metrics(pending: list[dict]) -> dict[str, float]:
  fetched = jax.device_get(pending)
  keys = fetched[0].keys()
  out = {k: float(np.sum([m[k] for m in fetched])) for k in keys if k != "learning_rate"}
  if "learning_rate" in keys:
    out["learning_rate"] = float(fetched[-1]["learning_rate"])
  return out


def evaluate(eval_step: Callable, params: Any, batches: Iterable[NumpyBatch], mesh,
             max_steps: Optional[int]) -> dict[str, float]:
  """Teacher-forced validation: loss, token accuracy, sequence accuracy.

  With several processes every process must run the same number of steps: they agree
  each step (a tiny all-gather) whether any still has a batch, and those that ran out
  feed all-zero rows (no loss weight), so the sums cover exactly the examples read."""
  pending = []
  it = iter(batches)
  template = None
  while max_steps is None or len(pending) < max_steps:
    batch = next(it, None)
    # 1: have a batch; 0: ran out (can pad); 2: never had one (cannot know the shapes).
    status = _processes_status(1 if batch is not None else (0 if template else 2))
    if not (status == 1).any():
      break
    if (status == 2).any():
      raise ValueError(
          f"The validation shard of process(es) {np.flatnonzero(status == 2).tolist()} "
          "yielded no batch while others did: the split is too small to give every "
          "process one batch; lower BATCH_SIZE or use a larger validation split.")
    if batch is None:
      batch = {k: np.zeros_like(v) for k, v in template.items()}
    template = template or batch
    pending.append(eval_step(params, _to_global(batch, mesh)))
  if not pending:
    raise ValueError("The validation split yielded no batch: is it smaller than one "
                     "global batch, or EVAL_STEPS 0?")
  return losses.summarize(_sum_metrics(pending))


def _resume_window(model_dir: str, start: int, log_period: int
                   ) -> metric_window.MetricWindow:
  """The training-metrics window saved with checkpoint `start` (empty at step 0);
  warns when a checkpoint between log steps holds none (an older checkpoint)."""
  if start == 0:
    return metric_window.MetricWindow(0)
  params_path = checkpoints.checkpoint_dir(model_dir) / str(start) / "params"
  saved = (checkpoints.read_meta(params_path) or {}).get("train_window")
  window, note = metric_window.MetricWindow.from_state(saved, start)
  if note and start % log_period:
    log.warning("Training metrics: %s.", note)
  return window


def _check_finite(metrics: dict[str, float], step: int,
                  saver: checkpoint_saver.Saver) -> None:
  loss = metrics["loss_sum"]
  if np.isfinite(loss) and metrics.get("nonfinite", 0.0) == 0.0:
    return
  saver.finish()
  done = checkpoints.complete_steps(saver.manager.directory)
  last = done[-1] if done else None
  where = (f"the last good checkpoint, step {last}, is kept in {saver.manager.directory}"
           if last is not None else "no checkpoint had been written yet")
  raise TrainingDivergedError(
      f"Training diverged: the loss or the parameters became NaN/inf by step {step} "
      f"(loss {loss}); stopped before saving them. {where}. Lower the learning rate or "
      "check the data.")


def train(*, model_config: registry.ModelConfig, train_config: TrainConfig,
          optimizer_config: optimizers.OptimizerConfig,
          mesh_config: partitioning.MeshConfig, checkpoint_config: checkpoints.CheckpointConfig,
          train_data: TrainDataFn, eval_data: Optional[EvalDataFn] = None,
          devices: Optional[list] = None,
          init_transform: Optional[InitTransform] = None,
          stop_on_sigterm: bool = True,
          after_restore: Optional[Callable[[int], None]] = None,
          hooks: Sequence[hooks_lib.Hook] = ()) -> TrainResult:
  """Trains (or resumes) a T5 model and returns its final state and metrics.

  `init_transform(params, mesh, param_shardings, seed) -> (params, log lines)` changes
  the initial parameters of a run that starts at step 0 (after the
  INITIAL_CHECKPOINT_PATH transfer; never on resume), e.g.
  `moment_matching.MomentMatchingInit`. The optimizer state stays the fresh one
  (Adafactor's initial state does not depend on the parameter values).

  `stop_on_sigterm`: after SIGTERM, save at the next step boundary and raise `Preempted`
  (the handler is installed only from the main thread and removed on return).
  `after_restore(start_step)` runs once the restore decision succeeded, before the
  first step (e.g. to write config.gin). `hooks` (`synthpre_jax.training.hooks`) run
  after the loop's own actions at every step they are due, in order. Steps in `checkpoint_config.keep_steps` are
  saved and kept (0: the initial state, before the first step); every checkpoint's meta
  holds `tokens_per_step` (batch x (inputs + targets) positions). A failed save raises
  `checkpoint_saver.CheckpointSaveError` at once. Relative paths are made absolute."""
  cfg = dataclasses.replace(
      train_config, model_dir=checkpoints.absolute_path(train_config.model_dir),
      initial_checkpoint_path=checkpoints.absolute_path(train_config.initial_checkpoint_path))
  ensure_writable(cfg.model_dir)
  hooks = list(hooks)
  hooks_lib.check_hooks(hooks)
  mesh = partitioning.make_mesh(mesh_config, devices)
  distributed.check_process_layout(partitioning.process_grid(mesh))
  shards = partitioning.data_shards(mesh)
  need = math.lcm(shards, jax.process_count())
  if cfg.batch_size % need:
    raise ValueError(f"BATCH_SIZE {cfg.batch_size} must be divisible by the number of "
                     f"data shards (data x fsdp = {shards}) and of processes "
                     f"({jax.process_count()}), i.e. by {need}; e.g. BATCH_SIZE = "
                     f"{need * max(1, round(cfg.batch_size / need))}.")
  parts = parts_lib.get(model_config, optimizer_config, mesh, cfg.z_loss,
                        cfg.loss_normalizing_factor)
  state, restore_log = restore.initial_state(cfg, parts, mesh, checkpoint_config.verify,
                                             init_transform,
                                             registry.embedding_names(model_config))
  log.info("Restore decisions:\n%s", "\n".join(restore_log))
  saver = checkpoint_saver.Saver(checkpoints.make_manager(cfg.model_dir, checkpoint_config),
                                 is_primary=jax.process_index() == 0)
  if after_restore is not None:
    after_restore(int(jax.device_get(state.step)))

  train_step, eval_step = parts.train_step, parts.eval_step
  dropout_key = jax.random.key(cfg.seed + 1)
  start = int(jax.device_get(state.step))
  train_writer = metric_writers.MetricWriter(cfg.model_dir, "train", resume_step=start)
  eval_writer = metric_writers.MetricWriter(cfg.model_dir, "validation", resume_step=start)
  flops_step = registry.flops_per_step(model_config, cfg.batch_size, cfg.inputs_length,
                                        cfg.targets_length)
  peak = flops_lib.peak_flops_per_device(mesh.devices.flat[0])
  tokens_per_step = cfg.batch_size * (cfg.inputs_length + cfg.targets_length)
  meta = {"model_config": dataclasses.asdict(model_config),
          "vocabulary": dict(cfg.vocabulary) if cfg.vocabulary else None,
          "batch_size": cfg.batch_size, "seed": cfg.seed,
          "tokens_per_step": tokens_per_step,  # input + target positions, padding included
          "process_count": jax.process_count(), "mesh_shape": dict(mesh.shape)}

  train_metrics: dict[str, float] = {}
  eval_metrics: dict[str, float] = {}
  window = _resume_window(cfg.model_dir, start, cfg.log_period)
  batches = train_data(start)
  distributed.wait_for_all(f"synthpre_jax_train_start_{start}")
  t_last, step_last = time.perf_counter(), start
  if start >= cfg.train_steps:
    log.info("Nothing to do: the checkpoint is at step %d >= TRAIN_STEPS %d.", start,
             cfg.train_steps)
  watcher = distributed.StopWatcher(enabled=stop_on_sigterm)
  finished = False
  try:
    if start == 0 and 0 in checkpoint_config.keep_steps and 0 not in \
        checkpoints.complete_steps(checkpoints.checkpoint_dir(cfg.model_dir)):
      saver.save(state, meta={**meta, "train_window": window.state()})  # the initial state
    for step in range(start, cfg.train_steps):
      try:
        batch = next(batches)
      except StopIteration:
        raise ValueError(f"The training data ran out at step {step}; use an infinite "
                         "(repeated) training split.") from None
      state, sums = train_step(state, _to_global(batch, mesh), dropout_key)
      saver.poll()  # a finished save gets its checksums; a failed one stops the run
      window.add(sums)
      done = step + 1
      # SIGTERM: every process sees should_stop True at the same step (distributed.py).
      due = hooks_lib.due_actions(
          done, cfg.train_steps, log_period=cfg.log_period,
          eval_period=cfg.eval_period if eval_data is not None else None,
          checkpoint_period=checkpoint_config.period,
          keep_steps=checkpoint_config.keep_steps, stop_requested=watcher.should_stop(done))
      logged = evaluated = None
      if due.log or due.checkpoint:
        summed = window.close(done) if due.log else window.totals()
        _check_finite(summed, done, saver)
        if due.log:
          now = time.perf_counter()
          rate = (done - step_last) / max(now - t_last, 1e-9)
          t_last, step_last = now, done
          train_metrics = losses.summarize(summed)
          train_metrics.update(steps_per_second=rate, tokens_per_second=rate * tokens_per_step,
                               learning_rate=summed.get("learning_rate", float("nan")))
          mfu = (rate * flops_step / (peak * mesh.devices.size)) if peak else None
          if mfu is not None:
            train_metrics["mfu"] = mfu
          train_writer.write_scalars(done, train_metrics)
          log.info("step %d/%d | loss %.4f | token_acc %.4f | %.2f steps/s | "
                   "%.0f tokens/s | MFU %s | lr %.3g", done, cfg.train_steps,
                   train_metrics["loss"], train_metrics["token_accuracy"], rate,
                   rate * tokens_per_step, f"{mfu:.1%}" if mfu is not None else "n/a",
                   train_metrics["learning_rate"])
          logged = train_metrics
      if due.evaluate:
        eval_metrics = evaluate(eval_step, state.params, eval_data(), mesh, cfg.eval_steps)
        evaluated = eval_metrics
        eval_writer.write_scalars(done, eval_metrics)
        log.info("eval at step %d | loss %.4f | token_acc %.4f | seq_acc %.4f", done,
                 eval_metrics["loss"], eval_metrics["token_accuracy"],
                 eval_metrics["sequence_accuracy"])
      if due.checkpoint:
        saver.save(state, meta={**meta, "train_window": window.state()},
                   metrics={checkpoints.BEST_METRIC: eval_metrics["token_accuracy"]}
                   if due.evaluate else None)
      user_hooks = [h for h in hooks if hooks_lib.is_due(h.every, done, cfg.train_steps)]
      if user_hooks:
        info = hooks_lib.StepInfo(step=done, train_steps=cfg.train_steps, state=state,
                                  train_metrics=logged, eval_metrics=evaluated,
                                  checkpointed=due.checkpoint)
        for hook in user_hooks:
          hook(info)
      if due.stop:
        saver.finish()
        raise Preempted(done, str(saver.manager.directory))
    finished = True
  finally:
    watcher.close()
    if finished:
      saver.finish()
    else:  # already failing: record the finished save's checksums, keep that error
      try:
        saver.finish()
      except checkpoint_saver.CheckpointSaveError as e:
        log.error("%s", e)
    train_writer.close()
    eval_writer.close()
  return TrainResult(state=state, train_metrics=train_metrics, eval_metrics=eval_metrics,
                     restore_log=restore_log)
