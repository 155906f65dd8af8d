"""LSTM baselines of "To Pretrain or Not to Pretrain" (Wang et al. 2020), in Flax.

Two networks with the T5 `Transformer`'s call signature and output contract,
`model(encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
decoder_segment_ids=None, enable_dropout=False) -> logits [B, T_dec, vocab]`, so the
project's train/eval steps, losses and metrics train them unchanged:

* `LSTMSeq2Seq`: token embedding (`token_embedder/embedding`, T5's name and shape, so
  the third arm can copy it from a T5 checkpoint), a multi-layer bidirectional LSTM
  encoder, a multi-layer unidirectional LSTM decoder teacher-forced on
  `decoder_input_tokens`, and Luong "general" global attention (Luong et al. 2015,
  without input feeding): the top decoder state h_t scores every encoder output e_s
  with h_t^T W_a e_s (no scaling), masked to the real encoder positions; the context
  c_t (attention-weighted sum of e_s) gives the attentional state
  tanh(W_c [c_t; h_t]), which a vocabulary projection turns into logits. Without input
  feeding every decoder layer runs over the whole target sequence at once in training
  (one input projection for all positions, then one scan), and a decode step needs
  only the LSTM states: the decoder's initial states are zeros (the encoder reaches
  the decoder through attention only).
* `LSTMClassifier`: the same embedding and encoder, max-pooling of the top encoder
  layer over the real positions, and an MLP head. A classification target is written
  as "<label word(s)> EOS" like for T5, so the logits at decoder position t are
  `logits_dense(relu(hidden(pooled) + position_embedding[t]))`: the pooled sentence
  vector plus a learned embedding of the output position t (positions at or beyond
  `max_label_length` share the last row). They do not depend on the decoder input
  tokens; the same loss and token/sequence accuracy apply as for T5.

Both implement the cached-decoding protocol of `synthpre_jax.decoding` (`encode`,
`init_decoder_cache` creating the `cache` and `cross_cache` collections,
`decode_step`), so greedy search runs through the project's decoder; the seq2seq model
also supports beam search (its cache is the per-layer LSTM states, all [batch, ...]).
The classifier sets `supports_beam_search = False`: its positions are independent, so
there is nothing to search. `generate` is a self-contained greedy decoder for both.

Padding: inputs are right-padded (id 0), unpacked. The forward direction is causal so
padding after a sequence cannot reach its real positions; the backward direction
reverses each row within its own length (padding stays at the end), and attention and
pooling are masked to the real positions. Packed batches (segment ids) are refused.

Sharding (logical axes of `synthpre_jax.partitioning.LOGICAL_AXIS_RULES`): the
embedding is ('vocab', 'embed') as in T5, the vocabulary projection ('embed', 'vocab'),
the LSTM input kernels ('embed', 'mlp') with their biases ('mlp',): these are the
position-parallel matmuls. The recurrent kernels (used inside the sequential scan),
the attention, the classifier head and its position table are small and replicated.
Parameters are float32; `dtype` is the compute dtype (LSTM cell states stay float32,
logits are float32). Init: embedding N(0, 1) as T5; every kernel truncated normal with
variance 1 / fan_in; biases 0 except the forget gates' (1). Dropout (`dropout_rate`,
when `enable_dropout`): on the embeddings, on every LSTM layer's output and before the
vocabulary projection.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from synthpre_jax.models import layers

_KINDS = ("seq2seq", "classifier")
_DTYPES = ("float32", "bfloat16", "float16")
PAD_ID = 0
# A large finite negative for masked attention scores (no inf - inf = nan).
_NEG = -1.0e9

# Every kernel, the recurrent ones included: truncated normal with variance 1 / fan_in
# (no orthogonal init: its QR decompositions are slow to compile on CPU, and PyTorch's
# and fairseq's LSTMs do without it too). Forget-gate biases start at 1.
KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
  """Hyper-parameters of the LSTM baselines (paper default: 4 layers x 256 units,
  bidirectional encoder).

  `emb_dim` must equal the T5 `d_model` (`T5Config.emb_dim`, 512 for T5 small) to take
  the embedding from a T5 checkpoint. `num_layers` is the depth of the encoder and of
  the seq2seq decoder. `kind`: 'seq2seq' (`LSTMSeq2Seq`) or 'classifier'
  (`LSTMClassifier`). `max_label_length`: the classifier's learned output positions.
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

  def replace(self, **changes) -> "LSTMConfig":
    return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------
