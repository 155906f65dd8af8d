"""Dot-product attention for T5: fused `jax.nn.dot_product_attention` or an explicit path.

T5 does not scale logits by 1/sqrt(head_dim) (the query kernel's init does it), and adds
a relative-position bias. Padding is expressed as sequence lengths (inputs are
right-padded when not packed), which lets cuDNN's fused kernel handle it; packed
batches pass a boolean segment mask instead. The explicit path is used only when
attention-probability dropout is active, because the fused kernels have no dropout.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

_NEG_INF = -1e10


def resolve_implementation(name: str, dtype: jnp.dtype) -> Optional[str]:
  """Maps 'auto' to 'cudnn' on GPU with 16-bit compute and to 'xla' elsewhere."""
  if name != "auto":
    return name
  on_gpu = jax.default_backend() == "gpu"
  return "cudnn" if on_gpu and jnp.dtype(dtype).itemsize == 2 else "xla"


def _explicit_mask(q_len: int, kv_len: int, *, is_causal: bool,
                   kv_lengths: Optional[jax.Array],
                   mask: Optional[jax.Array]) -> Optional[jax.Array]:
  """The boolean mask [B or 1, 1, T, S] that the fused call expresses implicitly."""
  out = None
  if is_causal:
    out = (jnp.arange(q_len)[:, None] >= jnp.arange(kv_len)[None, :])[None, None]
  if kv_lengths is not None:
    valid = jnp.arange(kv_len)[None, :] < kv_lengths[:, None]
    valid = valid[:, None, None, :]
    out = valid if out is None else jnp.logical_and(out, valid)
  if mask is not None:
    out = mask if out is None else jnp.logical_and(out, mask)
  return out


def explicit_attention(query: jax.Array, key: jax.Array, value: jax.Array, *,
                       bias: Optional[jax.Array], is_causal: bool,
                       kv_lengths: Optional[jax.Array], mask: Optional[jax.Array],
                       dropout_rate: float = 0.0,
                       dropout_rng: Optional[jax.Array] = None) -> jax.Array:
  """Unfused attention with optional dropout on the probabilities (T5X semantics: one
  dropout mask per (batch, head, key), shared by all queries)."""
  logits = jnp.einsum("btnh,bsnh->bnts", query, key,
                      preferred_element_type=jnp.float32)
  if bias is not None:
    logits = logits + bias.astype(jnp.float32)
  full_mask = _explicit_mask(query.shape[1], key.shape[1], is_causal=is_causal,
                             kv_lengths=kv_lengths, mask=mask)
  if full_mask is not None:
    logits = jnp.where(full_mask, logits, _NEG_INF)
  probs = jax.nn.softmax(logits, axis=-1)
  if dropout_rate > 0.0 and dropout_rng is not None:
    mask_shape = probs.shape[:-2] + (1, probs.shape[-1])
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, mask_shape)
    probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
  return jnp.einsum("bnts,bsnh->btnh", probs.astype(value.dtype), value)


def attend(query: jax.Array, key: jax.Array, value: jax.Array, *,
           bias: Optional[jax.Array], is_causal: bool = False,
           kv_lengths: Optional[jax.Array] = None,
           mask: Optional[jax.Array] = None,
           implementation: Optional[str] = "xla",
           dropout_rate: float = 0.0,
           dropout_rng: Optional[jax.Array] = None) -> jax.Array:
  """Attention over [B, T, N, H] inputs; bias broadcasts to [B, N, T, S]."""
  if dropout_rate > 0.0 and dropout_rng is not None:
    return explicit_attention(query, key, value, bias=bias, is_causal=is_causal,
                              kv_lengths=kv_lengths, mask=mask,
                              dropout_rate=dropout_rate, dropout_rng=dropout_rng)
  if bias is not None:
    bias = bias.astype(query.dtype)
  if kv_lengths is not None:
    # An all-padding row (e.g. a filler example) would otherwise have no valid key.
    kv_lengths = jnp.maximum(kv_lengths, 1).astype(jnp.int32)
  return jax.nn.dot_product_attention(
      query, key, value, bias=bias, mask=mask, scale=1.0, is_causal=is_causal,
      key_value_seq_lengths=kv_lengths, implementation=implementation)
