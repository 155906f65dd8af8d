"""The T5 encoder-decoder network (logits only), T5X module and parameter names.

Parameter paths match T5X, e.g. `encoder/layers_0/attention/query/kernel`,
`decoder/layers_3/encoder_decoder_attention/out/kernel`,
`encoder/relpos_bias/rel_embedding`, `token_embedder/embedding`. Losses, decoding
and metrics live outside the network.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthpre_jax.models import attention as attention_lib
from synthpre_jax.models import layers
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
  """Pre-norm causal self-attention, cross-attention and MLP block of the decoder."""

  @nn.compact
  def __call__(self, x, encoded, self_bias, self_mask, enc_lengths, cross_mask):
    self_attention = self._attention("self_attention")
    cross_attention = self._attention("encoder_decoder_attention")
    x = self._residual(x, "pre_self_attention_layer_norm", lambda y: self_attention(
        y, y, bias=self_bias, is_causal=True, mask=self_mask,
        deterministic=self.deterministic))
    x = self._residual(x, "pre_cross_attention_layer_norm", lambda y: cross_attention(
        y, encoded, bias=None, kv_lengths=enc_lengths, mask=cross_mask,
        deterministic=self.deterministic))
    return self._mlp(x)


class _Stack(nn.Module):
  """Shared start of the encoder and decoder: embedding, dropout, the stack's one
  relative-position bias table."""
  config: T5Config
  shared_embedding: nn.Module

  def _embed_and_bias(self, tokens, *, bidirectional: bool, deterministic: bool):
    cfg = self.config
    x = layers.constrain(self.shared_embedding(tokens.astype(jnp.int32)), _EMBED_AXES)
    x = _Hidden(cfg.dropout_rate, deterministic)(x)
    length = tokens.shape[-1]
    bias = layers.RelativePositionBiases(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, cfg.compute_dtype, name="relpos_bias")(length, length, bidirectional)
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
  """Embedding, shared causal relative-position bias, N decoder layers, logits."""

  @nn.compact
  def __call__(self, encoded, encoder_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    cfg, dtype = self.config, self.config.compute_dtype
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
    y = layers.LayerNorm(dtype=dtype, name="decoder_norm")(y)
    y = _Hidden(cfg.dropout_rate, det)(y)
    logits_dtype = jnp.dtype(cfg.logits_dtype)
    if cfg.logits_via_embedding:
      logits = self.shared_embedding.attend(y, logits_dtype)
      logits = logits / jnp.sqrt(jnp.asarray(y.shape[-1], logits_dtype))
    else:
      logits = layers.Dense(cfg.vocab_size, ("embed", "vocab"), layers.MLP_KERNEL_INIT,
                            logits_dtype, name="logits_dense")(y)
    return layers.constrain(logits, ("activation_batch", "activation_length",
                                     "activation_vocab"))


class Transformer(nn.Module):
  """T5 encoder-decoder: `__call__` maps a batch's tokens to decoder logits."""
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

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, enable_dropout)
