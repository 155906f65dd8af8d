"""Greedy and beam search for encoder-decoder models, with T5X semantics (TF-free).

The encoder runs once per batch, `init_decoder_cache` fills the model's cache, and each
step feeds one token per row through `decode_step`; everything is one jit-compiled
program (`jax.lax.while_loop`, which stops early once every row is done).

Conventions (T5): the decoder starts from token 0 (pad), EOS is 1, and outputs are
[batch, max_decode_length] int32 arrays whose positions after the first EOS are 0.
The EOS itself is kept, as in T5X (a vocabulary's decode stops there).

Beam search follows T5X's `decoding.beam_search`: keep the top 2K of the K x vocab
extensions; those ending in EOS move into a finished set scored
`log_prob / ((5 + length) / 6) ** alpha` (length counts the EOS), the best K others
stay live; stop at `max_decode_length` or once no live beam can still beat the worst
finished one; a row whose beams never finished returns its live beams with their raw
log-probabilities. Unlike T5X (ascending), beams come back best first.

Greedy search returns each row's argmax path; its score is the sum of the chosen
tokens' log-probabilities up to and including EOS (no length penalty). `predict_batch`
runs it for `num_beams=1`; call `beam_search` directly for T5X's 1-beam behaviour
(docs/models.md says where the two differ).

Typical use: `decoding.predict_batch(model_config, params, encoder_input_tokens,
max_decode_length=128, num_beams=4, alpha=0.6, mesh=mesh)`.

A model is decoded when it implements `Decodable` (the T5 `Transformer`, the LSTM
encoder-decoder); a `LabelPredictor` (the LSTM classifier, whose output positions do
not depend on each other) is predicted in one forward pass with greedy conventions and
refuses beam search; any other model gets a ValueError.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from synthpre_jax import partitioning
from synthpre_jax.models import registry

PAD_ID = 0
EOS_ID = 1
# T5X's stand-in for -inf: keeps arithmetic finite (no inf - inf = nan).
NEG_INF = -1.0e7

PyTree = Any
# (flat token ids [rows], cache) -> (float32 logits [rows, vocab], new cache)
TokensToLogits = Callable[[jax.Array, PyTree], tuple[jax.Array, PyTree]]


def brevity_penalty(alpha: float, length) -> jax.Array:
  """T5X's (GNMT) length normalisation: ((5 + length) / 6) ** alpha."""
  return jnp.power((5.0 + jnp.asarray(length, jnp.float32)) / 6.0, alpha)


# ---------------------------------------------------------------------------------
# Models: which can be decoded.


@runtime_checkable
class Decodable(Protocol):
  """A model with cached decoding (methods applied with `model.apply(..., method=)`).

  `encode(encoder_input_tokens)` -> encoded; `init_decoder_cache(encoded,
  encoder_input_tokens, max_decode_length)` creates the `cache` and `cross_cache`
  collections (apply with mutable=['cache', 'cross_cache']); `decode_step(tokens [B, 1])`
  -> logits [B, 1, V] of the next position, advancing `cache` (mutable=['cache']).
  Every `cache` leaf has a leading batch axis, or is a scalar shared by all rows.
  """

  def encode(self, encoder_input_tokens: jax.Array) -> Any:
    ...

  def init_decoder_cache(self, encoded: Any, encoder_input_tokens: jax.Array,
                         max_decode_length: int) -> None:
    ...

  def decode_step(self, decoder_input_tokens: jax.Array) -> jax.Array:
    ...


@runtime_checkable
class LabelPredictor(Protocol):
  """A model whose output positions depend on the inputs only (e.g. a classifier):
  `label_logits(encoder_input_tokens, num_positions)` -> logits [B, num_positions, V]."""

  def label_logits(self, encoder_input_tokens: jax.Array, num_positions: int) -> jax.Array:
    ...


def resolve_model(config_or_model: Union[registry.ModelConfig, nn.Module]) -> nn.Module:
  """The Flax module a registered model config builds, or a module given directly.
  Raises TypeError for anything else."""
  if isinstance(config_or_model, nn.Module):
    return config_or_model
  return registry.build_model(config_or_model)