# The LSTM itself.


def _param(module: nn.Module, name: str, init, shape: tuple, axes: tuple) -> jax.Array:
  return module.param(name, nn.with_logical_partitioning(init, axes), shape, jnp.float32)


def _bias_init(key, shape, dtype=jnp.float32):
  """Gates in order (input, forget, cell, output); forget-gate bias 1."""
  del key
  h = shape[0] // 4
  return jnp.zeros(shape, dtype).at[h:2 * h].set(1.0)


class LSTMWeights(nn.Module):
  """One direction of one LSTM layer: `input_kernel` [in, 4H], `recurrent_kernel`
  [H, 4H], `bias` [4H], gates in the order (input, forget, cell, output)."""
  in_features: int
  hidden_dim: int
  dtype: Any = jnp.float32

  def setup(self):
    four = 4 * self.hidden_dim
    self.input_kernel = _param(self, "input_kernel", KERNEL_INIT,
                               (self.in_features, four), ("embed", "mlp"))
    self.recurrent_kernel = _param(self, "recurrent_kernel", KERNEL_INIT,
                                   (self.hidden_dim, four), (None, None))
    self.bias = _param(self, "bias", _bias_init, (four,), ("mlp",))

  def project(self, x: jax.Array) -> jax.Array:
    """Input contribution to the gates, for any leading shape: [..., in] -> [..., 4H]."""
    y = jnp.dot(x.astype(self.dtype), self.input_kernel.astype(self.dtype))
    return y.astype(jnp.float32) + self.bias

  def recurrent(self) -> jax.Array:
    return self.recurrent_kernel


