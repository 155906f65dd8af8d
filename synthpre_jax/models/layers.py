"""T5 building blocks with T5X parameter names and logical axis names.

Kernels are stored 2-D like T5X (`[embed, joined_kv]`, `[joined_kv, embed]`,
`[embed, mlp]`, ...) so checkpoints, parameter counts and Adafactor's factoring match.
"""

from __future__ import annotations

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
  """One [heads, buckets] table per stack, shared by its layers; returns [1, N, T, S]."""
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, q_len: int, k_len: int, bidirectional: bool) -> jax.Array:
    context = np.arange(q_len, dtype=np.int32)[:, None]
    memory = np.arange(k_len, dtype=np.int32)[None, :]
    buckets = relative_position_bucket(memory - context, bidirectional=bidirectional,
                                       num_buckets=self.num_buckets,
                                       max_distance=self.max_distance)
    table = _param(self, "rel_embedding", RELPOS_INIT,
                   (self.num_heads, self.num_buckets), ("heads", "relpos_buckets"))
    values = jnp.take(table, jnp.asarray(buckets), axis=1)  # [N, T, S]
    return values[None].astype(self.dtype)


class MultiHeadDotProductAttention(nn.Module):
  """T5 attention: q/k/v/o projections around `attention.attend`."""
  num_heads: int
  head_dim: int
  dropout_rate: float = 0.0
  implementation: Optional[str] = "xla"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs_q: jax.Array, inputs_kv: jax.Array, *,
               bias: Optional[jax.Array], is_causal: bool = False,
               kv_lengths: Optional[jax.Array] = None,
               mask: Optional[jax.Array] = None,
               deterministic: bool = True) -> jax.Array:
    joined = self.num_heads * self.head_dim
    depth_scaling = float(np.sqrt(self.head_dim))

    def query_init(*args):
      return ATTENTION_KERNEL_INIT(*args) / depth_scaling

    def project(name, x, init):
      y = Dense(joined, ("embed", "joined_kv"), init, self.dtype, name=name)(x)
      y = y.reshape(y.shape[:-1] + (self.num_heads, self.head_dim))
      return constrain(y, ("activation_batch", "activation_length",
                           "activation_heads", "activation_kv"))

    query = project("query", inputs_q, query_init)
    key = project("key", inputs_kv, ATTENTION_KERNEL_INIT)
    value = project("value", inputs_kv, ATTENTION_KERNEL_INIT)
    dropout_rng = None
    if not deterministic and self.dropout_rate > 0.0:
      dropout_rng = self.make_rng("dropout")
    x = attention_lib.attend(query, key, value, bias=bias, is_causal=is_causal,
                             kv_lengths=kv_lengths, mask=mask,
                             implementation=self.implementation,
                             dropout_rate=self.dropout_rate,
                             dropout_rng=dropout_rng)
    x = x.reshape(x.shape[:-2] + (joined,))
    out = Dense(inputs_q.shape[-1], ("joined_kv", "embed"), ATTENTION_KERNEL_INIT,
                self.dtype, name="out")(x)
    return constrain(out, ("activation_batch", "activation_length", "activation_embed"))


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
