"""The LSTM encoder-decoder baseline (Wang et al. 2020): bidirectional LSTM encoder,
LSTM decoder with Luong "general" global attention (Luong et al. 2015, without input
feeding), and its cached decoding for `synthpre_jax.decoding` (greedy and beam search).

Parameter names: `token_embedder/embedding` (T5's name and shape),
`encoder/layers_i/{forward,backward}/...`, `decoder/layers_i/...`,
`decoder/attention/{query_kernel,out_kernel}`, `decoder/logits_dense/{kernel,bias}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthpre_jax.models import layers
from synthpre_jax.models.lstm import cells

if TYPE_CHECKING:  # the config module builds the models, so it imports this one
  from synthpre_jax.models.lstm.config import LSTMConfig

# A large finite negative for masked attention scores (no inf - inf = nan).
_NEG = -1.0e9


class LuongAttention(nn.Module):
  """Luong "general" global attention: scores h_t^T W_a e_s over the real encoder
  positions, context c_t, attentional state tanh(W_c [c_t; h_t]) of width `features`."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, encoded: jax.Array, enc_lengths: jax.Array) -> jax.Array:
    """h [B, T, H], encoded [B, S, D], enc_lengths [B] -> [B, T, features]."""
    dtype = self.dtype
    w_a = cells.param(self, "query_kernel", cells.KERNEL_INIT,
                      (h.shape[-1], encoded.shape[-1]), (None, None))
    w_c = cells.param(self, "out_kernel", cells.KERNEL_INIT,
                      (encoded.shape[-1] + h.shape[-1], self.features), (None, None))
    q = jnp.dot(h.astype(dtype), w_a.astype(dtype))
    scores = jnp.einsum("btd,bsd->bts", q, encoded.astype(dtype)).astype(jnp.float32)
    real = jnp.arange(encoded.shape[1])[None, None, :] < enc_lengths[:, None, None]
    weights = jax.nn.softmax(jnp.where(real, scores, _NEG), axis=-1)
    context = jnp.einsum("bts,bsd->btd", weights.astype(dtype), encoded.astype(dtype))
    joined = jnp.concatenate([context, h.astype(dtype)], axis=-1)
    return jnp.tanh(jnp.dot(joined, w_c.astype(dtype)))


