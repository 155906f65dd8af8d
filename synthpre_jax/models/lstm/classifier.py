"""The LSTM text classifier baseline (Wang et al. 2020): bidirectional LSTM encoder,
max-pooling over the real positions, and an MLP head that scores the label tokens.

A label is written as "<label word(s)> EOS" as for T5, so the classifier emits one
logits row per output position t: `logits_dense(relu(hidden(pooled) +
position_embedding[min(t, max_label_length - 1)]))`. The rows depend on the inputs and
the position only, so the whole label comes from one forward pass (`label_logits`);
there is no decoder and nothing to search.

Parameter names: `token_embedder/embedding`, `encoder/layers_i/...`,
`head/{hidden_kernel,hidden_bias,position_embedding}`, `head/logits_dense/{kernel,bias}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthpre_jax.models import layers
from synthpre_jax.models.lstm import cells

if TYPE_CHECKING:  # the config module builds the models, so it imports this one
  from synthpre_jax.models.lstm.config import LSTMConfig


class ClassifierHead(nn.Module):
  """pooled [B, D] -> hidden [B, H] (`hidden`, with bias); the logits of output
  position t are `logits_dense(relu(hidden + position_embedding[min(t, P - 1)]))`."""
  config: LSTMConfig

  def setup(self):
    cfg = self.config
    self.hidden_kernel = cells.param(self, "hidden_kernel", cells.KERNEL_INIT,
                                     (cfg.encoder_dim, cfg.hidden_dim), (None, None))
    self.hidden_bias = cells.param(self, "hidden_bias", nn.initializers.zeros,
                                   (cfg.hidden_dim,), (None,))
    self.position_embedding = cells.param(
        self, "position_embedding", nn.initializers.normal(stddev=1.0),
        (cfg.max_label_length, cfg.hidden_dim), (None, None))
    self.logits_dense = cells.VocabProjection(cfg.vocab_size)
    self.dropout = nn.Dropout(cfg.dropout_rate)

  def hidden(self, pooled: jax.Array) -> jax.Array:
    dtype = self.config.compute_dtype
    return jnp.dot(pooled.astype(dtype), self.hidden_kernel.astype(dtype)).astype(
        jnp.float32) + self.hidden_bias

  def logits(self, hidden: jax.Array, positions: jax.Array, deterministic: bool):
    """hidden [B, H], positions [T] (int) -> logits [B, T, V]."""
    cfg = self.config
    positions = jnp.minimum(positions, cfg.max_label_length - 1)
    z = jax.nn.relu(hidden[:, None, :] + jnp.take(self.position_embedding, positions, axis=0))
    z = self.dropout(z.astype(cfg.compute_dtype), deterministic=deterministic)
    return self.logits_dense(z)


class LSTMClassifier(nn.Module):
  """Bidirectional LSTM encoder, max-pooling over real positions, MLP head.

  `__call__(encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
  decoder_segment_ids=None, enable_dropout=False)` -> logits [B, T_dec, vocab], the
  trainer's call signature: only the length T_dec of `decoder_input_tokens` is used.
  Prediction (`synthpre_jax.decoding.LabelPredictor`): `label_logits`. Packed batches
  (segment ids) raise ValueError.
  """
  config: LSTMConfig

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.compute_dtype)
    self.encoder = cells.BiLSTMEncoder(cfg)
    self.head = ClassifierHead(cfg)

  def features(self, encoder_input_tokens, encoder_segment_ids=None,
               enable_dropout: bool = False) -> jax.Array:
    """The head's hidden vector [B, H] from the max-pooled encoder outputs (a row with
    no real token pools to zeros)."""
    cells.refuse_packing(encoder_segment_ids)
    lengths = cells.token_lengths(encoder_input_tokens)
    x = cells.embed(self.token_embedder, encoder_input_tokens)
    out = self.encoder(x, lengths, not enable_dropout).astype(jnp.float32)
    real = jnp.arange(out.shape[1])[None, :, None] < lengths[:, None, None]
    pooled = jnp.max(jnp.where(real, out, -jnp.inf), axis=1)
    pooled = jnp.where(lengths[:, None] > 0, pooled, 0.0)
    return self.head.hidden(pooled)

  def label_logits(self, encoder_input_tokens, num_positions: int,
                   encoder_segment_ids=None, enable_dropout: bool = False) -> jax.Array:
    """Logits [B, num_positions, V] of the label's output positions 0..num_positions-1,
    from the inputs alone (one forward pass)."""
    hidden = self.features(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    positions = jnp.arange(num_positions, dtype=jnp.int32)
    return self.head.logits(hidden, positions, not enable_dropout)

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    cells.refuse_packing(encoder_segment_ids, decoder_segment_ids)
    return self.label_logits(encoder_input_tokens, decoder_input_tokens.shape[1],
                             encoder_segment_ids, enable_dropout)
