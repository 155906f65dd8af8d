"""The decoder-only family's configuration, a frozen dataclass validated up front."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Sequence

import jax.numpy as jnp

from synthpre_jax.models import registry
from synthpre_jax.models.decoder_only import lm_batch, network

_ACTIVATIONS = ("relu", "gelu", "linear", "silu")
_DTYPES = ("float32", "bfloat16", "float16")
_REMAT = ("none", "full", "minimal")


@registry.register
@dataclasses.dataclass(frozen=True)
class DecoderOnlyConfig:
  """Hyper-parameters of a T5X-style decoder-only Transformer (T5Config's names).

  The model reads `[inputs | decoder inputs]` as one sequence; `prefix_lm=True` lets the
  inputs attend to each other in both directions (a prefix LM), otherwise attention is
  causal throughout. `loss_on='targets'` (default) puts the training loss on the
  target positions only; `loss_on='all'` trains on the concatenation `inputs + targets`
  as plain language modelling (`lm_batch.concatenated`; train and in-training
  validation steps; evaluation and decoding keep the inputs/targets framing). Parameters are stored in
  float32; `dtype` is the compute dtype, `logits_dtype` that of the output logits.
  `remat_policy` ('none', 'full', 'minimal') recomputes each layer in the backward pass
  as `T5Config.remat_policy` does.
  """

  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 8
  head_dim: int = 64
  num_layers: int = 6
  mlp_dim: int = 2048
  mlp_activations: Sequence[str] = ("relu",)
  dropout_rate: float = 0.1
  logits_via_embedding: bool = True
  prefix_lm: bool = False
  dtype: str = "float32"
  logits_dtype: str = "float32"
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  remat_policy: str = "none"
  loss_on: str = "targets"

  # The input embedding and, for untied models, the output layer.
  embedding_names: ClassVar[tuple[str, ...]] = ("token_embedder/embedding",
                                                "decoder/logits_dense/kernel")

  def __post_init__(self):
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    positive = ("vocab_size", "emb_dim", "num_heads", "head_dim", "num_layers", "mlp_dim",
                "relative_attention_num_buckets", "relative_attention_max_distance")
    for name in positive:
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"DecoderOnlyConfig.{name} must be a positive int, got {value!r}.")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(
          f"DecoderOnlyConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}.")
    bad = [a for a in self.mlp_activations if a not in _ACTIVATIONS]
    if not self.mlp_activations or bad:
      raise ValueError(f"DecoderOnlyConfig.mlp_activations={self.mlp_activations!r}: each "
                       f"entry must be one of {_ACTIVATIONS}.")
    for name in ("dtype", "logits_dtype"):
      if getattr(self, name) not in _DTYPES:
        raise ValueError(
            f"DecoderOnlyConfig.{name}={getattr(self, name)!r}; choose one of {_DTYPES}.")
    if self.remat_policy not in _REMAT:
      raise ValueError(
          f"DecoderOnlyConfig.remat_policy={self.remat_policy!r}; choose one of {_REMAT}.")

    if self.loss_on not in lm_batch.LOSS_ON:
      raise ValueError(
          f"DecoderOnlyConfig.loss_on={self.loss_on!r}; choose one of {lm_batch.LOSS_ON}.")

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  def replace(self, **changes) -> "DecoderOnlyConfig":
    return dataclasses.replace(self, **changes)

  def build(self) -> network.DecoderOnly:
    """The decoder-only network of this configuration."""
    return network.DecoderOnly(self)

  def training_batch(self, batch):
    """The batch the train and validation steps compute the loss on (see `loss_on`)."""
    return lm_batch.concatenated(batch) if self.loss_on == "all" else batch

  def flops_per_step(self, batch: int, inputs_length: int, targets_length: int) -> float:
    """Training FLOPs (forward + backward, 3x forward) of one step: every layer runs the
    whole `inputs + targets` sequence (causal attention counted in full, as for T5's
    decoder); the logits only at the target positions."""
    d, f, hd = self.emb_dim, self.mlp_dim, self.num_heads * self.head_dim
    layer = 4 * d * hd + (len(self.mlp_activations) + 1) * d * f
    length = inputs_length + targets_length
    fwd = 2 * batch * (length * layer * self.num_layers + targets_length * d * self.vocab_size)
    fwd += 4 * batch * hd * self.num_layers * length * length
    return 3.0 * fwd