def check_supports_decoding(config_or_model: Any, num_beams: int = 1) -> None:
  """Raises ValueError unless the model (or the model a config builds) is `Decodable`,
  or is a `LabelPredictor` and `num_beams == 1` (it has no decoder to search)."""
  model = resolve_model(config_or_model)
  if isinstance(model, Decodable):
    return
  if not isinstance(model, LabelPredictor):
    raise ValueError(
        f"{type(model).__name__} does not implement cached decoding (encode, "
        "init_decoder_cache, decode_step; see synthpre_jax.decoding.Decodable), so it "
        "cannot be decoded with greedy or beam search. The project's Transformer and "
        "LSTM encoder-decoder do.")
  if num_beams > 1:
    raise ValueError(
        f"{type(model).__name__} has no decoder to search (its output positions are "
        "predicted independently), so beam search does not apply: use greedy decoding "
        "(evaluate.num_beams = 1).")


# ---------------------------------------------------------------------------------
# The cached model: one encoder pass, then one token per step.


def _unwrap_params(params: PyTree) -> PyTree:
  params = nn.unbox(params)
  if isinstance(params, (dict, flax.core.FrozenDict)) and set(params) == {"params"}:
    params = params["params"]
  return params


def encode_and_init_cache(model: nn.Module, params: PyTree, encoder_input_tokens: jax.Array,
                          *, max_decode_length: int) -> tuple[PyTree, PyTree]:
  """Runs the encoder once and returns (`cache`, `cross_cache`) for decode steps.

  `cache` holds the self-attention keys/values (zeros) and `cache_index`;
  `cross_cache` the projected encoder keys/values of every decoder layer.
  """
  variables = {"params": params}
  encoded = model.apply(variables, encoder_input_tokens, method="encode")
  _, caches = model.apply(variables, encoded, encoder_input_tokens, max_decode_length,
                          method="init_decoder_cache", mutable=["cache", "cross_cache"])
  return caches["cache"], caches["cross_cache"]


def make_tokens_to_logits(model: nn.Module, params: PyTree,
                          cross_cache: PyTree) -> TokensToLogits:
  """A step function: token ids [rows] and the `cache` -> logits [rows, vocab], cache."""

  def tokens_to_logits(ids: jax.Array, cache: PyTree) -> tuple[jax.Array, PyTree]:
    logits, mutated = model.apply(
        {"params": params, "cache": cache, "cross_cache": cross_cache},
        ids[:, None].astype(jnp.int32), method="decode_step", mutable=["cache"])
    return logits[:, 0, :].astype(jnp.float32), mutated["cache"]

  return tokens_to_logits


def _map_batched(fn: Callable, tree: PyTree) -> PyTree:
  """Applies `fn` to every leaf with a leading batch axis (scalars such as
  `cache_index` are shared by all rows and left alone)."""
  return jax.tree.map(lambda x: fn(x) if x.ndim else x, tree)


def expand_to_beams(tree: PyTree, num_beams: int) -> PyTree:
  """[batch, ...] -> [batch * num_beams, ...], each row repeated for its beams."""
  return _map_batched(lambda x: jnp.repeat(x, num_beams, axis=0), tree)


def _gather_beams(tree: PyTree, indices: jax.Array) -> PyTree:
  """For [batch, beams_in, ...] leaves, picks beams `indices` [batch, beams_out]."""
  rows = jnp.arange(indices.shape[0])[:, None]
  return jax.tree.map(lambda x: x[rows, indices], tree)


def _gather_flat_beams(tree: PyTree, indices: jax.Array) -> PyTree:
  """The same on [batch * beams, ...] (flattened) leaves, e.g. the cache."""
  batch, beams = indices.shape

  def gather(x):
    x = x.reshape((batch, -1) + x.shape[1:])
    x = _gather_beams(x, indices)
    return x.reshape((batch * beams,) + x.shape[2:])

  return _map_batched(gather, tree)


# ---------------------------------------------------------------------------------
# Search loops (pure functions of a step function and a cache; jit-able).


def greedy_search(tokens_to_logits: TokensToLogits, cache: PyTree, *, batch_size: int,
                  max_decode_length: int,
                  eos_id: int = EOS_ID) -> tuple[jax.Array, jax.Array]:
  """Argmax decoding. Returns tokens [batch, max_decode_length] (0 after EOS) and the
  summed log-probabilities [batch] of the emitted tokens (EOS included)."""

  def cond(state):
    index, _, _, ended, _, _ = state
    return jnp.logical_and(index < max_decode_length, jnp.logical_not(jnp.all(ended)))

  def body(state):
    index, token, seqs, ended, score, cache = state
    logits, cache = tokens_to_logits(token, cache)
    log_probs = jax.nn.log_softmax(logits)
    nxt = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    nxt = jnp.where(ended, PAD_ID, nxt)
    picked = jnp.take_along_axis(log_probs, nxt[:, None], axis=-1)[:, 0]
    score = score + jnp.where(ended, 0.0, picked)
    seqs = jax.lax.dynamic_update_slice_in_dim(seqs, nxt[:, None], index, axis=1)
    ended = jnp.logical_or(ended, nxt == eos_id)
    return index + 1, nxt, seqs, ended, score, cache

  init = (jnp.array(0, jnp.int32), jnp.full((batch_size,), PAD_ID, jnp.int32),
          jnp.zeros((batch_size, max_decode_length), jnp.int32),
          jnp.zeros((batch_size,), bool), jnp.zeros((batch_size,), jnp.float32), cache)
  _, _, seqs, _, score, _ = jax.lax.while_loop(cond, body, init)
  return seqs, score


