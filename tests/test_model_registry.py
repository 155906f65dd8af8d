"""The model registry: a model family defined in this file alone (a config class and a
tiny Flax module) trains through the real trainer, is bound by Gin under its class
name, names its own embedding for transfer modes; unregistered configs are refused."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import gin
import jax.numpy as jnp
import numpy as np
import pytest

from synthpre_jax import checkpoints, decoding, partitioning
from synthpre_jax.cli import gin_utils
from synthpre_jax.models import registry
from synthpre_jax.training import optimizers
from synthpre_jax.training import trainer

VOCAB = 32


class ToyBagModel(nn.Module):
  """Decoder logits from the decoder tokens' embeddings plus the mean input embedding."""
  config: "ToyBagConfig"

  @nn.compact
  def __call__(self, encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
               decoder_segment_ids=None, enable_dropout=False):
    del encoder_segment_ids, decoder_segment_ids, enable_dropout
    embed = nn.Embed(self.config.vocab_size, self.config.dim, name="bag_embedder")
    pooled = embed(encoder_input_tokens).mean(axis=1, keepdims=True)
    hidden = jnp.tanh(embed(decoder_input_tokens) + pooled)
    return nn.Dense(self.config.vocab_size, name="out")(hidden).astype(jnp.float32)


@registry.register
@dataclasses.dataclass(frozen=True)
class ToyBagConfig:
  vocab_size: int = VOCAB
  dim: int = 8

  embedding_names = ("bag_embedder/embedding",)

  def build(self) -> nn.Module:
    return ToyBagModel(self)

  def flops_per_step(self, batch: int, inputs_length: int, targets_length: int) -> float:
    return 3.0 * 2 * batch * targets_length * self.dim * self.vocab_size


def _batches(start: int):
  del start
  rng = np.random.default_rng(0)
  while True:
    targets = rng.integers(2, VOCAB, (8, 5)).astype(np.int32)
    decoder_inputs = np.zeros_like(targets)
    decoder_inputs[:, 1:] = targets[:, :-1]
    yield {"encoder_input_tokens": targets.copy(), "decoder_input_tokens": decoder_inputs,
           "decoder_target_tokens": targets,
           "decoder_loss_weights": np.ones(targets.shape, np.float32)}


def _train(model_config, model_dir: str, steps: int, **kwargs) -> trainer.TrainResult:
  cfg = trainer.TrainConfig(model_dir=model_dir, train_steps=steps, batch_size=8,
                            inputs_length=5, targets_length=5, log_period=steps,
                            eval_period=steps, **kwargs)
  return trainer.train(
      model_config=model_config, train_config=cfg,
      optimizer_config=optimizers.OptimizerConfig(schedule="constant", learning_rate=0.1),
      mesh_config=partitioning.MeshConfig(),
      checkpoint_config=checkpoints.CheckpointConfig(period=steps, keep=1, async_save=False),
      train_data=_batches)


def test_a_family_registered_in_its_own_file_trains_through_the_trainer(tmp_path):
  assert "ToyBagConfig" in registry.registered()
  assert registry.flops_per_step(ToyBagConfig(), 8, 5, 5) > 0
  result = _train(ToyBagConfig(), str(tmp_path / "toy"), steps=6)
  assert np.isfinite(result.train_metrics["loss"])
  assert int(result.state.step) == 6
  # all_but_embeddings keeps the family's own embedding names fresh, copies the rest.
  again = _train(ToyBagConfig(), str(tmp_path / "again"), steps=1,
                 initial_checkpoint_path=str(tmp_path / "toy"),
                 transfer_mode="all_but_embeddings")
  log = "\n".join(again.restore_log)
  assert "kept fresh (seed 0): bag_embedder/embedding" in log
  assert "loaded 2 tensors" in log  # out/kernel and out/bias


def test_gin_binds_a_registered_family_by_its_class_name():
  gin.clear_config()
  try:
    gin_utils.register_entry_points()
    gin.parse_config(["train.model_config = @ToyBagConfig()", "ToyBagConfig.dim = 4"])
    config = gin.query_parameter("train.model_config").scoped_configurable_fn()
  finally:
    gin.clear_config()
  assert config.dim == 4 and registry.family(config) is ToyBagConfig
  assert isinstance(registry.build_model(config), ToyBagModel)


def test_unregistered_configs_and_bad_families_get_clear_errors(tmp_path):
  @dataclasses.dataclass(frozen=True)
  class Unregistered:
    vocab_size: int = 4

  for call in (registry.build_model, registry.embedding_names):
    with pytest.raises(TypeError, match=r"registered model config \(T5Config, LSTMConfig"):
      call(Unregistered())
  with pytest.raises(TypeError, match="got Unregistered"):
    _train(Unregistered(), str(tmp_path / "unregistered"), steps=1)
  with pytest.raises(TypeError, match="frozen dataclass"):
    registry.register(type("NotADataclass", (), {}))
  with pytest.raises(TypeError, match="lacks build, flops_per_step, embedding_names"):
    registry.register(Unregistered)

  @dataclasses.dataclass(frozen=True)
  class ToyBagConfig:  # pylint: disable=redefined-outer-name  (another class, same name)
    embedding_names = ()

    def build(self):
      return ToyBagModel(self)

    def flops_per_step(self, batch, inputs_length, targets_length):
      return 0.0

  with pytest.raises(ValueError, match="already registered"):
    registry.register(ToyBagConfig)
  registered = globals()["ToyBagConfig"]
  assert registry.register(registered) is registered  # registering again is a no-op


def test_decoding_goes_by_protocol_not_by_family():
  # The toy family has neither cached decoding nor label prediction.
  with pytest.raises(ValueError, match="does not implement cached decoding"):
    decoding.check_supports_decoding(ToyBagConfig())
