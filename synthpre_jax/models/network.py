"""The T5 encoder-decoder network (logits only), T5X module and parameter names.

Parameter paths match T5X, e.g. `encoder/layers_0/attention/query/kernel`,
`decoder/layers_3/encoder_decoder_attention/out/kernel`,
`encoder/relpos_bias/rel_embedding`, `token_embedder/embedding`. Losses, decoding
and metrics live outside the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthpre_jax.models import attention as attention_lib
from synthpre_jax.models import layers

if TYPE_CHECKING:  # the config module builds this network, so it imports this one
  from synthpre_jax.models.config import T5Config

_EMBED_AXES = ("activation_batch", "activation_length", "activation_embed")


def _remat(cls, policy: str):
  if policy == "none":
    return cls
  if policy == "full":
    return nn.remat(cls)
  return nn.remat(cls, policy=jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims)


def _lengths(tokens: jax.Array) -> jax.Array:
  """Number of non-padding tokens per row (rows are right-padded when not packed)."""
  return jnp.sum(tokens > 0, axis=-1).astype(jnp.int32)


def _segment_mask(q_segments: jax.Array, kv_segments: jax.Array) -> jax.Array:
  """[B, 1, T, S] mask allowing attention only within a packed example."""
  same = q_segments[:, :, None] == kv_segments[:, None, :]
  real = jnp.logical_and(q_segments[:, :, None] > 0, kv_segments[:, None, :] > 0)
  return jnp.logical_and(same, real)[:, None]


class _Hidden(nn.Module):
  """Dropout on hidden states; broadcast over the sequence axis as in T5X, except the
  encoder's final dropout (T5X draws that one per position)."""
  rate: float
  deterministic: bool
  broadcast: bool = True

  @nn.compact
  def __call__(self, x):
    dims = (-2,) if self.broadcast else ()
    return nn.Dropout(self.rate, broadcast_dims=dims)(x, deterministic=self.deterministic)


class _PreNormLayer(nn.Module):
  """Shared parts of the encoder and decoder layers: pre-norm residual sub-layers."""
  config: T5Config
  implementation: Optional[str]
  deterministic: bool = True

  def _attention(self, name: str) -> layers.MultiHeadDotProductAttention:
    cfg = self.config
    return layers.MultiHeadDotProductAttention(
        cfg.num_heads, cfg.head_dim, cfg.dropout_rate, self.implementation,
        cfg.compute_dtype, name=name)

  def _residual(self, x, norm_name: str, fn):
    """x + dropout(fn(norm(x))), the T5 pre-norm sub-layer."""
    y = layers.LayerNorm(dtype=self.config.compute_dtype, name=norm_name)(x)
    return x + _Hidden(self.config.dropout_rate, self.deterministic)(fn(y))

  def _mlp(self, x):
    cfg = self.config
    mlp = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate,
                          cfg.compute_dtype, name="mlp")
    x = self._residual(x, "pre_mlp_layer_norm",
                       lambda y: mlp(y, deterministic=self.deterministic))
    return layers.constrain(x, _EMBED_AXES)


class EncoderLayer(_PreNormLayer):
  """Pre-norm self-attention + MLP block of the encoder."""

  @nn.compact
  def __call__(self, x, bias, kv_lengths, mask):
    attention = self._attention("attention")
    x = self._residual(x, "pre_attention_layer_norm", lambda y: attention(
        y, y, bias=bias, kv_lengths=kv_lengths, mask=mask,
        deterministic=self.deterministic))
    return self._mlp(x)


class DecoderLayer(_PreNormLayer):
  """Pre-norm causal self-attention, cross-attention and MLP block of the decoder.

  `decode='init'` only creates the layer's caches (see `MultiHeadDotProductAttention`);
  `decode='step'` runs one position against them (`encoded` unused).
  """

  @nn.compact
  def __call__(self, x, encoded, self_bias, self_mask, enc_lengths, cross_mask,
               decode: Optional[str] = None, cache_length: Optional[int] = None,
               cache_index: Optional[jax.Array] = None):
    self_attention = self._attention("self_attention")
    cross_attention = self._attention("encoder_decoder_attention")
    if decode == "init":
      self_attention(encoded, encoded, bias=None, is_causal=True, decode="init",
                     cache_length=cache_length)
      cross_attention(encoded, encoded, bias=None, decode="init")
      return x
    x = self._residual(x, "pre_self_attention_layer_norm", lambda y: self_attention(
        y, y, bias=self_bias, is_causal=True, mask=self_mask,
        deterministic=self.deterministic, decode=decode, cache_index=cache_index))
    x = self._residual(x, "pre_cross_attention_layer_norm", lambda y: cross_attention(
        y, encoded, bias=None, kv_lengths=enc_lengths, mask=cross_mask,
        deterministic=self.deterministic, decode=decode))
    return self._mlp(x)


