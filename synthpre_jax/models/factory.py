"""One place that turns a model configuration into its Flax module (and its FLOPs).

The trainer, evaluation and decoding build models through `build_model`, so a run's
`train.model_config` may be a `T5Config` (the T5 `Transformer`) or an `LSTMConfig`
(`LSTMSeq2Seq` or `LSTMClassifier`, by `kind`); every module has the same call
signature and returns decoder logits [batch, target_length, vocab].
"""

from __future__ import annotations

from typing import Union

import flax.linen as nn

from synthpre_jax.training import flops as flops_lib
from synthpre_jax.models import lstm
from synthpre_jax.models.config import T5Config
from synthpre_jax.models.network import Transformer

ModelConfig = Union[T5Config, lstm.LSTMConfig]


def build_model(config: ModelConfig) -> nn.Module:
  """The Flax module of `config`, or a TypeError naming what is accepted."""
  if isinstance(config, T5Config):
    return Transformer(config)
  if isinstance(config, lstm.LSTMConfig):
    if config.kind == "seq2seq":
      return lstm.LSTMSeq2Seq(config)
    return lstm.LSTMClassifier(config)
  raise TypeError(f"model_config must be a T5Config or an LSTMConfig, got "
                  f"{type(config).__name__}.")


def flops_per_step(config: ModelConfig, batch: int, inputs_length: int,
                   targets_length: int) -> float:
  """Training FLOPs (forward + backward) of one step, for either family."""
  if isinstance(config, lstm.LSTMConfig):
    return lstm.flops_per_step(config, batch, inputs_length, targets_length)
  return flops_lib.flops_per_step(config, batch, inputs_length, targets_length)
