"""Command line: `python -m synthpre_jax.train --gin_file=... --gin.MODEL_DIR="'/tmp/run'"`.

The Gin edge of the project: binds the macros (MODEL_DIR, MIXTURE_OR_TASK_NAME,
TASK_FEATURE_LENGTHS, TRAIN_STEPS, BATCH_SIZE, INITIAL_CHECKPOINT_PATH, TRANSFER_MODE,
...) to `train`, builds the input pipeline (SeqIO, or for the synthetic streams the
TensorFlow-free native one: `train.input_pipeline`) and hands everything to the
TensorFlow-free `synthpre_jax.training.trainer`. Initialization from parameter statistics is
bound here too: `train.init_transform = @moment_matching_init()` or
`@pre_attention_norm_constant_init()` (see gin/init/).

Multi-process runs (one process per host; see synthpre_jax/distributed.py and
launch/): every host runs the same command plus how to find the others,
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (or the JAX_* /
SLURM environment variables, or `--distributed=auto` on Cloud TPU). The runtime starts
before anything else, and the processes then compare a fingerprint of the Gin config
and the code. Only process 0 writes config.gin, metrics and INFO logs.

Exit codes: 0 done; 1 bad input, divergence, a failed checkpoint save, or processes
that disagree; 143 (128 + SIGTERM) stopped by SIGTERM after saving a checkpoint: re-run
the same command to resume.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Mapping, Optional, Sequence, Union

import gin
import jax

from synthpre_jax import checkpoints
from synthpre_jax import distributed
from synthpre_jax import partitioning
from synthpre_jax.checkpoints import saver as checkpoint_saver
from synthpre_jax.cli import gin_utils, startup
from synthpre_jax.data import native, pipeline, task_metadata, task_modules, vocabulary
from synthpre_jax.evaluation import provenance
from synthpre_jax.evaluation import results
from synthpre_jax.init import lstm_embedding as lstm_embedding_init
from synthpre_jax.init import moment_matching
from synthpre_jax.models import registry
from synthpre_jax.training import curriculum
from synthpre_jax.training import hooks as hooks_lib
from synthpre_jax.training import optimizers
from synthpre_jax.training import trainer

# Gin names of the config dataclasses; calling a value builds it with the bindings.
# Model configs (T5Config, LSTMConfig, ...) are made configurable by their families'
# registration (synthpre_jax/models/registry.py).
CONFIGURABLES = {
    **registry.gin_configurables(),
    **{cls.__name__: gin.external_configurable(cls, module=None)
       for cls in (optimizers.OptimizerConfig, partitioning.MeshConfig,
                   checkpoints.CheckpointConfig)},
}
PREEMPTED_EXIT_CODE = distributed.PREEMPTED_EXIT_CODE
# Init transforms (applied at step 0 only), bound as `train.init_transform = @name()`.
CONFIGURABLES["moment_matching_init"] = gin.external_configurable(
    moment_matching.MomentMatchingInit, name="moment_matching_init", module=None)
CONFIGURABLES["pre_attention_norm_constant_init"] = gin.external_configurable(
    moment_matching.ConstantNormInit, name="pre_attention_norm_constant_init", module=None)
CONFIGURABLES["LengthCurriculum"] = gin.external_configurable(
    curriculum.LengthCurriculum, module=None)
CONFIGURABLES["lstm_embedding_from_t5"] = gin.external_configurable(
    lstm_embedding_init.LSTMEmbeddingFromT5, name="lstm_embedding_from_t5", module=None)


@gin.configurable(denylist=["devices"])
def train(*, model_dir: str = gin.REQUIRED, mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          train_steps: int = gin.REQUIRED, batch_size: int = 128,
          model_config: registry.ModelConfig = gin.REQUIRED,
          optimizer_config: optimizers.OptimizerConfig = optimizers.OptimizerConfig(),
          mesh_config: partitioning.MeshConfig = partitioning.MeshConfig(),
          checkpoint_config: checkpoints.CheckpointConfig = checkpoints.CheckpointConfig(),
          seed: int = 0, data_seed: int = 0, shuffle: bool = True, pack: bool = False,
          log_period: int = 100, eval_period: int = 1000, eval_steps: Optional[int] = 20,
          eval_split: Optional[str] = "validation",
          initial_checkpoint_path: Optional[str] = None,
          initial_checkpoint_step: Union[str, int] = "latest",
          transfer_mode: str = "all", allow_vocab_mismatch: bool = False,
          required_text_vocabulary: Optional[str] = None,
          allow_truncation: bool = False, z_loss: float = 1e-4,
          loss_normalizing_factor: Optional[str] = None,
          init_transform: Optional[trainer.InitTransform] = None,
          input_shards: Optional[int] = None,
          mixture_or_task_module: Optional[str] = None,
          downstream_data_dir: Optional[str] = None,
          input_pipeline: str = "auto",
          hooks: Sequence[hooks_lib.Hook] = (),
          length_curriculum: Optional[curriculum.LengthCurriculum] = None,
          devices: Optional[list] = None) -> trainer.TrainResult:
  """Trains on a SeqIO task or mixture; see gin/pretrain.gin and gin/finetune.gin.

  `input_shards` (default: the process count) fixes how the examples are split among
  the hosts; pin it (to a multiple of every process count you will use) to make the
  global batches independent of the number of processes, e.g. to resume on another
  slice size. See `pipeline.get_batches`. `mixture_or_task_module`
  (MIXTURE_OR_TASK_MODULE, as T5X's) names a module (or 'a,b') imported after the
  project's `tasks`, before the task is resolved: tasks registered in a user's file.
  `downstream_data_dir` is read from config.gin files written before the data directory
  became `downstream_data_dir.path` (gin/finetune.gin), and forwarded to it.
  `input_pipeline` ('auto' | 'native' | 'seqio'; `--gin.train.input_pipeline="'native'"`):
  'native' reads a synthetic stream with numpy, without tensorflow or seqio, giving the
  SeqIO path's batches bit for bit; 'auto' uses it for every task that has one (unless
  PACK) and SeqIO otherwise (see `pipeline.select_input_pipeline`). The choice is logged.
  `hooks` (`train.hooks = [@my_logger()]`, a Gin configurable of the user's module):
  callables with an `every` attribute run after those steps (synthpre_jax/training/hooks.py).
  `length_curriculum` (`train.length_curriculum = @LengthCurriculum()`,
  gin/procedural/length_curriculum.gin): train on its stages first, each until the
  validation token accuracy reaches its threshold (synthpre_jax/training/curriculum.py).

  Which checkpoint is read: `initial_checkpoint_step` (INITIAL_CHECKPOINT_STEP) picks
  the step of a MODEL_DIR given as INITIAL_CHECKPOINT_PATH ('latest', 'best',
  'first_ge:0.99' = the paper's rule, or a step). Vocabulary: the task's vocabulary is
  recorded in every checkpoint and must match the checkpoint read
  (`allow_vocab_mismatch` = ALLOW_VOCAB_MISMATCH permits another one when the
  embedding is re-learned); `required_text_vocabulary` (REQUIRED_TEXT_VOCABULARY, 't5'
  in the paper recipes) refuses any other SentencePiece vocabulary. The run's
  definition (checkpoints read and their steps, vocabulary, seeds, code and Gin config
  hashes) is written to <MODEL_DIR>/run.json when it starts at step 0."""
  task_modules.import_task_modules(mixture_or_task_module)
  gin_utils.forward_legacy_data_dir(downstream_data_dir)

  log = logging.getLogger("synthpre_jax")
  path = pipeline.select_input_pipeline(mixture_or_task_name, input_pipeline, pack=pack)
  log.info("input pipeline: %s for %s (train.input_pipeline=%r)",
           "native (TF-free)" if path == "native" else "seqio (tf.data)",
           mixture_or_task_name, input_pipeline)
  for line in native.describe_missing():  # what a lean image lacks, and what for
    log.info("%s", line)
  model_dir = checkpoints.absolute_path(model_dir)  # relative paths: from the cwd, once
  initial_checkpoint_path = checkpoints.absolute_path(initial_checkpoint_path)
  pipeline.check_vocabulary(mixture_or_task_name, model_config.vocab_size)
  vocab = pipeline.task_vocabulary_identity(mixture_or_task_name)
  vocabulary.check_required(
      required_text_vocabulary, vocab,
      f"Select it with SYNTHPRE_VOCAB_PATH (T5's: {vocabulary.T5_VOCAB_PATH}).")
  resuming = bool(results.saved_steps(model_dir))
  initial = None
  if initial_checkpoint_path and not resuming:
    params_path, step, how = results.resolve_checkpoint(
        initial_checkpoint_path, initial_checkpoint_step)
    initial = {"path": str(initial_checkpoint_path), "rule": initial_checkpoint_step,
               "step": step, "params_path": str(params_path), "how": how}
    log.info("INITIAL_CHECKPOINT_PATH %s: step %s (%s)", initial_checkpoint_path, step, how)
    initial_checkpoint_path = str(params_path.parent)
  for warning in pipeline.check_feature_lengths(
      mixture_or_task_name, task_feature_lengths, allow_truncation=allow_truncation):
    log.warning(warning)
  # Downstream examples longer than the feature lengths are truncated in training
  # (counted here, once per run: the count tokenizes the whole split, so a resumed run
  # does not repeat it); evaluation scores the whole target.
  if not resuming:
    for warning in task_metadata.length_warnings(mixture_or_task_name, task_feature_lengths):
      log.warning(warning)
  train_config = trainer.TrainConfig(
      model_dir=model_dir, train_steps=train_steps, batch_size=batch_size,
      inputs_length=task_feature_lengths["inputs"],
      targets_length=task_feature_lengths["targets"], seed=seed, log_period=log_period,
      eval_period=eval_period, eval_steps=eval_steps, z_loss=z_loss,
      loss_normalizing_factor=loss_normalizing_factor,
      initial_checkpoint_path=initial_checkpoint_path, transfer_mode=transfer_mode,
      vocabulary=vocab, allow_vocab_mismatch=allow_vocab_mismatch)
  trainer.ensure_writable(model_dir)

  def record_run(start_step: int) -> None:
    """config.gin and run.json, written once the restore decision succeeded."""
    if jax.process_index() != 0:
      return
    gin_utils.write_config(model_dir)
    if not resuming and start_step == 0:  # not when it resumed a step sealed only now
      provenance.write_run_record(
          model_dir, task=mixture_or_task_name, seed=seed, data_seed=data_seed,
          vocab=vocab, initial_checkpoint=initial, transfer_mode=transfer_mode,
          allow_vocab_mismatch=allow_vocab_mismatch, init_transform=init_transform,
          gin_config_hash=provenance.config_hash(gin.config_str()))

  def stage_train_data(task: str, start_step: int):
    return pipeline.get_batches(
        task_name=task, feature_lengths=task_feature_lengths,
        split="train", global_batch_size=batch_size, seed=data_seed, shuffle=shuffle,
        start_step=start_step, pack=pack, input_shards=input_shards, input_pipeline=path)

  def stage_eval_data(task: str):
    return pipeline.get_batches(
        task_name=task, feature_lengths=task_feature_lengths,
        split=eval_split, global_batch_size=batch_size, seed=data_seed, shuffle=False,
        num_epochs=1, pack=False, pad_last_batch=True, input_shards=input_shards,
        input_pipeline=path)

  stages = None
  if length_curriculum is not None:
    stages = _curriculum_run(length_curriculum, mixture_or_task_name, model_dir,
                             eval_period, eval_split, vocab, input_pipeline, path, pack)
    hooks = [*hooks, stages.hook()]

  def train_data(start_step: int):
    if stages is None:
      return stage_train_data(mixture_or_task_name, start_step)
    return stages.train_batches(stage_train_data, start_step)

  def eval_data():
    if stages is None:
      return stage_eval_data(mixture_or_task_name)
    return stages.eval_batches(stage_eval_data)

  return trainer.train(model_config=model_config, train_config=train_config,
                       optimizer_config=optimizer_config, mesh_config=mesh_config,
                       checkpoint_config=checkpoint_config, train_data=train_data,
                       eval_data=eval_data if eval_split else None, devices=devices,
                       init_transform=init_transform, after_restore=record_run,
                       hooks=hooks)


def _curriculum_run(length_curriculum: curriculum.LengthCurriculum, task: str,
                    model_dir: str, eval_period: int, eval_split: Optional[str],
                    vocab: Any, input_pipeline: str, path: str,
                    pack: bool) -> curriculum.CurriculumRun:
  """The run's curriculum, its stages checked against the run's task: same vocabulary,
  same input path, a validation split to decide on."""
  if not eval_split:
    raise ValueError("train.length_curriculum advances on validation accuracy: it needs "
                     "an EVAL_SPLIT (train.eval_split), not None.")
  for stage in length_curriculum.stages:
    if pipeline.task_vocabulary_identity(stage) != vocab:
      raise ValueError(f"LengthCurriculum stage {stage!r} has another vocabulary than "
                       f"{task!r}: every stage must share the run's vocabulary.")
    if pipeline.select_input_pipeline(stage, input_pipeline, pack=pack) != path:
      raise ValueError(f"LengthCurriculum stage {stage!r} needs another input pipeline "
                       f"than {task!r} ({path}); choose stages of the same kind.")
  return curriculum.CurriculumRun(length_curriculum, task, model_dir, eval_period)


def main(argv: Optional[Sequence[str]] = None) -> int:
  startup.setup_logging()
  flags, rest = startup.parse_distributed_flags(sys.argv[1:] if argv is None else argv)
  args, bindings = gin_utils.parse_args(
      rest, prog="python -m synthpre_jax.train", configurable=train,
      parents=[startup.distributed_parser()],
      description="Train a T5 model (pre-training or fine-tuning). Multi-process flags: "
      "--coordinator_address=HOST:PORT --num_processes=N --process_id=I "
      "--initialization_timeout=SECONDS --distributed=auto (see launch/).")
  return run_from_gin(args.gin_file, bindings, search_paths=args.gin_search_paths,
                      distributed_flags=flags)


def run_from_gin(gin_files: Sequence[str], bindings: Sequence[str] = (), *,
                 search_paths: Optional[Sequence[str]] = None,
                 distributed_flags: Optional[argparse.Namespace] = None) -> int:
  """Runs `train` from Gin files and 'NAME = value' bindings, parsed in a clean Gin
  state, after the multi-process start-up of `distributed_flags` (default: no flags, as
  a command line without them). Returns the command line's exit code: 0; 1 for bad
  input, divergence, a failed checkpoint save or processes that disagree (logged);
  PREEMPTED_EXIT_CODE when SIGTERM stopped it after a checkpoint."""
  flags = distributed_flags or startup.distributed_parser().parse_args([])
  log = logging.getLogger("synthpre_jax")
  try:
    gin_utils.parse_gin(gin_files, bindings, search_paths)
    startup.start_processes(flags)
    train()
  except trainer.Preempted as e:
    log.warning("%s", e)
    return PREEMPTED_EXIT_CODE
  except (ValueError, FileNotFoundError, PermissionError, distributed.DistributedError,
          trainer.TrainingDivergedError, checkpoint_saver.CheckpointSaveError) as e:
    log.error("%s", e)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
