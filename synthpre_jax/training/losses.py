"""Cross-entropy with z-loss (T5X semantics) and the per-token metrics of a batch."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def cross_entropy_with_z_loss(logits: jax.Array, targets: jax.Array,
                              z_loss: float) -> tuple[jax.Array, jax.Array]:
  """Per-token loss and z-loss: `logsumexp - logit[target] + z * logsumexp**2`.

  Computed in float32 whatever the logits' dtype. Returns (total, z_loss part).
  """
  logits = logits.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  z = z_loss * jnp.square(log_z)
  return log_z - target_logit + z, z


def batch_metrics(logits: jax.Array, targets: jax.Array, weights: Optional[jax.Array],
                  z_loss: float) -> dict[str, jax.Array]:
  """Sums over the batch (so they can be added across steps and divided later).

  `weights` defaults to `targets > 0`. Keys: loss_sum (with z-loss), z_loss_sum,
  correct (argmax == target, weighted), num_tokens, seq_correct (rows whose every
  weighted token is right), num_seqs (rows with at least one weighted token).
  """
  if weights is None:
    weights = (targets > 0)
  weights = weights.astype(jnp.float32)
  token_loss, token_z = cross_entropy_with_z_loss(logits, targets, z_loss)
  hits = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32) * weights
  has_tokens = jnp.sum(weights, axis=-1) > 0
  row_ok = jnp.all(jnp.logical_or(hits > 0, weights == 0), axis=-1)
  return {
      "loss_sum": jnp.sum(token_loss * weights),
      "z_loss_sum": jnp.sum(token_z * weights),
      "correct": jnp.sum(hits),
      "num_tokens": jnp.sum(weights),
      "seq_correct": jnp.sum(jnp.logical_and(row_ok, has_tokens).astype(jnp.float32)),
      "num_seqs": jnp.sum(has_tokens.astype(jnp.float32)),
  }


def summarize(sums: dict[str, float]) -> dict[str, float]:
  """Turns summed batch metrics into per-token loss and accuracies."""
  tokens = max(float(sums["num_tokens"]), 1.0)
  seqs = max(float(sums["num_seqs"]), 1.0)
  return {
      "loss": float(sums["loss_sum"]) / tokens,
      "z_loss": float(sums["z_loss_sum"]) / tokens,
      "token_accuracy": float(sums["correct"]) / tokens,
      "sequence_accuracy": float(sums["seq_correct"]) / seqs,
      "num_tokens": float(sums["num_tokens"]),
  }
