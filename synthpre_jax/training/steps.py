"""The jit-compiled, sharded train and eval steps (no host synchronisation inside)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from synthpre_jax import partitioning
from synthpre_jax.training import losses
from synthpre_jax.training.train_state import TrainState

Batch = Mapping[str, jax.Array]
LOSS_NORMALIZATIONS = (None, "num_tokens")


def _logits(model: nn.Module, params: Any, batch: Batch, *, enable_dropout: bool,
            rng: Optional[jax.Array]) -> jax.Array:
  rngs = {"dropout": rng} if rng is not None else None
  return model.apply(
      {"params": params}, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
      batch.get("encoder_segment_ids"), batch.get("decoder_segment_ids"),
      enable_dropout=enable_dropout, rngs=rngs)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh,
                    state_shardings: TrainState, *, z_loss: float = 1e-4,
                    loss_normalizing_factor: Optional[str] = None,
                    learning_rate_fn: Optional[Callable] = None,
                    batch_fn: Optional[Callable[[Batch], Batch]] = None) -> Callable:
  """Returns jitted `step(state, batch, dropout_key) -> (state, metric sums)`.

  The loss is the sum over target tokens (T5X's default, `loss_normalizing_factor=None`)
  or the per-token mean (`'num_tokens'`). Dropout keys are `fold_in(key, step)`, so a
  resumed run draws the same masks. The state is donated. `batch_fn` (the model
  config's `training_batch`, if it has one) rewrites the batch inside the step.
  """
  if loss_normalizing_factor not in LOSS_NORMALIZATIONS:
    raise ValueError(f"loss_normalizing_factor={loss_normalizing_factor!r}; choose one "
                     f"of {LOSS_NORMALIZATIONS}.")

  def step(state: TrainState, batch: Batch, dropout_key: jax.Array):
    rng = jax.random.fold_in(dropout_key, state.step)
    if batch_fn is not None:
      batch = batch_fn(batch)

    def loss_fn(params):
      logits = _logits(model, params, batch, enable_dropout=True, rng=rng)
      sums = losses.batch_metrics(logits, batch["decoder_target_tokens"],
                                  batch.get("decoder_loss_weights"), z_loss)
      loss = sums["loss_sum"]
      if loss_normalizing_factor == "num_tokens":
        loss = loss / jnp.maximum(sums["num_tokens"], 1.0)
      return loss, sums

    grads, sums = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # 1 when an update left a NaN/inf in the parameters (checked before any save).
    sums = dict(sums, nonfinite=1.0 - jnp.isfinite(optax.global_norm(params)).astype(jnp.float32))
    if learning_rate_fn is not None:
      sums = dict(sums, learning_rate=learning_rate_fn(state.step))
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), sums

  rep = partitioning.replicated(mesh)
  jitted = jax.jit(step,
                   in_shardings=(state_shardings, partitioning.batch_sharding(mesh), rep),
                   out_shardings=(state_shardings, rep), donate_argnums=(0,))

  def call(state, batch, dropout_key):
    with partitioning.activate(mesh):
      return jitted(state, batch, dropout_key)

  return call


def make_eval_step(model: nn.Module, mesh: Mesh, param_shardings: Any, *,
                   z_loss: float = 1e-4,
                   batch_fn: Optional[Callable[[Batch], Batch]] = None) -> Callable:
  """Returns jitted `eval_step(params, batch) -> metric sums` (teacher-forced);
  `batch_fn` as in `make_train_step`."""

  def step(params, batch):
    if batch_fn is not None:
      batch = batch_fn(batch)
    logits = _logits(model, params, batch, enable_dropout=False, rng=None)
    return losses.batch_metrics(logits, batch["decoder_target_tokens"],
                                batch.get("decoder_loss_weights"), z_loss)

  rep = partitioning.replicated(mesh)
  jitted = jax.jit(step, in_shardings=(param_shardings, partitioning.batch_sharding(mesh)),
                   out_shardings=rep)

  def call(params, batch):
    with partitioning.activate(mesh):
      return jitted(params, batch)

  return call