@flax.struct.dataclass
class _BeamState:
  index: jax.Array            # scalar: positions decoded so far
  live_logprobs: jax.Array    # [batch, beams], best first
  live_seqs: jax.Array        # [batch, beams, 1 + max_len] (position 0: the start token)
  finished_scores: jax.Array  # [batch, beams], best first
  finished_seqs: jax.Array    # [batch, beams, 1 + max_len]
  finished_flags: jax.Array   # [batch, beams]: slot holds a real finished sequence
  cache: PyTree               # leaves [batch * beams, ...] (and scalars)


def beam_search(tokens_to_logits: TokensToLogits, cache: PyTree, *, batch_size: int,
                max_decode_length: int, num_beams: int = 4, alpha: float = 0.6,
                eos_id: int = EOS_ID) -> tuple[jax.Array, jax.Array]:
  """T5X beam search. `cache` has [batch * num_beams, ...] leaves (see
  `expand_to_beams`). Returns tokens [batch, beams, max_decode_length] and scores
  [batch, beams], best beam first. When fewer than `num_beams` sequences finished, the
  spare slots hold padding with a score near NEG_INF (as T5X); a row where none
  finished returns its live beams with their raw log-probabilities. Needs alpha >= 0
  (the early stop assumes the penalty grows with length)."""
  k, length = num_beams, max_decode_length + 1

  def cond(state: _BeamState):
    not_at_end = state.index < max_decode_length
    # The best any live beam can still reach: its log-prob only falls, and the
    # longest allowed length divides it by the largest penalty.
    best_live = state.live_logprobs[:, :1] / brevity_penalty(alpha, max_decode_length)
    worst_finished = jnp.min(state.finished_scores, axis=1, keepdims=True)
    worst_finished = jnp.where(state.finished_flags, worst_finished, NEG_INF)
    done = jnp.all(worst_finished > best_live)
    return jnp.logical_and(not_at_end, jnp.logical_not(done))

  def body(state: _BeamState) -> _BeamState:
    ids = state.live_seqs[:, :, state.index].reshape(batch_size * k)
    logits, new_cache = tokens_to_logits(ids, state.cache)
    vocab = logits.shape[-1]
    log_probs = (jax.nn.log_softmax(logits).reshape(batch_size, k, vocab)
                 + state.live_logprobs[:, :, None])
    # The top 2K extensions, so K stay live even if K of them end here.
    top_logprobs, top_flat = jax.lax.top_k(log_probs.reshape(batch_size, k * vocab), 2 * k)
    top_beams, top_ids = top_flat // vocab, top_flat % vocab
    top_seqs = _gather_beams(state.live_seqs, top_beams)
    top_seqs = jax.lax.dynamic_update_slice_in_dim(
        top_seqs, top_ids[:, :, None].astype(jnp.int32), state.index + 1, axis=2)
    newly_finished = top_ids == eos_id

    # Live: the best K that did not end.
    alive_logprobs = top_logprobs + newly_finished * NEG_INF
    _, alive = jax.lax.top_k(alive_logprobs, k)
    live_seqs, live_logprobs, parent = _gather_beams(
        (top_seqs, alive_logprobs, top_beams), alive)
    cache = _gather_flat_beams(new_cache, parent)

    # Finished: merge the newly ended with the old finished set, keep the best K.
    scores = top_logprobs / brevity_penalty(alpha, state.index + 1)
    scores = scores + jnp.logical_not(newly_finished) * NEG_INF
    all_seqs = jnp.concatenate([state.finished_seqs, top_seqs], axis=1)
    all_scores = jnp.concatenate([state.finished_scores, scores], axis=1)
    all_flags = jnp.concatenate([state.finished_flags, newly_finished], axis=1)
    _, best = jax.lax.top_k(all_scores, k)
    finished_seqs, finished_scores, finished_flags = _gather_beams(
        (all_seqs, all_scores, all_flags), best)
    return _BeamState(index=state.index + 1, live_logprobs=live_logprobs,
                      live_seqs=live_seqs, finished_scores=finished_scores,
                      finished_seqs=finished_seqs, finished_flags=finished_flags,
                      cache=cache)

  first_live = jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32)
  init = _BeamState(
      index=jnp.array(0, jnp.int32),
      live_logprobs=jnp.tile(first_live, (batch_size, 1)),
      live_seqs=jnp.full((batch_size, k, length), PAD_ID, jnp.int32),
      finished_scores=jnp.full((batch_size, k), NEG_INF, jnp.float32),
      finished_seqs=jnp.full((batch_size, k, length), PAD_ID, jnp.int32),
      finished_flags=jnp.zeros((batch_size, k), bool),
      cache=cache)
  final = jax.lax.while_loop(cond, body, init)
  # A row where nothing finished returns its live beams (T5X).
  any_finished = jnp.any(final.finished_flags, axis=1)
  seqs = jnp.where(any_finished[:, None, None], final.finished_seqs, final.live_seqs)
  scores = jnp.where(any_finished[:, None], final.finished_scores, final.live_logprobs)
  return seqs[:, :, 1:], scores