def _cell(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
  """LSTM update from the summed pre-activations [.., 4H] and the cell state [.., H]."""
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return jax.nn.sigmoid(o) * jnp.tanh(c), c


def run_lstm(gates_in: jax.Array, recurrent: jax.Array, dtype: Any) -> jax.Array:
  """Runs D independent LSTMs in one scan (D = 2 for the two directions of a layer).

  gates_in: [D, B, T, 4H] input contributions (bias included); recurrent: [D, H, 4H].
  Starts from zero states; returns the hidden states [D, B, T, H] (float32).
  """
  d, b, _, four = gates_in.shape
  h0 = jnp.zeros((d, b, four // 4), jnp.float32)
  w = recurrent.astype(dtype)

  def step(carry, g_t):
    h, c = carry
    gates = g_t + jnp.einsum("dbh,dhk->dbk", h.astype(dtype), w).astype(jnp.float32)
    h, c = _cell(gates, c)
    return (h, c), h

  _, hs = jax.lax.scan(step, (h0, h0), jnp.moveaxis(gates_in, 2, 0))
  return jnp.moveaxis(hs, 0, 2)


def reverse_index(lengths: jax.Array, length: int) -> jax.Array:
  """[B, T] gather indices reversing each row's first `lengths` positions and leaving
  its padding in place (an involution: applying it twice is the identity)."""
  t = jnp.arange(length, dtype=jnp.int32)[None, :]
  lengths = lengths[:, None]
  return jnp.where(t < lengths, lengths - 1 - t, t)


def _take_time(x: jax.Array, index: jax.Array) -> jax.Array:
  """x [B, T, F] gathered along time by index [B, T]."""
  return jnp.take_along_axis(x, index[:, :, None], axis=1)


def token_lengths(tokens: jax.Array) -> jax.Array:
  """Real (non-padding) tokens per right-padded row."""
  return jnp.sum(tokens != PAD_ID, axis=-1).astype(jnp.int32)


def _refuse_packing(*segment_ids) -> None:
  if any(s is not None for s in segment_ids):
    raise ValueError(
        "The LSTM models take unpacked, right-padded batches; got segment ids (a packed "
        "batch). Turn packing off for LSTM runs (train.pack = False).")


def _dropout(x, rate: float, deterministic: bool):
  return nn.Dropout(rate)(x, deterministic=deterministic)


class BiLSTMLayer(nn.Module):
  """One encoder layer: `forward` (and `backward` when bidirectional) LSTM weights; both
  directions run in one scan. x [B, S, in] -> [B, S, encoder_dim]."""
  config: LSTMConfig
  in_features: int

  def setup(self):
    cfg = self.config
    self.forward = LSTMWeights(self.in_features, cfg.hidden_dim, cfg.compute_dtype)
    if cfg.bidirectional:
      self.backward = LSTMWeights(self.in_features, cfg.hidden_dim, cfg.compute_dtype)

  def __call__(self, x: jax.Array, rev: Optional[jax.Array]) -> jax.Array:
    cfg = self.config
    gates, kernels = [self.forward.project(x)], [self.forward.recurrent()]
    if cfg.bidirectional:
      # Each row reversed within its length, so the backward LSTM starts at its last
      # real token and never sees the row's padding before a real position.
      gates.append(_take_time(self.backward.project(x), rev))
      kernels.append(self.backward.recurrent())
    hs = run_lstm(jnp.stack(gates), jnp.stack(kernels), cfg.compute_dtype)
    outs = [hs[0]]
    if cfg.bidirectional:
      outs.append(_take_time(hs[1], rev))
    return jnp.concatenate(outs, axis=-1).astype(cfg.compute_dtype)


class BiLSTMEncoder(nn.Module):
  """`num_layers` LSTM layers (`layers_i/forward|backward`) over the embedded tokens,
  each bidirectional (outputs of both directions concatenated) when
  `config.bidirectional`; dropout on the embeddings and on every layer's output.
  Returns [B, S, encoder_dim]."""
  config: LSTMConfig

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array, deterministic: bool) -> jax.Array:
    cfg = self.config
    x = _dropout(x, cfg.dropout_rate, deterministic)
    rev = reverse_index(lengths, x.shape[1]) if cfg.bidirectional else None
    for i in range(cfg.num_layers):
      x = BiLSTMLayer(cfg, x.shape[-1], name=f"layers_{i}")(x, rev)
      x = _dropout(x, cfg.dropout_rate, deterministic)
    return layers.constrain(x, ("activation_batch", "activation_length", "activation_embed"))


class LuongAttention(nn.Module):
  """Luong "general" global attention: scores h_t^T W_a e_s over the real encoder
  positions, context c_t, attentional state tanh(W_c [c_t; h_t]) of width `features`."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, encoded: jax.Array, enc_lengths: jax.Array) -> jax.Array:
    """h [B, T, H], encoded [B, S, D], enc_lengths [B] -> [B, T, features]."""
    dtype = self.dtype
    w_a = _param(self, "query_kernel", KERNEL_INIT, (h.shape[-1], encoded.shape[-1]),
                 (None, None))
    w_c = _param(self, "out_kernel", KERNEL_INIT,
                 (encoded.shape[-1] + h.shape[-1], self.features), (None, None))
    q = jnp.dot(h.astype(dtype), w_a.astype(dtype))
    scores = jnp.einsum("btd,bsd->bts", q, encoded.astype(dtype)).astype(jnp.float32)
    real = jnp.arange(encoded.shape[1])[None, None, :] < enc_lengths[:, None, None]
    weights = jax.nn.softmax(jnp.where(real, scores, _NEG), axis=-1)
    context = jnp.einsum("bts,bsd->btd", weights.astype(dtype), encoded.astype(dtype))
    joined = jnp.concatenate([context, h.astype(dtype)], axis=-1)
    return jnp.tanh(jnp.dot(joined, w_c.astype(dtype)))


class VocabProjection(nn.Module):
  """Dense layer with bias to vocabulary logits (float32), T5's logits axes."""
  vocab_size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = _param(self, "kernel", KERNEL_INIT, (x.shape[-1], self.vocab_size),
                    ("embed", "vocab"))
    bias = _param(self, "bias", nn.initializers.zeros, (self.vocab_size,), ("vocab",))
    logits = jnp.dot(x.astype(jnp.float32), kernel) + bias
    return layers.constrain(logits, ("activation_batch", "activation_length",
                                     "activation_vocab"))


def _embed(embedder: nn.Module, tokens: jax.Array) -> jax.Array:
  x = embedder(tokens.astype(jnp.int32))
  return layers.constrain(x, ("activation_batch", "activation_length", "activation_embed"))


# ---------------------------------------------------------------------------------
# Seq2seq.


class LSTMDecoder(nn.Module):
  """Teacher-forced LSTM decoder with Luong attention, and its cached decode modes
  (`decode='init'`: create the `cache` (per-layer `h_i`, `c_i` [B, H]) and
  `cross_cache` (`encoded`, `encoder_lengths`) collections; `decode='step'`: one token
  [B, 1] -> logits [B, 1, V], advancing the cache)."""
  config: LSTMConfig
  shared_embedding: nn.Module

  def _layer(self, i: int, in_features: int) -> LSTMWeights:
    cfg = self.config
    return LSTMWeights(in_features, cfg.hidden_dim, cfg.compute_dtype, name=f"layers_{i}")

  def _in_features(self, i: int) -> int:
    return self.config.emb_dim if i == 0 else self.config.hidden_dim

  def _head(self, h, encoded, enc_lengths, deterministic: bool):
    cfg = self.config
    y = LuongAttention(cfg.hidden_dim, cfg.compute_dtype, name="attention")(
        h, encoded, enc_lengths)
    y = _dropout(y, cfg.dropout_rate, deterministic)
    return VocabProjection(cfg.vocab_size, name="logits_dense")(y)

  @nn.compact
  def __call__(self, encoded, enc_lengths, decoder_input_tokens,
               enable_dropout: bool = False, *, decode: Optional[str] = None,
               max_decode_length: Optional[int] = None):
    cfg = self.config
    if decode == "init":
      return self._init_cache(encoded, enc_lengths, max_decode_length)
    if decode == "step":
      return self._step(decoder_input_tokens)
    if decode is not None:
      raise ValueError(f"decode={decode!r}; choose None, 'init' or 'step'.")
    det = not enable_dropout
    y = _dropout(_embed(self.shared_embedding, decoder_input_tokens), cfg.dropout_rate, det)
    for i in range(cfg.num_layers):
      layer = self._layer(i, self._in_features(i))
      hs = run_lstm(layer.project(y)[None], layer.recurrent()[None], cfg.compute_dtype)[0]
      y = _dropout(hs.astype(cfg.compute_dtype), cfg.dropout_rate, det)
    return self._head(y, encoded, enc_lengths, det)

  def _init_cache(self, encoded, enc_lengths, max_decode_length):
    cfg = self.config
    if max_decode_length is not None and (not isinstance(max_decode_length, int)
                                          or max_decode_length <= 0):
      raise ValueError(
          f"max_decode_length must be a positive int, got {max_decode_length!r}.")
    batch = encoded.shape[0]
    if enc_lengths.shape != (batch,):
      raise ValueError(f"encoded batch {batch} does not match encoder_tokens' "
                       f"{enc_lengths.shape}.")
    self.variable("cross_cache", "encoded", lambda: encoded)
    self.variable("cross_cache", "encoder_lengths", lambda: enc_lengths)
    zeros = jnp.zeros((batch, cfg.hidden_dim), jnp.float32)
    for i in range(cfg.num_layers):
      self.variable("cache", f"h_{i}", lambda: zeros)
      self.variable("cache", f"c_{i}", lambda: zeros)
    return None

  def _step(self, tokens):
    cfg = self.config
    if not self.has_variable("cache", "h_0"):
      raise ValueError("No decoder cache: run init_decoder_cache (apply with "
                       "mutable=['cache', 'cross_cache']) before decode_step.")
    if tokens.ndim != 2 or tokens.shape[1] != 1:
      raise ValueError(f"decode_step takes tokens of shape [batch, 1], got {tokens.shape}.")
    x = _embed(self.shared_embedding, tokens)[:, 0]
    for i in range(cfg.num_layers):
      layer = self._layer(i, self._in_features(i))
      h_var, c_var = self.variable("cache", f"h_{i}"), self.variable("cache", f"c_{i}")
      rec = jnp.dot(h_var.value.astype(cfg.compute_dtype),
                    layer.recurrent().astype(cfg.compute_dtype)).astype(jnp.float32)
      h, c = _cell(layer.project(x) + rec, c_var.value)
      h_var.value, c_var.value = h, c
      x = h.astype(cfg.compute_dtype)
    encoded = self.get_variable("cross_cache", "encoded")
    enc_lengths = self.get_variable("cross_cache", "encoder_lengths")
    return self._head(x[:, None], encoded, enc_lengths, True)


class LSTMSeq2Seq(nn.Module):
  """Bidirectional LSTM encoder + LSTM decoder with Luong attention (see module doc)."""
  config: LSTMConfig
  supports_decoding: ClassVar[bool] = True
  supports_beam_search: ClassVar[bool] = True

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.compute_dtype)
    self.encoder = BiLSTMEncoder(cfg)
    self.decoder = LSTMDecoder(cfg, self.token_embedder)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout: bool = False):
    """Encoder outputs [B, S, encoder_dim] (garbage at padding, masked downstream)."""
    _refuse_packing(encoder_segment_ids)
    x = _embed(self.token_embedder, encoder_input_tokens)
    return self.encoder(x, token_lengths(encoder_input_tokens), not enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None,
             enable_dropout: bool = False):
    _refuse_packing(encoder_segment_ids, decoder_segment_ids)
    return self.decoder(encoded, token_lengths(encoder_input_tokens),
                        decoder_input_tokens, enable_dropout)

  def init_decoder_cache(self, encoded, encoder_input_tokens, max_decode_length: int):
    """Creates `cache` (zero LSTM states) and `cross_cache` (encoder outputs, lengths);
    apply with mutable=['cache', 'cross_cache']."""
    return self.decoder(encoded, token_lengths(encoder_input_tokens), None,
                        decode="init", max_decode_length=max_decode_length)

  def decode_step(self, decoder_input_tokens):
    """Logits [B, 1, V] of the next position for tokens [B, 1]; advances the cache."""
    return self.decoder(None, None, decoder_input_tokens, decode="step")

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, enable_dropout)


