"""Shared helpers for the training tests: a tiny run on the tiny Set task, in process."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from flax import traverse_util

from synthpre_jax import checkpoints, partitioning
from synthpre_jax.training import optimizers
from synthpre_jax.training import trainer
from synthpre_jax.data import pipeline, task_modules
from synthpre_jax.models import T5Config

TINY = T5Config(vocab_size=512, emb_dim=64, num_heads=4, head_dim=16, num_encoder_layers=2,
                num_decoder_layers=2, mlp_dim=256, dropout_rate=0.0)
LENGTHS = {"inputs": 68, "targets": 68}


def data_fns(task: str, batch_size: int, lengths=LENGTHS):
  def train_data(start):
    return pipeline.get_batches(task_name=task, feature_lengths=lengths, split="train",
                                global_batch_size=batch_size, seed=0, shuffle=True,
                                start_step=start)

  def eval_data():
    return pipeline.get_batches(task_name=task, feature_lengths=lengths, split="validation",
                                global_batch_size=batch_size, seed=0, shuffle=False)
  return train_data, eval_data


def run(model_dir: str, *, steps: int, task: str = "set_tiny", batch_size: int = 16,
        model: T5Config = TINY, lr: Any = 3e-3, ckpt_period: int = 4, eval_period: int = 4,
        eval_steps: int = 2, log_period: int = 4, initial: Optional[str] = None,
        transfer_mode: str = "all", seed: int = 0,
        init_transform: Optional[trainer.InitTransform] = None,
        hooks=()) -> trainer.TrainResult:
  schedule = lr if callable(lr) else "constant"
  opt = optimizers.OptimizerConfig(schedule=schedule,
                                   learning_rate=lr if not callable(lr) else 1.0)
  cfg = trainer.TrainConfig(model_dir=model_dir, train_steps=steps, batch_size=batch_size,
                            inputs_length=LENGTHS["inputs"], targets_length=LENGTHS["targets"],
                            seed=seed, log_period=log_period, eval_period=eval_period,
                            eval_steps=eval_steps, initial_checkpoint_path=initial,
                            transfer_mode=transfer_mode)
  train_data, eval_data = data_fns(task, batch_size)
  return trainer.train(model_config=model, train_config=cfg, optimizer_config=opt,
                       mesh_config=partitioning.MeshConfig(),
                       checkpoint_config=checkpoints.CheckpointConfig(period=ckpt_period,
                                                                      keep=2),
                       train_data=train_data, eval_data=eval_data,
                       init_transform=init_transform, hooks=hooks)


def flat_numpy(params) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def load_step_params(model_dir: str, step: Optional[int] = None) -> dict[str, np.ndarray]:
  """Reads a saved checkpoint's params as numpy (no model needed)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  root = checkpoints.checkpoint_dir(model_dir)
  if step is None:
    step = max(int(p.name) for p in root.iterdir() if p.name.isdigit())
  restored = ocp.StandardCheckpointer().restore(root / str(step) / "params")
  return flat_numpy(restored)


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)



# ----------------------------------------------- multi-process runs (tests/test_multihost.py)

# Smaller than TINY: the multi-process tests compile it in two processes at once.
MICRO = T5Config(vocab_size=512, emb_dim=32, num_heads=2, head_dim=16, num_encoder_layers=1,
                 num_decoder_layers=1, mlp_dim=64, dropout_rate=0.0)


def recorded_run(model_dir: str, *, steps: int = 3, batch_size: int = 16,
                 input_shards: int = 2, mesh: tuple = (-1, 1, 1), record: Optional[list] = None,
                 eval_steps: Optional[int] = 1, seed: int = 0, ckpt_period: int = 100,
                 sigterm_at: Optional[int] = None) -> trainer.TrainResult:
  """A MICRO run on set_tiny logging every step; `record` collects the encoder inputs
  of every training batch this process fed; `sigterm_at` sends this process SIGTERM
  when that batch (0-based) is drawn."""
  import os  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top

  def train_data(start):
    batches = pipeline.get_batches(
        task_name="set_tiny", feature_lengths=LENGTHS, split="train",
        global_batch_size=batch_size, seed=0, shuffle=True, start_step=start,
        input_shards=input_shards)
    for i, batch in enumerate(batches, start):
      if record is not None:
        record.append(batch["encoder_input_tokens"].copy())
      if sigterm_at is not None and i == sigterm_at:
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch

  def eval_data():
    return pipeline.get_batches(
        task_name="set_tiny", feature_lengths=LENGTHS, split="validation",
        global_batch_size=batch_size, seed=0, shuffle=False, num_epochs=1,
        pad_last_batch=True, input_shards=input_shards)

  cfg = trainer.TrainConfig(model_dir=model_dir, train_steps=steps, batch_size=batch_size,
                            inputs_length=LENGTHS["inputs"], targets_length=LENGTHS["targets"],
                            seed=seed, log_period=1, eval_period=steps, eval_steps=eval_steps)
  opt = optimizers.OptimizerConfig(schedule="constant", learning_rate=1e-2)
  data, fsdp, model = mesh
  return trainer.train(
      model_config=MICRO, train_config=cfg, optimizer_config=opt,
      mesh_config=partitioning.MeshConfig(data=data, fsdp=fsdp, model=model),
      checkpoint_config=checkpoints.CheckpointConfig(period=ckpt_period, keep=2,
                                                     async_save=True),
      train_data=train_data, eval_data=eval_data if eval_steps != 0 else None)


def _worker(spec: dict) -> int:
  """One process of a multi-process test run; see tests/test_multihost.py."""
  import json  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top

  from synthpre_jax import distributed  # pylint: disable=g-import-not-at-top

  cfg = distributed.DistributedConfig(
      coordinator_address=spec["coordinator"], num_processes=spec["num_processes"],
      process_id=spec["process_id"], initialization_timeout=spec.get("timeout", 60))
  distributed.initialize(distributed.resolve(cfg, environ={}))
  out = spec["out"]
  if "fingerprint" in spec:
    distributed.check_same_everywhere({"Gin config": spec["fingerprint"],
                                       "code": distributed.code_fingerprint()})
  record: list = []
  try:
    result = recorded_run(spec["model_dir"], record=record, **spec.get("run", {}))
  except trainer.Preempted as e:
    np.savez(f"{out}.p{jax.process_index()}.npz", batches=np.stack(record))
    with open(f"{out}.p{jax.process_index()}.json", "w") as f:
      json.dump({"preempted_at": e.step}, f)
    return 3
  # The final parameters are read back from the last checkpoint by the test.
  np.savez(f"{out}.p{jax.process_index()}.npz", batches=np.stack(record))
  if jax.process_index() == 0:
    with open(f"{out}.p0.json", "w") as f:
      json.dump({"train": result.train_metrics, "eval": result.eval_metrics}, f)
  return 0


if __name__ == "__main__":
  import json as _json  # pylint: disable=g-import-not-at-top
  import os as _os  # pylint: disable=g-import-not-at-top
  import sys as _sys  # pylint: disable=g-import-not-at-top
  import logging as _logging  # pylint: disable=g-import-not-at-top
  import faulthandler as _faulthandler  # pylint: disable=g-import-not-at-top
  _logging.basicConfig(level=_logging.INFO, force=True,
                       format="%(asctime)s %(levelname)s %(message)s")
  _faulthandler.dump_traceback_later(float(_os.environ.get("SYNTHPRE_TEST_DUMP_AFTER", "600")),
                                     exit=True)
  task_modules.import_task_modules()  # a worker process registers the project's tasks too
  _sys.exit(_worker(_json.loads(_sys.argv[1])))