class _Stack(nn.Module):
  """Shared start of the encoder and decoder: embedding, dropout, the stack's one
  relative-position bias table."""
  config: T5Config
  shared_embedding: nn.Module

  def _embed_and_bias(self, tokens, *, bidirectional: bool, deterministic: bool,
                      k_len: Optional[int] = None,
                      query_offset: Optional[jax.Array] = None):
    """Embedded tokens, the [1, N, T, S] bias (S = k_len, default T; queries at
    query_offset.. when given) and the resolved attention implementation."""
    cfg = self.config
    x = layers.constrain(self.shared_embedding(tokens.astype(jnp.int32)), _EMBED_AXES)
    x = _Hidden(cfg.dropout_rate, deterministic)(x)
    length = tokens.shape[-1]
    bias = layers.RelativePositionBiases(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, cfg.compute_dtype, name="relpos_bias")(
            length, k_len or length, bidirectional, query_offset)
    impl = attention_lib.resolve_implementation(cfg.attention_implementation,
                                                cfg.compute_dtype)
    return x, bias, impl


class Encoder(_Stack):
  """Embedding, shared relative-position bias, N encoder layers, final norm."""

  @nn.compact
  def __call__(self, tokens, segment_ids=None, enable_dropout: bool = False):
    cfg, dtype = self.config, self.config.compute_dtype
    det = not enable_dropout
    x, bias, impl = self._embed_and_bias(tokens, bidirectional=True, deterministic=det)
    if segment_ids is None:
      kv_lengths, mask = _lengths(tokens), None
    else:
      kv_lengths, mask = None, _segment_mask(segment_ids, segment_ids)
    layer_cls = _remat(EncoderLayer, cfg.remat_policy)
    for i in range(cfg.num_encoder_layers):
      x = layer_cls(cfg, impl, det, name=f"layers_{i}")(x, bias, kv_lengths, mask)
    x = layers.LayerNorm(dtype=dtype, name="encoder_norm")(x)
    return _Hidden(cfg.dropout_rate, det, broadcast=False)(x)