# ---------------------------------------------------------------------------------
# Classifier.


class ClassifierHead(nn.Module):
  """pooled [B, D] -> hidden [B, H] (`hidden`, with bias); the logits of output
  position t are `logits_dense(relu(hidden + position_embedding[min(t, P - 1)]))`."""
  config: LSTMConfig

  def setup(self):
    cfg = self.config
    self.hidden_kernel = _param(self, "hidden_kernel", KERNEL_INIT,
                                (cfg.encoder_dim, cfg.hidden_dim), (None, None))
    self.hidden_bias = _param(self, "hidden_bias", nn.initializers.zeros,
                              (cfg.hidden_dim,), (None,))
    self.position_embedding = _param(
        self, "position_embedding", nn.initializers.normal(stddev=1.0),
        (cfg.max_label_length, cfg.hidden_dim), (None, None))
    self.logits_dense = VocabProjection(cfg.vocab_size)
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


class _ClassifierDecodeState(nn.Module):
  """The classifier's decoding state: `cross_cache/hidden` [B, H] and the scalar
  `cache/cache_index`. Called with the hidden vector: creates both; with None: returns
  (hidden, index) and advances the index."""

  @nn.compact
  def __call__(self, hidden: Optional[jax.Array]):
    if hidden is not None:
      self.variable("cross_cache", "hidden", lambda: hidden)
      self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
      return None
    if not self.has_variable("cache", "cache_index"):
      raise ValueError("No decoder cache: run init_decoder_cache (apply with "
                       "mutable=['cache', 'cross_cache']) before decode_step.")
    index = self.variable("cache", "cache_index")
    current = index.value
    index.value = current + 1
    return self.get_variable("cross_cache", "hidden"), current


