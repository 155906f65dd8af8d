"""Parts shared by the LSTM models: LSTM weights and scans, the bidirectional encoder,
the vocabulary projection, and right-padding helpers.

Logical axes: the LSTM input kernels are ('embed', 'mlp') with biases ('mlp',), the
vocabulary projection ('embed', 'vocab'); recurrent kernels are replicated. Parameters
are float32; `config.dtype` is the compute dtype and cell states stay float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthpre_jax.models import layers

if TYPE_CHECKING:  # the config module builds the models, so it imports this one
  from synthpre_jax.models.lstm.config import LSTMConfig

PAD_ID = 0

# Every kernel, the recurrent ones included: truncated normal with variance 1 / fan_in.
KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")

_EMBED_AXES = ("activation_batch", "activation_length", "activation_embed")


def param(module: nn.Module, name: str, init, shape: tuple, axes: tuple) -> jax.Array:
  """A float32 parameter of `module` with logical axes `axes`."""
  return module.param(name, nn.with_logical_partitioning(init, axes), shape, jnp.float32)


def _bias_init(key, shape, dtype=jnp.float32):
  """Gates in order (input, forget, cell, output); forget-gate bias 1."""
  del key
  h = shape[0] // 4
  return jnp.zeros(shape, dtype).at[h:2 * h].set(1.0)


class LSTMWeights(nn.Module):
  """One direction of one LSTM layer: `input_kernel` [in, 4H], `recurrent_kernel`
  [H, 4H], `bias` [4H], gates in the order (input, forget, cell, output)."""
  in_features: int
  hidden_dim: int
  dtype: Any = jnp.float32

  def setup(self):
    four = 4 * self.hidden_dim
    self.input_kernel = param(self, "input_kernel", KERNEL_INIT,
                              (self.in_features, four), ("embed", "mlp"))
    self.recurrent_kernel = param(self, "recurrent_kernel", KERNEL_INIT,
                                  (self.hidden_dim, four), (None, None))
    self.bias = param(self, "bias", _bias_init, (four,), ("mlp",))

  def project(self, x: jax.Array) -> jax.Array:
    """Input contribution to the gates, for any leading shape: [..., in] -> [..., 4H]."""
    y = jnp.dot(x.astype(self.dtype), self.input_kernel.astype(self.dtype))
    return y.astype(jnp.float32) + self.bias

  def recurrent(self) -> jax.Array:
    return self.recurrent_kernel


def lstm_cell(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
  """LSTM update from the summed pre-activations [.., 4H] and the cell state [.., H];
  returns (h, c)."""
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return jax.nn.sigmoid(o) * jnp.tanh(c), c


def run_lstm(gates_in: jax.Array, recurrent: jax.Array, dtype: Any) -> jax.Array:
  """Runs D independent LSTMs in one scan (D = 2 for the two directions of a layer).

  gates_in: [D, B, T, 4H] input contributions (bias included); recurrent: [D, H, 4H].
  Starts from zero states; returns the hidden states [D, B, T, H] (float32).
  """
  d, b, _, four = gates_in.shape
  h0 = jnp.zeros((d, b, four // 4), jnp.float32)
  w = recurrent.astype(dtype)

  def step(carry, g_t):
    h, c = carry
    gates = g_t + jnp.einsum("dbh,dhk->dbk", h.astype(dtype), w).astype(jnp.float32)
    h, c = lstm_cell(gates, c)
    return (h, c), h

  _, hs = jax.lax.scan(step, (h0, h0), jnp.moveaxis(gates_in, 2, 0))
  return jnp.moveaxis(hs, 0, 2)


def reverse_index(lengths: jax.Array, length: int) -> jax.Array:
  """[B, T] gather indices reversing each row's first `lengths` positions and leaving
  its padding in place (an involution: applying it twice is the identity)."""
  t = jnp.arange(length, dtype=jnp.int32)[None, :]
  lengths = lengths[:, None]
  return jnp.where(t < lengths, lengths - 1 - t, t)


def _take_time(x: jax.Array, index: jax.Array) -> jax.Array:
  """x [B, T, F] gathered along time by index [B, T]."""
  return jnp.take_along_axis(x, index[:, :, None], axis=1)


def token_lengths(tokens: jax.Array) -> jax.Array:
  """Real (non-padding) tokens per right-padded row."""
  return jnp.sum(tokens != PAD_ID, axis=-1).astype(jnp.int32)


def refuse_packing(*segment_ids) -> None:
  """Raises ValueError if any segment ids are given (a packed batch)."""
  if any(s is not None for s in segment_ids):
    raise ValueError(
        "The LSTM models take unpacked, right-padded batches; got segment ids (a packed "
        "batch). Turn packing off for LSTM runs (train.pack = False).")


def dropout(x, rate: float, deterministic: bool):
  """Dropout as a submodule of the calling (compact) module."""
  return nn.Dropout(rate)(x, deterministic=deterministic)


def embed(embedder: nn.Module, tokens: jax.Array) -> jax.Array:
  """Token embeddings [B, T, emb_dim], constrained to the activation axes."""
  return layers.constrain(embedder(tokens.astype(jnp.int32)), _EMBED_AXES)


class BiLSTMLayer(nn.Module):
  """One encoder layer: `forward` (and `backward` when bidirectional) LSTM weights; both
  directions run in one scan. x [B, S, in] -> [B, S, encoder_dim]."""
  config: LSTMConfig
  in_features: int

  def setup(self):
    cfg = self.config
    self.forward = LSTMWeights(self.in_features, cfg.hidden_dim, cfg.compute_dtype)
    if cfg.bidirectional:
      self.backward = LSTMWeights(self.in_features, cfg.hidden_dim, cfg.compute_dtype)

  def __call__(self, x: jax.Array, rev: Optional[jax.Array]) -> jax.Array:
    cfg = self.config
    gates, kernels = [self.forward.project(x)], [self.forward.recurrent()]
    if cfg.bidirectional:
      # Each row reversed within its length: the backward LSTM starts at its last real
      # token and never sees the row's padding before a real position.
      gates.append(_take_time(self.backward.project(x), rev))
      kernels.append(self.backward.recurrent())
    hs = run_lstm(jnp.stack(gates), jnp.stack(kernels), cfg.compute_dtype)
    outs = [hs[0]]
    if cfg.bidirectional:
      outs.append(_take_time(hs[1], rev))
    return jnp.concatenate(outs, axis=-1).astype(cfg.compute_dtype)


class BiLSTMEncoder(nn.Module):
  """`num_layers` LSTM layers (`layers_i/forward|backward`) over the embedded tokens,
  each bidirectional (outputs of both directions concatenated) when
  `config.bidirectional`; dropout on the embeddings and on every layer's output.
  Returns [B, S, encoder_dim]."""
  config: LSTMConfig

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array, deterministic: bool) -> jax.Array:
    cfg = self.config
    x = dropout(x, cfg.dropout_rate, deterministic)
    rev = reverse_index(lengths, x.shape[1]) if cfg.bidirectional else None
    for i in range(cfg.num_layers):
      x = BiLSTMLayer(cfg, x.shape[-1], name=f"layers_{i}")(x, rev)
      x = dropout(x, cfg.dropout_rate, deterministic)
    return layers.constrain(x, _EMBED_AXES)


class VocabProjection(nn.Module):
  """Dense layer with bias to vocabulary logits (float32), T5's logits axes."""
  vocab_size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = param(self, "kernel", KERNEL_INIT, (x.shape[-1], self.vocab_size),
                   ("embed", "vocab"))
    bias = param(self, "bias", nn.initializers.zeros, (self.vocab_size,), ("vocab",))
    logits = jnp.dot(x.astype(jnp.float32), kernel) + bias
    return layers.constrain(logits, ("activation_batch", "activation_length",
                                     "activation_vocab"))