# ---------------------------------------------------------------------------------
# End to end: tokens in, tokens out.


def _validate(encoder_input_tokens, max_decode_length, num_beams, alpha) -> None:
  shape = getattr(encoder_input_tokens, "shape", None)
  if shape is None or len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
    raise ValueError("encoder_input_tokens must be a non-empty [batch, length] array, got "
                     f"shape {shape}.")
  if not jnp.issubdtype(encoder_input_tokens.dtype, jnp.integer):
    raise ValueError(f"encoder_input_tokens must hold integer ids, got dtype "
                     f"{encoder_input_tokens.dtype}.")
  if not isinstance(max_decode_length, (int, np.integer)) or max_decode_length <= 0:
    raise ValueError(f"max_decode_length must be a positive int, got {max_decode_length!r}.")
  if not isinstance(num_beams, (int, np.integer)) or num_beams <= 0:
    raise ValueError(f"num_beams must be a positive int, got {num_beams!r}.")
  if not alpha >= 0.0:
    raise ValueError(f"alpha (length penalty) must be >= 0, got {alpha!r}.")


def positionwise_greedy(logits: jax.Array, *,
                        eos_id: int = EOS_ID) -> tuple[jax.Array, jax.Array]:
  """Greedy search's output for logits [batch, length, vocab] that do not depend on the
  emitted tokens: each position's argmax, 0 after the first EOS, and the summed
  log-probabilities [batch] of the emitted tokens (EOS included), added in order."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  ids = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  picked = jnp.take_along_axis(log_probs, ids[:, :, None], axis=-1)[:, :, 0]

  def step(carry, xs):
    ended, score = carry
    nxt, p = xs
    nxt = jnp.where(ended, PAD_ID, nxt)
    score = score + jnp.where(ended, 0.0, p)
    return (jnp.logical_or(ended, nxt == eos_id), score), nxt

  batch = logits.shape[0]
  init = (jnp.zeros((batch,), bool), jnp.zeros((batch,), jnp.float32))
  (_, score), seqs = jax.lax.scan(step, init, (ids.T, picked.T))
  return seqs.T, score


def decode(model: nn.Module, params: PyTree, encoder_input_tokens: jax.Array, *,
           max_decode_length: int, num_beams: int = 1, alpha: float = 0.6,
           eos_id: int = EOS_ID) -> tuple[jax.Array, jax.Array]:
  """Traceable core: tokens [batch, beams, max_decode_length] and scores [batch, beams]
  (beams = 1 for greedy, `num_beams == 1`). Call inside jit (see `make_decode_fn`)."""
  check_supports_decoding(model, num_beams)
  if not isinstance(model, Decodable):  # a LabelPredictor: one forward pass
    logits = model.apply({"params": params}, encoder_input_tokens, max_decode_length,
                         method="label_logits")
    seqs, scores = positionwise_greedy(logits, eos_id=eos_id)
    return seqs[:, None], scores[:, None]
  batch = encoder_input_tokens.shape[0]
  cache, cross_cache = encode_and_init_cache(model, params, encoder_input_tokens,
                                             max_decode_length=max_decode_length)
  if num_beams == 1:
    step = make_tokens_to_logits(model, params, cross_cache)
    seqs, scores = greedy_search(step, cache, batch_size=batch,
                                 max_decode_length=max_decode_length, eos_id=eos_id)
    return seqs[:, None], scores[:, None]
  step = make_tokens_to_logits(model, params, expand_to_beams(cross_cache, num_beams))
  return beam_search(step, expand_to_beams(cache, num_beams), batch_size=batch,
                     max_decode_length=max_decode_length, num_beams=num_beams,
                     alpha=alpha, eos_id=eos_id)


@functools.lru_cache(maxsize=32)
def make_decode_fn(model: nn.Module, *, max_decode_length: int, num_beams: int = 1,
                   alpha: float = 0.6, eos_id: int = EOS_ID) -> Callable:
  """A jitted `fn(params, encoder_input_tokens) -> (tokens, scores)` (see `decode`),
  cached per (model, settings) so repeated batches reuse one compilation. Parameters
  and tokens keep whatever sharding they carry; call under `partitioning.activate`."""
  check_supports_decoding(model, num_beams)
  return jax.jit(functools.partial(decode, model, max_decode_length=max_decode_length,
                                   num_beams=num_beams, alpha=alpha, eos_id=eos_id))


def global_array(tokens, sharding) -> jax.Array:
  """`tokens` placed with `sharding`. A numpy batch must be the same on every process
  (multi-process evaluation passes each process the whole batch); each process then
  fills its own devices' part of the global array."""
  if isinstance(tokens, jax.Array):
    return jax.device_put(tokens, sharding)
  return jax.make_array_from_callback(tokens.shape, sharding, lambda index: tokens[index])