class LSTMClassifier(nn.Module):
  """Bidirectional LSTM encoder, max-pooling over real positions, MLP head with
  learned output positions (see module doc). Decodable greedily (one logits row per
  output position, independent of the previous tokens); no beam search."""
  config: LSTMConfig
  supports_decoding: ClassVar[bool] = True
  supports_beam_search: ClassVar[bool] = False

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.compute_dtype)
    self.encoder = BiLSTMEncoder(cfg)
    self.head = ClassifierHead(cfg)
    self.decode_state = _ClassifierDecodeState()

  def encode(self, encoder_input_tokens, encoder_segment_ids=None,
             enable_dropout: bool = False):
    """The head's hidden vector [B, H] from the max-pooled encoder outputs (a row with
    no real token pools to zeros)."""
    _refuse_packing(encoder_segment_ids)
    lengths = token_lengths(encoder_input_tokens)
    x = _embed(self.token_embedder, encoder_input_tokens)
    out = self.encoder(x, lengths, not enable_dropout).astype(jnp.float32)
    real = jnp.arange(out.shape[1])[None, :, None] < lengths[:, None, None]
    pooled = jnp.max(jnp.where(real, out, -jnp.inf), axis=1)
    pooled = jnp.where(lengths[:, None] > 0, pooled, 0.0)
    return self.head.hidden(pooled)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None,
             enable_dropout: bool = False):
    del encoder_input_tokens
    _refuse_packing(encoder_segment_ids, decoder_segment_ids)
    positions = jnp.arange(decoder_input_tokens.shape[1], dtype=jnp.int32)
    return self.head.logits(encoded, positions, not enable_dropout)

  def init_decoder_cache(self, encoded, encoder_input_tokens, max_decode_length: int):
    """`cross_cache/decode_state/hidden` = the head's hidden vector;
    `cache/decode_state/cache_index` = 0. Apply with mutable=['cache', 'cross_cache']."""
    del encoder_input_tokens, max_decode_length
    self.decode_state(encoded)
    return None

  def decode_step(self, decoder_input_tokens):
    """Logits [B, 1, V] of the next output position (the tokens are not used)."""
    del decoder_input_tokens  # the logits depend on the position only
    hidden, index = self.decode_state(None)
    return self.head.logits(hidden, index[None], True)

  def __call__(self, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None,
               enable_dropout: bool = False):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, enable_dropout)


def flops_per_step(config: LSTMConfig, batch: int, inputs_length: int,
                   targets_length: int) -> float:
  """Training FLOPs (forward + backward, 3x forward) of one step at the given shape:
  matmuls only (gate projections, attention, head, vocabulary projection)."""
  h, four = config.hidden_dim, 4 * config.hidden_dim
  dirs = 2 if config.bidirectional else 1
  enc_in = [config.emb_dim] + [config.encoder_dim] * (config.num_layers - 1)
  enc_tok = sum(dirs * 2 * (i + h) * four for i in enc_in)
  fwd = batch * inputs_length * enc_tok
  d = config.encoder_dim
  if config.kind == "seq2seq":
    dec_in = [config.emb_dim] + [h] * (config.num_layers - 1)
    dec_tok = sum(2 * (i + h) * four for i in dec_in)
    dec_tok += 2 * h * d + 4 * inputs_length * d + 2 * (d + h) * h + 2 * h * config.vocab_size
    fwd += batch * targets_length * dec_tok
  else:
    fwd += batch * 2 * d * h + batch * targets_length * 2 * h * config.vocab_size
  return 3.0 * fwd
