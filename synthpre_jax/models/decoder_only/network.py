"""A T5X-style decoder-only Transformer (causal or prefix LM) over an encoder-decoder batch.

The module reads the same batch as the T5 encoder-decoder and returns logits for the
decoder positions only, `[batch, targets_length, vocab]`, so losses and metrics apply
unchanged. It runs one sequence `[inputs | decoder inputs]` (the decoder inputs start
with token 0, which separates the two parts). Right-padded inputs stay in place: their
pad positions are masked out of attention and every token's position is the count of
real tokens before it, so the logits equal those of the packed concatenation. Packed
batches (segment ids) attend within one example.

Parameter names: `token_embedder/embedding`, `decoder/relpos_bias/rel_embedding`,
`decoder/layers_i/{pre_self_attention_layer_norm,self_attention/{query,key,value,out},
pre_mlp_layer_norm,mlp/...}`, `decoder/decoder_norm/scale`, and
`decoder/logits_dense/kernel` when the logits are untied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from synthpre_jax.models import layers

if TYPE_CHECKING:  # the config module builds this network, so it imports this one
  from synthpre_jax.models.decoder_only.config import DecoderOnlyConfig

_EMBED_AXES = ("activation_batch", "activation_length", "activation_embed")
# Added to the attention logits of masked keys in a cached decode step.
_MASKED = -1e10


def layout(encoder_tokens: jax.Array, decoder_length: int,
           encoder_segment_ids: Optional[jax.Array] = None,
           decoder_segment_ids: Optional[jax.Array] = None, *,
           prefix_lm: bool) -> tuple[jax.Array, jax.Array]:
  """Positions [B, L] and attention mask [B, 1, L, L] of `[inputs | decoder inputs]`.

  L = inputs length + `decoder_length`. Without segment ids, input tokens > 0 and every
  decoder position are real; with them, tokens of one segment form one example. A
  token's position is the number of real tokens of its example before it. A query sees
  real keys of its example at or before it, and with `prefix_lm` also every key of its
  example's inputs when the query is an input.
  """
  batch, li = encoder_tokens.shape
  if encoder_segment_ids is None:
    seg = jnp.concatenate([(encoder_tokens > 0).astype(jnp.int32),
                           jnp.ones((batch, decoder_length), jnp.int32)], axis=1)
  else:
    seg = jnp.concatenate([encoder_segment_ids.astype(jnp.int32),
                           decoder_segment_ids.astype(jnp.int32)], axis=1)
  real = seg > 0
  same = jnp.logical_and(seg[:, :, None] == seg[:, None, :],
                         jnp.logical_and(real[:, :, None], real[:, None, :]))
  idx = np.arange(li + decoder_length)
  positions = jnp.sum(jnp.logical_and(same, idx[None, :] < idx[:, None]), axis=-1)
  allowed = idx[None, :] <= idx[:, None]
  if prefix_lm:
    in_prefix = idx < li
    allowed = np.logical_or(allowed, in_prefix[:, None] & in_prefix[None, :])
  mask = jnp.logical_and(same, allowed)
  return positions.astype(jnp.int32), mask[:, None]


class RelativePositionBias(nn.Module):
  """T5's causal relative-position bias for per-row positions: `relative` [B, T, S]
  (key minus query position) -> [B, heads, T, S]. `span` bounds |relative|."""
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, relative: jax.Array, span: int) -> jax.Array:
    lookup = jnp.asarray(layers.relative_position_bucket(
        np.arange(-span, span + 1, dtype=np.int32), bidirectional=False,
        num_buckets=self.num_buckets, max_distance=self.max_distance))
    buckets = lookup[jnp.clip(relative + span, 0, 2 * span)]
    table = self.param("rel_embedding",
                       nn.with_logical_partitioning(layers.RELPOS_INIT,
                                                    ("heads", "relpos_buckets")),
                       (self.num_heads, self.num_buckets), jnp.float32)
    values = jnp.take(table, buckets, axis=1)  # [N, B, T, S]
    return jnp.moveaxis(values, 0, 1).astype(self.dtype)


class PrefixCachedAttention(layers.MultiHeadDotProductAttention):
  """T5 attention whose causal `decode='init'` cache starts with the keys and values of
  `inputs_kv` (the prefix) instead of zeros; the rest of the cache is zeros."""

  def _init_cache(self, inputs_q, inputs_kv, is_causal, cache_length, key_fn, value_fn):
    del inputs_q, is_causal
    if not isinstance(cache_length, int) or cache_length < inputs_kv.shape[1]:
      raise ValueError(f"cache_length {cache_length!r} must be an int >= the prefix "
                       f"length {inputs_kv.shape[1]}.")
    pad = ((0, 0), (0, cache_length - inputs_kv.shape[1]), (0, 0), (0, 0))
    key, value = key_fn(inputs_kv), value_fn(inputs_kv)
    self.variable("cache", "cached_key", lambda: jnp.pad(key, pad).astype(self.dtype))
    self.variable("cache", "cached_value", lambda: jnp.pad(value, pad).astype(self.dtype))


def _dropout(rate: float, deterministic: bool, x: jax.Array) -> jax.Array:
  return nn.Dropout(rate, broadcast_dims=(-2,))(x, deterministic=deterministic)


class DecoderOnlyLayer(nn.Module):
  """Pre-norm self-attention and MLP block. `decode='init'` also fills this layer's
  cache with the keys/values of `x`; `decode='step'` runs one position against it."""
  config: DecoderOnlyConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, bias, mask, decode: Optional[str] = None,
               cache_length: Optional[int] = None,
               cache_index: Optional[jax.Array] = None):
    cfg, dtype, det = self.config, self.config.compute_dtype, self.deterministic
    attention = PrefixCachedAttention(cfg.num_heads, cfg.head_dim, cfg.dropout_rate,
                                      "xla", dtype, name="self_attention")
    y = layers.LayerNorm(dtype=dtype, name="pre_self_attention_layer_norm")(x)
    if decode == "step":
      y = attention(y, y, bias=bias, is_causal=True, decode="step",
                    cache_index=cache_index)
    else:
      if decode == "init":
        attention(y, y, bias=None, is_causal=True, decode="init",
                  cache_length=cache_length)
      y = attention(y, y, bias=bias, mask=mask, deterministic=det)
    x = x + _dropout(cfg.dropout_rate, det, y)
    y = layers.LayerNorm(dtype=dtype, name="pre_mlp_layer_norm")(x)
    y = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dtype,
                        name="mlp")(y, deterministic=det)
    return layers.constrain(x + _dropout(cfg.dropout_rate, det, y), _EMBED_AXES)


class DecoderOnlyStack(nn.Module):
  """Relative-position bias, N layers, final norm and logits (`decoder/...`).

  Cached decoding: `cache` holds each layer's `self_attention/cached_key|cached_value`
  [batch, inputs_length + max_decode_length, heads, head_dim] and the scalar
  `cache_index`; `cross_cache` holds `positions` and `key_valid` [batch, same length]
  (each cache slot's position, and whether it is a real token), read-only after init.
  """
  config: DecoderOnlyConfig
  shared_embedding: nn.Module

  def _embed(self, tokens, deterministic: bool):
    x = layers.constrain(self.shared_embedding(tokens.astype(jnp.int32)), _EMBED_AXES)
    return _dropout(self.config.dropout_rate, deterministic, x)

  def _bias(self, relative, span: int):
    cfg = self.config
    return RelativePositionBias(cfg.relative_attention_num_buckets,
                                cfg.relative_attention_max_distance, cfg.num_heads,
                                cfg.compute_dtype, name="relpos_bias")(relative, span)

  def _layers(self, x, bias, mask, deterministic: bool, **decode_args):
    layer_cls = DecoderOnlyLayer
    if not decode_args and self.config.remat_policy == "full":
      layer_cls = nn.remat(DecoderOnlyLayer)
    elif not decode_args and self.config.remat_policy == "minimal":
      layer_cls = nn.remat(
          DecoderOnlyLayer, policy=jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims)
    for i in range(self.config.num_layers):
      x = layer_cls(self.config, deterministic, name=f"layers_{i}")(
          x, bias, mask, **decode_args)
    return x

  @nn.compact
  def __call__(self, encoder_tokens, decoder_input_tokens, encoder_segment_ids=None,
               decoder_segment_ids=None, enable_dropout: bool = False, *,
               decode: Optional[str] = None, max_decode_length: Optional[int] = None):
    if decode == "init":
      return self._init_cache(encoder_tokens, max_decode_length)
    if decode == "step":
      return self._step(decoder_input_tokens)
    if decode is not None:
      raise ValueError(f"decode={decode!r}; choose None, 'init' or 'step'.")
    if (encoder_segment_ids is None) != (decoder_segment_ids is None):
      raise ValueError("Pass both encoder_segment_ids and decoder_segment_ids, or neither.")
    det = not enable_dropout
    li = encoder_tokens.shape[1]
    tokens = jnp.concatenate([encoder_tokens, decoder_input_tokens], axis=1)
    positions, mask = layout(encoder_tokens, decoder_input_tokens.shape[1],
                             encoder_segment_ids, decoder_segment_ids,
                             prefix_lm=self.config.prefix_lm)
    bias = self._bias(positions[:, None, :] - positions[:, :, None], tokens.shape[1] - 1)
    x = self._layers(self._embed(tokens, det), bias, mask, det)
    return self._logits(x[:, li:], det)

  def _logits(self, y, deterministic: bool):
    cfg = self.config
    y = layers.LayerNorm(dtype=cfg.compute_dtype, name="decoder_norm")(y)
    y = _dropout(cfg.dropout_rate, deterministic, y)
    logits_dtype = jnp.dtype(cfg.logits_dtype)
    if cfg.logits_via_embedding:
      logits = self.shared_embedding.attend(y, logits_dtype)
      logits = logits / jnp.sqrt(jnp.asarray(y.shape[-1], logits_dtype))
    else:
      logits = layers.Dense(cfg.vocab_size, ("embed", "vocab"), layers.MLP_KERNEL_INIT,
                            logits_dtype, name="logits_dense")(y)
    return layers.constrain(logits, ("activation_batch", "activation_length",
                                     "activation_vocab"))

  def _init_cache(self, encoder_tokens, max_decode_length):
    if not isinstance(max_decode_length, int) or max_decode_length <= 0:
      raise ValueError(
          f"max_decode_length must be a positive int, got {max_decode_length!r}.")
    batch, li = encoder_tokens.shape
    length = li + max_decode_length
    positions, mask = layout(encoder_tokens, 0, prefix_lm=self.config.prefix_lm)
    bias = self._bias(positions[:, None, :] - positions[:, :, None], max(li - 1, 0))
    self._layers(self._embed(encoder_tokens, True), bias, mask, True, decode="init",
                 cache_length=length)
    real = encoder_tokens > 0
    count = jnp.sum(real, axis=1, dtype=jnp.int32)[:, None]
    self.variable("cache", "cache_index", lambda: jnp.asarray(li, jnp.int32))
    self.variable("cross_cache", "positions", lambda: jnp.concatenate(
        [positions, count + jnp.arange(max_decode_length, dtype=jnp.int32)[None]], 1))
    self.variable("cross_cache", "key_valid", lambda: jnp.concatenate(
        [real, jnp.ones((batch, max_decode_length), bool)], 1))
    return None

  def _step(self, tokens):
    if not self.has_variable("cache", "cache_index"):
      raise ValueError("No decoder cache: run DecoderOnly.init_decoder_cache (apply "
                       "with mutable=['cache', 'cross_cache']) before decode_step.")
    if tokens.ndim != 2 or tokens.shape[1] != 1:
      raise ValueError(f"decode_step takes tokens of shape [batch, 1], got {tokens.shape}.")
    index_var = self.variable("cache", "cache_index")
    index = index_var.value
    positions = self.get_variable("cross_cache", "positions")
    key_valid = self.get_variable("cross_cache", "key_valid")
    query = jax.lax.dynamic_slice_in_dim(positions, index, 1, axis=1)  # [B, 1]
    bias = self._bias((positions - query)[:, None, :], positions.shape[1] - 1)
    bias = bias + jnp.where(key_valid, 0.0, _MASKED)[:, None, None, :].astype(bias.dtype)
    y = self._layers(self._embed(tokens, True), bias, None, True, decode="step",
                     cache_index=index)
    index_var.value = index + 1
    return self._logits(y, True)


class DecoderOnly(nn.Module):
  """Decoder-only Transformer: `__call__` maps an encoder-decoder batch to the logits
  of its decoder positions [batch, targets_length, vocab].

  Cached decoding (`synthpre_jax.decoding.Decodable`): `encode` returns the input
  tokens; `init_decoder_cache` runs the inputs once and keeps every layer's keys and
  values; each `decode_step` then feeds one decoder token (token 0 first) and returns
  the logits the full forward pass gives at that decoder position.
  """
  config: DecoderOnlyConfig

  def setup(self):
    self.token_embedder = layers.Embed(self.config.vocab_size, self.config.emb_dim,
                                       self.config.compute_dtype)
    self.decoder = DecoderOnlyStack(self.config, self.token_embedder)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout: bool = False):
    """The input tokens themselves (the inputs are run by `init_decoder_cache`)."""
    del encoder_segment_ids, enable_dropout
    return encoder_input_tokens

  def init_decoder_cache(self, encoded, encoder_input_tokens, max_decode_length: int):
    """Creates `cache` and `cross_cache` for `max_decode_length` decoder positions."""
    del encoded
    return self.decoder(encoder_input_tokens, None, decode="init",
                        max_decode_length=max_decode_length)

  def decode_step(self, decoder_input_tokens):
    """Logits [batch, 1, vocab] of the next decoder position; advances the cache."""
    return self.decoder(None, decoder_input_tokens, decode="step")

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    return self.decoder(encoder_input_tokens, decoder_input_tokens, encoder_segment_ids,
                        decoder_segment_ids, enable_dropout)