def _to_host(x: jax.Array) -> np.ndarray:
  """The whole of a (possibly multi-process) array as numpy, on every process."""
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def predict_batch_with_scores(config: Union[registry.ModelConfig, nn.Module], params: PyTree,
                              encoder_input_tokens, *, max_decode_length: int,
                              num_beams: int = 1, alpha: float = 0.6,
                              eos_id: int = EOS_ID, mesh: Optional[Mesh] = None,
                              return_all_beams: bool = False
                              ) -> tuple[np.ndarray, np.ndarray]:
  """Decodes a batch; returns numpy (tokens, scores).

  Greedy search for `num_beams=1` (score: summed log-probability), T5X beam search
  otherwise (score: length-penalised log-probability). Tokens are [batch,
  max_decode_length] for the best beam, or [batch, beams, max_decode_length] with
  `return_all_beams` (scores [batch] / [batch, beams]). `params` is the `params`
  collection (sharded or not; boxed or unboxed). With `mesh`, the program runs under
  the project's logical axis rules and the batch is split over the data axes when it
  divides evenly.
  """
  model = resolve_model(config)
  check_supports_decoding(model, num_beams)
  tokens = np.asarray(encoder_input_tokens) if not isinstance(
      encoder_input_tokens, jax.Array) else encoder_input_tokens
  _validate(tokens, max_decode_length, num_beams, alpha)
  fn = make_decode_fn(model, max_decode_length=int(max_decode_length),
                      num_beams=int(num_beams), alpha=float(alpha), eos_id=int(eos_id))
  params = _unwrap_params(params)
  context = contextlib.nullcontext()
  if mesh is not None:
    context = partitioning.activate(mesh)
    if tokens.shape[0] % partitioning.data_shards(mesh) == 0:
      tokens = global_array(tokens, partitioning.batch_sharding(mesh))
    else:
      tokens = global_array(tokens, partitioning.replicated(mesh))
  with context:
    seqs, scores = fn(params, tokens)
  seqs, scores = _to_host(seqs), _to_host(scores)
  if return_all_beams:
    return seqs, scores
  return seqs[:, 0], scores[:, 0]


def predict_batch(config: Union[registry.ModelConfig, nn.Module], params: PyTree,
                  encoder_input_tokens, *, max_decode_length: int, num_beams: int = 1,
                  alpha: float = 0.6, eos_id: int = EOS_ID,
                  mesh: Optional[Mesh] = None) -> np.ndarray:
  """Decoded tokens [batch, max_decode_length] (int32, 0 after EOS): greedy search for
  `num_beams=1`, else the best beam of T5X beam search with length penalty `alpha`."""
  tokens, _ = predict_batch_with_scores(
      config, params, encoder_input_tokens, max_decode_length=max_decode_length,
      num_beams=num_beams, alpha=alpha, eos_id=eos_id, mesh=mesh)
  return tokens
