"""A train step on a data=2 x fsdp=2 x model=2 mesh of 8 fake CPU devices equals one device."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from synthpre_jax import partitioning
from synthpre_jax.training import optimizers
from synthpre_jax.training import steps
from synthpre_jax.training import train_state
from synthpre_jax.models import T5Config, Transformer

CFG = T5Config(vocab_size=128, emb_dim=32, num_heads=4, head_dim=8, num_encoder_layers=2,
               num_decoder_layers=2, mlp_dim=64, dropout_rate=0.1)


def _batch(seed=0, b=8, li=12, lt=10):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, 128, (b, li)).astype(np.int32)
  tgt = rng.integers(2, 128, (b, lt)).astype(np.int32)
  enc[1, 7:] = 0  # some padding
  tgt[2, 6:] = 0
  dec = np.concatenate([np.zeros((b, 1), np.int32), tgt[:, :-1]], axis=1)
  return dict(encoder_input_tokens=enc, decoder_input_tokens=dec, decoder_target_tokens=tgt,
              decoder_loss_weights=(tgt > 0).astype(np.int32))


def _run(mesh_config, devices, n_steps=2):
  mesh = partitioning.make_mesh(mesh_config, devices)
  model = Transformer(CFG)
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig(schedule="constant",
                                                            learning_rate=1e-2))
  shapes, shardings = train_state.abstract_state(model, tx, mesh)
  state = train_state.create_state(model, tx, mesh, 0, shardings)
  step = steps.make_train_step(model, tx, mesh, shardings)
  losses = []
  for i in range(n_steps):
    batch = {k: jax.device_put(v, partitioning.batch_sharding(mesh))
             for k, v in _batch(i).items()}
    state, sums = step(state, batch, jax.random.key(1))
    losses.append(float(sums["loss_sum"]))
  return state, losses, shardings


def test_8_device_mesh_matches_single_device():
  assert jax.device_count() == 8, "conftest must give 8 fake CPU devices"
  one_state, one_losses, _ = _run(partitioning.MeshConfig(data=1, fsdp=1, model=1),
                                  jax.devices()[:1])
  many_state, many_losses, shardings = _run(partitioning.MeshConfig(data=2, fsdp=2, model=2),
                                            jax.devices())
  # The parameters really are split: MLP kernels over fsdp x model, embedding over model.
  flat = {"/".join(str(getattr(k, "key", k)) for k in path): s for path, s in
          jax.tree_util.tree_flatten_with_path(shardings.params)[0]}
  assert flat["encoder/layers_0/mlp/wi/kernel"].spec == P("fsdp", "model")
  assert flat["token_embedder/embedding"].spec == P("model", "fsdp")
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(one_state.params), jax.tree.leaves(many_state.params)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)


def test_mesh_config_errors_say_what_to_fix():
  with pytest.raises(ValueError, match="needs 12 devices but 8"):
    partitioning.MeshConfig(data=3, fsdp=2, model=2).shape(8)
  with pytest.raises(ValueError, match="not divisible"):
    partitioning.MeshConfig(data=-1, fsdp=3, model=1).shape(8)
  with pytest.raises(ValueError, match="at most one axis"):
    partitioning.MeshConfig(data=-1, fsdp=-1)
