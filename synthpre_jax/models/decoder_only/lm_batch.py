"""`loss_on='all'`: the loss on the inputs as well as the targets (language modelling of
the whole example), for the decoder-only family.

The decoder-only model reads `[x_1 .. x_n, pads | 0, y_1 .. y_m-1]` and predicts
`y_1 .. y_m`. `concatenated` rewrites a batch so that the decoder side holds the same
sequence without the pads, `[x_1 .. x_n, 0, y_1 .. y_m-1]`, and predicts `x_2 .. x_n`
too (x_1 has no token before it; the separator 0 after x_n is not a target). Every
token keeps its position, so the targets' logits are unchanged; the loss gains the
inputs' next-token terms. Packed batches (segment ids) are refused.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

LOSS_ON = ("targets", "all")
_DROPPED = ("encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
            "decoder_positions")


def _gather(values: jax.Array, index: jax.Array, valid: jax.Array) -> jax.Array:
  picked = jnp.take_along_axis(values, jnp.clip(index, 0, values.shape[1] - 1), axis=1)
  return jnp.where(valid, picked, jnp.zeros((), values.dtype))


def concatenated(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """The batch as one causal-LM sequence on the decoder side, with loss weights on
  the inputs' tokens 2..n and the targets' own weights (see the module docstring)."""
  if batch.get("encoder_segment_ids") is not None:
    raise ValueError("loss_on='all' does not support packed batches (segment ids): "
                     "train with PACK = False or loss_on='targets'.")
  x = batch["encoder_input_tokens"]
  y = batch["decoder_target_tokens"]
  y_in = batch["decoder_input_tokens"]
  y_w = batch.get("decoder_loss_weights")
  if y_w is None:
    y_w = (y > 0).astype(jnp.float32)
  rows, li = x.shape
  lt = y.shape[1]
  n = jnp.sum(x > 0, axis=1, keepdims=True)                   # real inputs per row
  k = jnp.broadcast_to(jnp.arange(li + lt)[None, :], (rows, li + lt))
  in_x = k < n                                                # decoder input is x_{k+1}
  in_y = jnp.logical_and(k >= n, k - n < lt)                  # decoder input is y_in[k-n]
  x_next = k + 1 < n                                          # target is x_{k+2}
  decoder_inputs = jnp.where(in_x, _gather(x, k, in_x), _gather(y_in, k - n, in_y))
  targets = jnp.where(x_next, _gather(x, k + 1, x_next), _gather(y, k - n, in_y))
  weights = jnp.where(x_next, jnp.ones((), y_w.dtype), _gather(y_w, k - n, in_y))
  out = {name: v for name, v in batch.items() if name not in _DROPPED}
  out.update(encoder_input_tokens=jnp.zeros((rows, 1), x.dtype),
             decoder_input_tokens=decoder_inputs.astype(y_in.dtype),
             decoder_target_tokens=targets.astype(y.dtype), decoder_loss_weights=weights)
  return out