class Decoder(_Stack):
  """Embedding, shared causal relative-position bias, N decoder layers, logits.

  Cached decoding (`decode` not None) uses two Flax collections: `cache` (per layer
  `self_attention/cached_key|cached_value` [batch, max_decode_length, heads,
  head_dim], and the scalar `cache_index`), which every step updates, and
  `cross_cache` (per layer `encoder_decoder_attention/cached_key|cached_value`
  [batch, encoder_length, heads, head_dim], and `encoder_lengths` [batch]), computed
  once by `decode='init'` and read-only afterwards. Decoding assumes unpacked,
  right-padded encoder inputs (no segment ids).
  """

  @nn.compact
  def __call__(self, encoded, encoder_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False, *, decode: Optional[str] = None,
               max_decode_length: Optional[int] = None):
    cfg = self.config
    if decode == "init":
      return self._init_cache(encoded, encoder_tokens, max_decode_length)
    if decode == "step":
      return self._step(decoder_input_tokens)
    if decode is not None:
      raise ValueError(f"decode={decode!r}; choose None, 'init' or 'step'.")
    det = not enable_dropout
    y, bias, impl = self._embed_and_bias(decoder_input_tokens, bidirectional=False,
                                         deterministic=det)
    if decoder_segment_ids is None:
      self_mask, cross_mask, enc_lengths = None, None, _lengths(encoder_tokens)
    else:
      self_mask = _segment_mask(decoder_segment_ids, decoder_segment_ids)
      cross_mask = _segment_mask(decoder_segment_ids, encoder_segment_ids)
      enc_lengths = None
    layer_cls = _remat(DecoderLayer, cfg.remat_policy)
    for i in range(cfg.num_decoder_layers):
      y = layer_cls(cfg, impl, det, name=f"layers_{i}")(
          y, encoded, bias, self_mask, enc_lengths, cross_mask)
    return self._logits(y, det)

  def _logits(self, y, deterministic: bool):
    cfg = self.config
    y = layers.LayerNorm(dtype=cfg.compute_dtype, name="decoder_norm")(y)
    y = _Hidden(cfg.dropout_rate, deterministic)(y)
    logits_dtype = jnp.dtype(cfg.logits_dtype)
    if cfg.logits_via_embedding:
      logits = self.shared_embedding.attend(y, logits_dtype)
      logits = logits / jnp.sqrt(jnp.asarray(y.shape[-1], logits_dtype))
    else:
      logits = layers.Dense(cfg.vocab_size, ("embed", "vocab"), layers.MLP_KERNEL_INIT,
                            logits_dtype, name="logits_dense")(y)
    return layers.constrain(logits, ("activation_batch", "activation_length",
                                     "activation_vocab"))

  def _init_cache(self, encoded, encoder_tokens, max_decode_length):
    cfg = self.config
    if not isinstance(max_decode_length, int) or max_decode_length <= 0:
      raise ValueError(
          f"max_decode_length must be a positive int, got {max_decode_length!r}.")
    if encoded.shape[0] != encoder_tokens.shape[0]:
      raise ValueError(f"encoded batch {encoded.shape[0]} != encoder_tokens batch "
                       f"{encoder_tokens.shape[0]}.")
    self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
    self.variable("cross_cache", "encoder_lengths", lambda: _lengths(encoder_tokens))
    for i in range(cfg.num_decoder_layers):
      DecoderLayer(cfg, "xla", True, name=f"layers_{i}")(
          None, encoded, None, None, None, None, decode="init",
          cache_length=max_decode_length)
    return None

  def _step(self, tokens):
    cfg = self.config
    if not self.has_variable("cache", "cache_index"):
      raise ValueError("No decoder cache: run Transformer.init_decoder_cache (apply "
                       "with mutable=['cache', 'cross_cache']) before decode_step.")
    if tokens.ndim != 2 or tokens.shape[1] != 1:
      raise ValueError(f"decode_step takes tokens of shape [batch, 1], got {tokens.shape}.")
    index_var = self.variable("cache", "cache_index")
    index = index_var.value
    # The self-attention cache's length axis is the maximum decode length.
    cache_length = self.variables["cache"]["layers_0"]["self_attention"][
        "cached_key"].shape[1]
    y, bias, _ = self._embed_and_bias(tokens, bidirectional=False, deterministic=True,
                                      k_len=cache_length, query_offset=index)
    enc_lengths = self.get_variable("cross_cache", "encoder_lengths")
    for i in range(cfg.num_decoder_layers):
      y = DecoderLayer(cfg, "xla", True, name=f"layers_{i}")(
          y, None, bias, None, enc_lengths, None, decode="step", cache_index=index)
    index_var.value = index + 1
    return self._logits(y, True)


class Transformer(nn.Module):
  """T5 encoder-decoder: `__call__` maps a batch's tokens to decoder logits.

  Cached decoding (what `synthpre_jax.decoding` runs): `encode` once; then
  `init_decoder_cache` (apply with `mutable=['cache', 'cross_cache']`) projects the
  encoder output into every layer's cross-attention keys/values and allocates the
  self-attention cache; then `decode_step` (apply with the `params`, `cache` and
  `cross_cache` collections and `mutable=['cache']`) once per output position,
  feeding token 0 first. Step t returns the logits that the full forward pass gives
  at decoder position t.
  """
  config: T5Config

  def setup(self):
    self.token_embedder = layers.Embed(self.config.vocab_size, self.config.emb_dim,
                                       self.config.compute_dtype)
    self.encoder = Encoder(self.config, self.token_embedder)
    self.decoder = Decoder(self.config, self.token_embedder)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout: bool = False):
    return self.encoder(encoder_input_tokens, encoder_segment_ids, enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None,
             enable_dropout: bool = False):
    return self.decoder(encoded, encoder_input_tokens, decoder_input_tokens,
                        encoder_segment_ids, decoder_segment_ids, enable_dropout)

  def init_decoder_cache(self, encoded, encoder_input_tokens, max_decode_length: int):
    """Creates the `cache` and `cross_cache` collections for `max_decode_length` steps."""
    return self.decoder(encoded, encoder_input_tokens, None, decode="init",
                        max_decode_length=max_decode_length)

  def decode_step(self, decoder_input_tokens):
    """Logits [batch, 1, vocab] for the next position of [batch, 1] tokens; advances
    the cache by one."""
    return self.decoder(None, None, decoder_input_tokens, decode="step")

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, enable_dropout)
