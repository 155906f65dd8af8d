"""The T5 model family: its configuration, a frozen dataclass validated up front."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Sequence

import jax.numpy as jnp

from synthpre_jax.models import network
from synthpre_jax.models import registry

_ACTIVATIONS = ("relu", "gelu", "linear", "silu")
_DTYPES = ("float32", "bfloat16", "float16")
_ATTENTION_IMPLS = ("auto", "xla", "cudnn")
_REMAT = ("none", "full", "minimal")


@registry.register
@dataclasses.dataclass(frozen=True)
class T5Config:
  """Hyper-parameters of a T5 encoder-decoder (T5X `network.T5Config` names).

  `dtype` is the compute dtype; parameters are always stored in float32. The output
  logits are computed in `logits_dtype` (float32 as T5X, for a stable softmax).
  `attention_implementation='auto'` picks cuDNN's fused kernel on GPU with a
  16-bit dtype and XLA otherwise.
  """

  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 8
  head_dim: int = 64
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  mlp_dim: int = 2048
  mlp_activations: Sequence[str] = ("relu",)
  dropout_rate: float = 0.1
  logits_via_embedding: bool = True
  dtype: str = "float32"
  logits_dtype: str = "float32"
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  attention_implementation: str = "auto"
  remat_policy: str = "none"

  # The input embedding and, for untied models (T5 v1.1), the output layer.
  embedding_names: ClassVar[tuple[str, ...]] = ("token_embedder/embedding",
                                                "decoder/logits_dense/kernel")

  def __post_init__(self):
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    positive = ("vocab_size", "emb_dim", "num_heads", "head_dim",
                "num_encoder_layers", "num_decoder_layers", "mlp_dim",
                "relative_attention_num_buckets",
                "relative_attention_max_distance")
    for name in positive:
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"T5Config.{name} must be a positive int, got {value!r}.")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(
          f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate}.")
    bad = [a for a in self.mlp_activations if a not in _ACTIVATIONS]
    if not self.mlp_activations or bad:
      raise ValueError(
          f"T5Config.mlp_activations={self.mlp_activations!r}: each entry must "
          f"be one of {_ACTIVATIONS} (T5 v1.0: ('relu',); v1.1: ('gelu', 'linear')).")
    for name in ("dtype", "logits_dtype"):
      if getattr(self, name) not in _DTYPES:
        raise ValueError(f"T5Config.{name}={getattr(self, name)!r}; choose one of {_DTYPES}.")
    if self.attention_implementation not in _ATTENTION_IMPLS:
      raise ValueError(
          f"T5Config.attention_implementation={self.attention_implementation!r}; "
          f"choose one of {_ATTENTION_IMPLS}.")
    if self.remat_policy not in _REMAT:
      raise ValueError(f"T5Config.remat_policy={self.remat_policy!r}; choose one of {_REMAT}.")
    if self.relative_attention_num_buckets % 2:
      raise ValueError("T5Config.relative_attention_num_buckets must be even "
                       "(the encoder splits buckets between the two directions).")

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  def replace(self, **changes) -> "T5Config":
    return dataclasses.replace(self, **changes)

  def build(self) -> network.Transformer:
    """The T5 encoder-decoder network of this configuration."""
    return network.Transformer(self)

  def flops_per_step(self, batch: int, inputs_length: int, targets_length: int) -> float:
    """Training FLOPs (forward + backward, 3x forward) of one step at the given shape:
    matmuls and attention scores; a gated MLP (T5 v1.1) counts its extra projection."""
    d, f, hd = self.emb_dim, self.mlp_dim, self.num_heads * self.head_dim
    n_wi = len(self.mlp_activations)
    mlp = (n_wi + 1) * d * f
    enc_layer = 4 * d * hd + mlp
    dec_layer = 8 * d * hd + mlp
    li, lt = inputs_length, targets_length
    fwd = 2 * batch * (li * enc_layer * self.num_encoder_layers
                       + lt * dec_layer * self.num_decoder_layers
                       + lt * d * self.vocab_size)
    fwd += 4 * batch * hd * (self.num_encoder_layers * li * li
                             + self.num_decoder_layers * (lt * lt + lt * li))
    return 3.0 * fwd
