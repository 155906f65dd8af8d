"""Shared helpers for the training tests: a tiny run on the tiny Set task, in process."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from flax import traverse_util

from synthpre_jax import checkpoints, optimizers, partitioning, trainer
from synthpre_jax.data import pipeline
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
        init_transform: Optional[trainer.InitTransform] = None) -> trainer.TrainResult:
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
                       init_transform=init_transform)


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

