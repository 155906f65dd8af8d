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


class EncoderLayer(nn.Module):
  """Pre-norm self-attention + MLP block of the encoder."""
  config: T5Config
  implementation: Optional[str]
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, bias, kv_lengths, mask):
    cfg, dtype = self.config, self.config.compute_dtype
    y = layers.LayerNorm(dtype=dtype, name="pre_attention_layer_norm")(x)
    y = layers.MultiHeadDotProductAttention(
        cfg.num_heads, cfg.head_dim, cfg.dropout_rate, self.implementation, dtype,
        name="attention")(y, y, bias=bias, kv_lengths=kv_lengths, mask=mask,
                          deterministic=self.deterministic)
    x = x + _Hidden(cfg.dropout_rate, self.deterministic)(y)
    y = layers.LayerNorm(dtype=dtype, name="pre_mlp_layer_norm")(x)
    y = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dtype,
                        name="mlp")(y, deterministic=self.deterministic)
    x = x + _Hidden(cfg.dropout_rate, self.deterministic)(y)
    return layers.constrain(x, _EMBED_AXES)


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention and MLP block of the decoder."""
  config: T5Config
  implementation: Optional[str]
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, encoded, self_bias, self_mask, enc_lengths, cross_mask):
    cfg, dtype = self.config, self.config.compute_dtype
    attn = lambda name: layers.MultiHeadDotProductAttention(  # noqa: E731
        cfg.num_heads, cfg.head_dim, cfg.dropout_rate, self.implementation, dtype,
        name=name)
    y = layers.LayerNorm(dtype=dtype, name="pre_self_attention_layer_norm")(x)
    y = attn("self_attention")(y, y, bias=self_bias, is_causal=True, mask=self_mask,
                               deterministic=self.deterministic)
    x = x + _Hidden(cfg.dropout_rate, self.deterministic)(y)
    y = layers.LayerNorm(dtype=dtype, name="pre_cross_attention_layer_norm")(x)
    y = attn("encoder_decoder_attention")(
        y, encoded, bias=None, kv_lengths=enc_lengths, mask=cross_mask,
        deterministic=self.deterministic)
    x = x + _Hidden(cfg.dropout_rate, self.deterministic)(y)
    y = layers.LayerNorm(dtype=dtype, name="pre_mlp_layer_norm")(x)
    y = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dtype,
                        name="mlp")(y, deterministic=self.deterministic)
    x = x + _Hidden(cfg.dropout_rate, self.deterministic)(y)
    return layers.constrain(x, _EMBED_AXES)


class Encoder(nn.Module):
  """Embedding, shared relative-position bias, N encoder layers, final norm."""
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, tokens, segment_ids=None, enable_dropout: bool = False):
    cfg, dtype = self.config, self.config.compute_dtype
    det = not enable_dropout
    impl = attention_lib.resolve_implementation(cfg.attention_implementation, dtype)
    x = layers.constrain(self.shared_embedding(tokens.astype(jnp.int32)), _EMBED_AXES)
    x = _Hidden(cfg.dropout_rate, det)(x)
    length = tokens.shape[-1]
    bias = layers.RelativePositionBiases(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, dtype, name="relpos_bias")(length, length, True)
    if segment_ids is None:
      kv_lengths, mask = _lengths(tokens), None
    else:
      kv_lengths, mask = None, _segment_mask(segment_ids, segment_ids)
    layer_cls = _remat(EncoderLayer, cfg.remat_policy)
    for i in range(cfg.num_encoder_layers):
      x = layer_cls(cfg, impl, det, name=f"layers_{i}")(x, bias, kv_lengths, mask)
    x = layers.LayerNorm(dtype=dtype, name="encoder_norm")(x)
    return _Hidden(cfg.dropout_rate, det, broadcast=False)(x)


class Decoder(nn.Module):
  """Embedding, shared causal relative-position bias, N decoder layers, logits."""
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, encoded, encoder_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    cfg, dtype = self.config, self.config.compute_dtype
    det = not enable_dropout
    impl = attention_lib.resolve_implementation(cfg.attention_implementation, dtype)
    y = layers.constrain(
        self.shared_embedding(decoder_input_tokens.astype(jnp.int32)), _EMBED_AXES)
    y = _Hidden(cfg.dropout_rate, det)(y)
    length = decoder_input_tokens.shape[-1]
    bias = layers.RelativePositionBiases(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, dtype, name="relpos_bias")(length, length, False)
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
