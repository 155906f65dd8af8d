"""T5 building blocks with T5X parameter names and logical axis names.

Kernels are stored 2-D like T5X (`[embed, joined_kv]`, `[joined_kv, embed]`,
`[embed, mlp]`, ...) so checkpoints, parameter counts and Adafactor's factoring match.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from synthpre_jax.models import attention as attention_lib

Initializer = Callable[..., jax.Array]

# The spec's initializers (T5X defaults for T5 v1.0 / v1.1).
EMBEDDING_INIT = nn.initializers.normal(stddev=1.0)
ATTENTION_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
MLP_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
RELPOS_INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")


def constrain(x: jax.Array, axes: Sequence[Optional[str]]) -> jax.Array:
  """Sharding constraint by logical activation axis names (no-op without rules)."""
  return nn.with_logical_constraint(x, tuple(axes))


def _param(module: nn.Module, name: str, init: Initializer, shape: tuple,
           axes: tuple) -> jax.Array:
  return module.param(name, nn.with_logical_partitioning(init, axes), shape,
                      jnp.float32)


class LayerNorm(nn.Module):
  """T5 RMS norm: no mean subtraction, no bias, scale initialised to 1."""
  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = (x32 * jax.lax.rsqrt(var + self.epsilon)).astype(self.dtype)
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],), ("embed",))
    return y * scale.astype(self.dtype)


class Dense(nn.Module):
  """A bias-free dense layer contracting the last axis (T5X DenseGeneral, 2-D kernel)."""
  features: int
  kernel_axes: tuple
  kernel_init: Initializer = ATTENTION_KERNEL_INIT
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = _param(self, "kernel", self.kernel_init,
                    (x.shape[-1], self.features), self.kernel_axes)
    return jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))


class Embed(nn.Module):
  """Token embedding; `attend` gives the tied output logits."""
  num_embeddings: int
  features: int
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.embedding = _param(self, "embedding", EMBEDDING_INIT,
                            (self.num_embeddings, self.features),
                            ("vocab", "embed"))

  def __call__(self, ids: jax.Array) -> jax.Array:
    return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)

  def attend(self, x: jax.Array, dtype: jnp.dtype) -> jax.Array:
    return jnp.dot(x.astype(dtype), self.embedding.T.astype(dtype))


def relative_position_bucket(relative_position: np.ndarray, *, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> np.ndarray:
  """T5's bucketing of key-minus-query offsets: each direction (bidirectional) or the
  past only (causal) gets exact buckets for small offsets, then log-spaced ones."""
  n = -np.asarray(relative_position)
  ret = np.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(n.dtype) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  large = max_exact + (
      np.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps)
      / np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(n.dtype)
  large = np.minimum(large, num_buckets - 1)
  return ret + np.where(is_small, n, large)


class RelativePositionBiases(nn.Module):
  """One [heads, buckets] table per stack, shared by its layers; returns [1, N, T, S].

  `query_offset` (a traced scalar, for cached decoding) places the T queries at
  positions offset .. offset+T-1 instead of 0 .. T-1; keys stay at 0 .. S-1. The
  buckets come from the same numpy bucketing either way, so a cached decode step sees
  exactly the bias row that the full forward pass uses at that position.
  """
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, q_len: int, k_len: int, bidirectional: bool,
               query_offset: Optional[jax.Array] = None) -> jax.Array:
    bucket = functools.partial(relative_position_bucket, bidirectional=bidirectional,
                               num_buckets=self.num_buckets,
                               max_distance=self.max_distance)
    if query_offset is None:
      context = np.arange(q_len, dtype=np.int32)[:, None]
      memory = np.arange(k_len, dtype=np.int32)[None, :]
      buckets = jnp.asarray(bucket(memory - context))
    else:
      # Every key-minus-query offset possible for 0 <= query_offset < k_len.
      span = k_len + q_len - 2
      lookup = jnp.asarray(bucket(np.arange(-span, k_len, dtype=np.int32)))
      context = query_offset + jnp.arange(q_len, dtype=jnp.int32)[:, None]
      memory = jnp.arange(k_len, dtype=jnp.int32)[None, :]
      buckets = lookup[jnp.clip(memory - context + span, 0, lookup.shape[0] - 1)]
    table = _param(self, "rel_embedding", RELPOS_INIT,
                   (self.num_heads, self.num_buckets), ("heads", "relpos_buckets"))
    values = jnp.take(table, buckets, axis=1)  # [N, T, S]
    return values[None].astype(self.dtype)


class MultiHeadDotProductAttention(nn.Module):
  """T5 attention: q/k/v/o projections around `attention.attend`.

  `decode` selects the cached-decoding behaviour (None: the ordinary full pass):

  * `'init'`: create this layer's cache and return None. Causal (self-)attention
    makes zero `cache/cached_key` and `cache/cached_value` of shape
    [batch, cache_length, heads, head_dim] (batch from `inputs_q`); non-causal
    (cross-)attention projects `inputs_kv` (the encoder output) once into
    `cross_cache/cached_key` and `cross_cache/cached_value`.
  * `'step'`: `inputs_q` is one position [batch, 1, embed]. Self-attention writes its
    key/value at `cache_index` and attends to positions 0..cache_index; cross-attention
    attends to the cached encoder keys/values (`inputs_kv` is ignored).
  """
  num_heads: int
  head_dim: int
  dropout_rate: float = 0.0
  implementation: Optional[str] = "xla"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs_q: jax.Array, inputs_kv: Optional[jax.Array], *,
               bias: Optional[jax.Array], is_causal: bool = False,
               kv_lengths: Optional[jax.Array] = None,
               mask: Optional[jax.Array] = None,
               deterministic: bool = True,
               decode: Optional[str] = None,
               cache_length: Optional[int] = None,
               cache_index: Optional[jax.Array] = None) -> Optional[jax.Array]:
    joined = self.num_heads * self.head_dim
    depth_scaling = float(np.sqrt(self.head_dim))

    def query_init(*args):
      return ATTENTION_KERNEL_INIT(*args) / depth_scaling

    def project(name, x, init):
      y = Dense(joined, ("embed", "joined_kv"), init, self.dtype, name=name)(x)
      y = y.reshape(y.shape[:-1] + (self.num_heads, self.head_dim))
      return constrain(y, ("activation_batch", "activation_length",
                           "activation_heads", "activation_kv"))

    if decode not in (None, "init", "step"):
      raise ValueError(f"decode={decode!r}; choose None, 'init' or 'step'.")
    if decode == "init":
      self._init_cache(inputs_q, inputs_kv, is_causal, cache_length,
                       lambda x: project("key", x, ATTENTION_KERNEL_INIT),
                       lambda x: project("value", x, ATTENTION_KERNEL_INIT))
      return None

    query = project("query", inputs_q, query_init)
    implementation = self.implementation
    if decode == "step":
      key, value, kv_lengths = self._cached_keys_values(
          inputs_q, is_causal, cache_index, kv_lengths,
          lambda x: project("key", x, ATTENTION_KERNEL_INIT),
          lambda x: project("value", x, ATTENTION_KERNEL_INIT))
      is_causal, mask, implementation = False, None, "xla"
    else:
      key = project("key", inputs_kv, ATTENTION_KERNEL_INIT)
      value = project("value", inputs_kv, ATTENTION_KERNEL_INIT)
    dropout_rng = None
    if not deterministic and self.dropout_rate > 0.0 and decode is None:
      dropout_rng = self.make_rng("dropout")
    x = attention_lib.attend(query, key, value, bias=bias, is_causal=is_causal,
                             kv_lengths=kv_lengths, mask=mask,
                             implementation=implementation,
                             dropout_rate=self.dropout_rate,
                             dropout_rng=dropout_rng)
    x = x.reshape(x.shape[:-2] + (joined,))
    out = Dense(inputs_q.shape[-1], ("joined_kv", "embed"), ATTENTION_KERNEL_INIT,
                self.dtype, name="out")(x)
    return constrain(out, ("activation_batch", "activation_length", "activation_embed"))

  def _init_cache(self, inputs_q, inputs_kv, is_causal, cache_length, key_fn, value_fn):
    if is_causal:
      if not isinstance(cache_length, int) or cache_length <= 0:
        raise ValueError(f"cache_length must be a positive int, got {cache_length!r}.")
      shape = (inputs_q.shape[0], cache_length, self.num_heads, self.head_dim)
      self.variable("cache", "cached_key", jnp.zeros, shape, self.dtype)
      self.variable("cache", "cached_value", jnp.zeros, shape, self.dtype)
    else:
      key, value = key_fn(inputs_kv), value_fn(inputs_kv)
      self.variable("cross_cache", "cached_key", lambda: key)
      self.variable("cross_cache", "cached_value", lambda: value)

  def _cached_keys_values(self, inputs_q, is_causal, cache_index, kv_lengths,
                          key_fn, value_fn):
    collection = "cache" if is_causal else "cross_cache"
    if not self.has_variable(collection, "cached_key"):
      raise ValueError(
          f"{self.name}: no '{collection}' variables; run Transformer.init_decoder_cache "
          "(apply with mutable=['cache', 'cross_cache']) before decode steps.")
    if not is_causal:
      return (self.get_variable(collection, "cached_key"),
              self.get_variable(collection, "cached_value"), kv_lengths)
    if inputs_q.shape[1] != 1:
      raise ValueError(f"A decode step takes one position, got length {inputs_q.shape[1]}.")
    cached_key = self.variable("cache", "cached_key")
    cached_value = self.variable("cache", "cached_value")
    for var, new in ((cached_key, key_fn(inputs_q)), (cached_value, value_fn(inputs_q))):
      var.value = jax.lax.dynamic_update_slice_in_dim(
          var.value, new.astype(var.value.dtype), cache_index, axis=1)
    lengths = jnp.full((inputs_q.shape[0],), cache_index + 1, jnp.int32)
    return cached_key.value, cached_value.value, lengths


_ACTIVATION_FNS = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu,
                   "linear": lambda x: x}


class MlpBlock(nn.Module):
  """T5 feed-forward: `wi` (or gated `wi_0`, `wi_1`), activation, dropout, `wo`."""
  intermediate_dim: int
  activations: Sequence[str] = ("relu",)
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs: jax.Array, deterministic: bool = True) -> jax.Array:
    hidden = None
    for i, act in enumerate(self.activations):
      name = "wi" if len(self.activations) == 1 else f"wi_{i}"
      h = Dense(self.intermediate_dim, ("embed", "mlp"), MLP_KERNEL_INIT,
                self.dtype, name=name)(inputs)
      h = _ACTIVATION_FNS[act](h)
      hidden = h if hidden is None else hidden * h
    hidden = constrain(hidden, ("activation_batch", "activation_length", "activation_mlp"))
    hidden = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
        hidden, deterministic=deterministic)
    out = Dense(inputs.shape[-1], ("mlp", "embed"), MLP_KERNEL_INIT, self.dtype,
                name="wo")(hidden)
    return constrain(out, ("activation_batch", "activation_length", "activation_embed"))