class LSTMDecoder(nn.Module):
  """Teacher-forced LSTM decoder with Luong attention, and its cached decode modes
  (`decode='init'`: create the `cache` (per-layer `h_i`, `c_i` [B, H]) and
  `cross_cache` (`encoded`, `encoder_lengths`) collections; `decode='step'`: one token
  [B, 1] -> logits [B, 1, V], advancing the cache). Initial states are zeros."""
  config: LSTMConfig
  shared_embedding: nn.Module

  def _layer(self, i: int, in_features: int) -> cells.LSTMWeights:
    cfg = self.config
    return cells.LSTMWeights(in_features, cfg.hidden_dim, cfg.compute_dtype,
                             name=f"layers_{i}")

  def _in_features(self, i: int) -> int:
    return self.config.emb_dim if i == 0 else self.config.hidden_dim

  def _head(self, h, encoded, enc_lengths, deterministic: bool):
    cfg = self.config
    y = LuongAttention(cfg.hidden_dim, cfg.compute_dtype, name="attention")(
        h, encoded, enc_lengths)
    y = cells.dropout(y, cfg.dropout_rate, deterministic)
    return cells.VocabProjection(cfg.vocab_size, name="logits_dense")(y)

  @nn.compact
  def __call__(self, encoded, enc_lengths, decoder_input_tokens,
               enable_dropout: bool = False, *, decode: Optional[str] = None,
               max_decode_length: Optional[int] = None):
    cfg = self.config
    if decode == "init":
      return self._init_cache(encoded, enc_lengths, max_decode_length)
    if decode == "step":
      return self._step(decoder_input_tokens)
    if decode is not None:
      raise ValueError(f"decode={decode!r}; choose None, 'init' or 'step'.")
    det = not enable_dropout
    y = cells.dropout(cells.embed(self.shared_embedding, decoder_input_tokens),
                      cfg.dropout_rate, det)
    for i in range(cfg.num_layers):
      layer = self._layer(i, self._in_features(i))
      hs = cells.run_lstm(layer.project(y)[None], layer.recurrent()[None],
                          cfg.compute_dtype)[0]
      y = cells.dropout(hs.astype(cfg.compute_dtype), cfg.dropout_rate, det)
    return self._head(y, encoded, enc_lengths, det)

  def _init_cache(self, encoded, enc_lengths, max_decode_length):
    cfg = self.config
    if max_decode_length is not None and (not isinstance(max_decode_length, int)
                                          or max_decode_length <= 0):
      raise ValueError(
          f"max_decode_length must be a positive int, got {max_decode_length!r}.")
    batch = encoded.shape[0]
    if enc_lengths.shape != (batch,):
      raise ValueError(f"encoded batch {batch} does not match encoder_tokens' "
                       f"{enc_lengths.shape}.")
    self.variable("cross_cache", "encoded", lambda: encoded)
    self.variable("cross_cache", "encoder_lengths", lambda: enc_lengths)
    zeros = jnp.zeros((batch, cfg.hidden_dim), jnp.float32)
    for i in range(cfg.num_layers):
      self.variable("cache", f"h_{i}", lambda: zeros)
      self.variable("cache", f"c_{i}", lambda: zeros)
    return None

  def _step(self, tokens):
    cfg = self.config
    if not self.has_variable("cache", "h_0"):
      raise ValueError("No decoder cache: run init_decoder_cache (apply with "
                       "mutable=['cache', 'cross_cache']) before decode_step.")
    if tokens.ndim != 2 or tokens.shape[1] != 1:
      raise ValueError(f"decode_step takes tokens of shape [batch, 1], got {tokens.shape}.")
    x = cells.embed(self.shared_embedding, tokens)[:, 0]
    for i in range(cfg.num_layers):
      layer = self._layer(i, self._in_features(i))
      h_var, c_var = self.variable("cache", f"h_{i}"), self.variable("cache", f"c_{i}")
      rec = jnp.dot(h_var.value.astype(cfg.compute_dtype),
                    layer.recurrent().astype(cfg.compute_dtype)).astype(jnp.float32)
      h, c = cells.lstm_cell(layer.project(x) + rec, c_var.value)
      h_var.value, c_var.value = h, c
      x = h.astype(cfg.compute_dtype)
    encoded = self.get_variable("cross_cache", "encoded")
    enc_lengths = self.get_variable("cross_cache", "encoder_lengths")
    return self._head(x[:, None], encoded, enc_lengths, True)


class LSTMSeq2Seq(nn.Module):
  """Bidirectional LSTM encoder + LSTM decoder with Luong attention.

  `__call__(encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
  decoder_segment_ids=None, enable_dropout=False)` -> logits [B, T_dec, vocab],
  teacher-forced. Cached decoding (`synthpre_jax.decoding.Decodable`): `encode`,
  `init_decoder_cache`, `decode_step`. Packed batches (segment ids) raise ValueError.
  """
  config: LSTMConfig

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.compute_dtype)
    self.encoder = cells.BiLSTMEncoder(cfg)
    self.decoder = LSTMDecoder(cfg, self.token_embedder)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout: bool = False):
    """Encoder outputs [B, S, encoder_dim] (garbage at padding, masked downstream)."""
    cells.refuse_packing(encoder_segment_ids)
    x = cells.embed(self.token_embedder, encoder_input_tokens)
    return self.encoder(x, cells.token_lengths(encoder_input_tokens), not enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None,
             enable_dropout: bool = False):
    """Teacher-forced logits [B, T_dec, V] from the encoder outputs."""
    cells.refuse_packing(encoder_segment_ids, decoder_segment_ids)
    return self.decoder(encoded, cells.token_lengths(encoder_input_tokens),
                        decoder_input_tokens, enable_dropout)

  def init_decoder_cache(self, encoded, encoder_input_tokens, max_decode_length: int):
    """Creates `cache` (zero LSTM states) and `cross_cache` (encoder outputs, lengths);
    apply with mutable=['cache', 'cross_cache']."""
    return self.decoder(encoded, cells.token_lengths(encoder_input_tokens), None,
                        decode="init", max_decode_length=max_decode_length)

  def decode_step(self, decoder_input_tokens):
    """Logits [B, 1, V] of the next position for tokens [B, 1]; advances the cache."""
    return self.decoder(None, None, decoder_input_tokens, decode="step")

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, enable_dropout)
