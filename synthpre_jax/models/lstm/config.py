"""The LSTM model family: its configuration (a frozen dataclass, validated up front),
which builds the encoder-decoder or the classifier by `kind`."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from synthpre_jax.models import registry
from synthpre_jax.models.lstm import classifier
from synthpre_jax.models.lstm import seq2seq

_KINDS = ("seq2seq", "classifier")
_DTYPES = ("float32", "bfloat16", "float16")


@registry.register
@dataclasses.dataclass(frozen=True)
class LSTMConfig:
  """Hyper-parameters of the LSTM baselines (paper default: 4 layers x 256 units,
  bidirectional encoder).

  `emb_dim` must equal the T5 `d_model` (`T5Config.emb_dim`, 512 for T5 small) to take
  the embedding from a T5 checkpoint. `num_layers` is the depth of the encoder and of
  the seq2seq decoder. `kind`: 'seq2seq' (`LSTMSeq2Seq`) or 'classifier'
  (`LSTMClassifier`). `max_label_length`: the classifier's learned output positions.
  Raises ValueError naming a bad field.
  """

  vocab_size: int = 32128
  emb_dim: int = 512
  hidden_dim: int = 256
  num_layers: int = 4
  bidirectional: bool = True
  dropout_rate: float = 0.1
  dtype: str = "float32"
  kind: str = "seq2seq"
  max_label_length: int = 16

  def __post_init__(self):
    for name in ("vocab_size", "emb_dim", "hidden_dim", "num_layers", "max_label_length"):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"LSTMConfig.{name} must be a positive int, got {value!r}.")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(
          f"LSTMConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}.")
    if self.dtype not in _DTYPES:
      raise ValueError(f"LSTMConfig.dtype={self.dtype!r}; choose one of {_DTYPES}.")
    if self.kind not in _KINDS:
      raise ValueError(f"LSTMConfig.kind={self.kind!r}; choose one of {_KINDS} "
                       "('seq2seq': encoder-decoder with attention; 'classifier': "
                       "encoder with a classification head).")
    if not isinstance(self.bidirectional, bool):
      raise ValueError(f"LSTMConfig.bidirectional must be a bool, got {self.bidirectional!r}.")

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  @property
  def encoder_dim(self) -> int:
    """Width of the encoder outputs (both directions concatenated)."""
    return self.hidden_dim * (2 if self.bidirectional else 1)

  @property
  def embedding_names(self) -> tuple[str, ...]:
    """The input embedding and, for the encoder-decoder, its vocabulary projection."""
    if self.kind == "seq2seq":
      return ("token_embedder/embedding", "decoder/logits_dense/kernel")
    return ("token_embedder/embedding",)

  def replace(self, **changes) -> "LSTMConfig":
    return dataclasses.replace(self, **changes)

  def build(self) -> nn.Module:
    """`LSTMSeq2Seq` or `LSTMClassifier`, by `kind`."""
    if self.kind == "seq2seq":
      return seq2seq.LSTMSeq2Seq(self)
    return classifier.LSTMClassifier(self)

  def flops_per_step(self, batch: int, inputs_length: int, targets_length: int) -> float:
    """Training FLOPs (forward + backward, 3x forward) of one step at the given shape:
    matmuls only (gate projections, attention, head, vocabulary projection)."""
    h, four = self.hidden_dim, 4 * self.hidden_dim
    dirs = 2 if self.bidirectional else 1
    enc_in = [self.emb_dim] + [self.encoder_dim] * (self.num_layers - 1)
    enc_tok = sum(dirs * 2 * (i + h) * four for i in enc_in)
    fwd = batch * inputs_length * enc_tok
    d = self.encoder_dim
    if self.kind == "seq2seq":
      dec_in = [self.emb_dim] + [h] * (self.num_layers - 1)
      dec_tok = sum(2 * (i + h) * four for i in dec_in)
      dec_tok += (2 * h * d + 4 * inputs_length * d + 2 * (d + h) * h
                  + 2 * h * self.vocab_size)
      fwd += batch * targets_length * dec_tok
    else:
      fwd += batch * 2 * d * h + batch * targets_length * 2 * h * self.vocab_size
    return 3.0 * fwd
