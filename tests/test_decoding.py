"""Cached decoding and greedy / beam search (T5X semantics) on tiny models."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from synthpre_jax import decoding, partitioning
from synthpre_jax.models import T5Config, Transformer


def _config(vocab=16, **kw):
  # Few buckets and a short max distance, so decoding crosses the log-spaced buckets.
  base = dict(vocab_size=vocab, emb_dim=32, num_heads=4, head_dim=8, num_encoder_layers=2,
              num_decoder_layers=2, mlp_dim=64, dropout_rate=0.0,
              relative_attention_num_buckets=8, relative_attention_max_distance=12,
              logits_via_embedding=False)  # untied: random tied models just repeat a token
  base.update(kw)
  return T5Config(**base)


def _params(cfg, seed=0):
  tokens = jnp.ones((1, 4), jnp.int32)
  return nn.unbox(Transformer(cfg).init(jax.random.key(seed), tokens, tokens)["params"])


def _encoder_tokens(cfg, batch=4, length=7, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(2, cfg.vocab_size, (batch, length)).astype(np.int32)
  tokens[1, 4:] = 0  # right padding
  if batch > 2:
    tokens[2, 2:] = 0
  return tokens


def _log_probs_full(cfg, params, enc, dec_inputs):
  logits = Transformer(cfg).apply({"params": params}, enc, dec_inputs)
  return np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)))


@pytest.mark.parametrize("variant", ["v1_0", "v1_1"])
def test_cached_decoder_matches_full_forward_at_every_position(variant):
  extra = (dict(logits_via_embedding=True) if variant == "v1_0" else
           dict(mlp_activations=("gelu", "linear")))
  cfg = _config(vocab=40, **extra)
  model, params = Transformer(cfg), _params(cfg)
  enc = _encoder_tokens(cfg, batch=3)
  length = 20
  dec = np.random.default_rng(1).integers(2, cfg.vocab_size, (3, length)).astype(np.int32)
  dec[:, 0] = 0
  full = np.asarray(model.apply({"params": params}, enc, dec))

  cache, cross = decoding.encode_and_init_cache(model, params, enc, max_decode_length=length)
  step = jax.jit(decoding.make_tokens_to_logits(model, params, cross))
  steps = []
  for t in range(length):
    logits, cache = step(jnp.asarray(dec[:, t]), cache)
    steps.append(np.asarray(logits))
  np.testing.assert_allclose(np.stack(steps, axis=1), full, atol=1e-5, rtol=1e-5)
  assert int(cache["decoder"]["cache_index"]) == length


def test_decode_step_needs_a_cache_and_one_position():
  cfg = _config()
  model, params = Transformer(cfg), _params(cfg)
  with pytest.raises(ValueError, match="init_decoder_cache"):
    model.apply({"params": params}, jnp.zeros((2, 1), jnp.int32), method="decode_step",
                mutable=["cache"])
  cache, cross = decoding.encode_and_init_cache(model, params, _encoder_tokens(cfg),
                                                max_decode_length=4)
  with pytest.raises(ValueError, match=r"\[batch, 1\]"):
    model.apply({"params": params, "cache": cache, "cross_cache": cross},
                jnp.zeros((4, 2), jnp.int32), method="decode_step", mutable=["cache"])


def _reference_greedy(cfg, params, enc, length):
  """Greedy decoding by re-running the full (uncached) model for every position."""
  batch = enc.shape[0]
  out = np.zeros((batch, length), np.int32)
  ended = np.zeros(batch, bool)
  for t in range(length):
    dec = np.concatenate([np.zeros((batch, 1), np.int32), out[:, :-1]], axis=1)
    nxt = _log_probs_full(cfg, params, enc, dec)[:, t].argmax(-1)
    nxt = np.where(ended, 0, nxt)
    out[:, t] = nxt
    ended |= nxt == decoding.EOS_ID
  return out


def test_greedy_equals_uncached_argmax_and_pads_after_eos():
  cfg = _config(vocab=6)  # small vocabulary: EOS (id 1) comes up often
  params = _params(cfg, seed=1)
  enc = _encoder_tokens(cfg, batch=8, seed=2)
  length = 8
  tokens = decoding.predict_batch(cfg, params, enc, max_decode_length=length)
  assert tokens.shape == (8, length) and tokens.dtype == np.int32
  np.testing.assert_array_equal(tokens, _reference_greedy(cfg, params, enc, length))
  ended_early = 0
  for row in tokens:
    eos = np.flatnonzero(row == decoding.EOS_ID)
    if eos.size and eos[0] < length - 1:
      ended_early += 1
      assert np.all(row[eos[0] + 1:] == 0)
  assert ended_early > 0, "pick a seed where some row emits EOS before the end"
  # The greedy score is the summed log-probability of the emitted tokens.
  _, scores = decoding.predict_batch_with_scores(cfg, params, enc, max_decode_length=length)
  dec = np.concatenate([np.zeros((8, 1), np.int32), tokens[:, :-1]], axis=1)
  logp = np.take_along_axis(_log_probs_full(cfg, params, enc, dec), tokens[..., None], -1)[..., 0]
  first_eos = [np.flatnonzero(r == 1)[0] + 1 if (r == 1).any() else length for r in tokens]
  expected = [logp[i, :n].sum() for i, n in enumerate(first_eos)]
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def _reference_one_beam(cfg, params, enc, length, alpha):
  """T5X 1-beam search spelled out with the full model. The one live beam follows the
  best non-EOS token; each step where EOS is among the 2 best tokens offers the
  finished candidate `live prefix + EOS`; the best candidate by penalised score wins
  (the live path if there is none)."""
  batch = enc.shape[0]
  live = np.zeros((batch, length), np.int32)
  live_logp = np.zeros(batch)
  best = [(None, -np.inf)] * batch
  for t in range(length):
    dec = np.concatenate([np.zeros((batch, 1), np.int32), live[:, :-1]], axis=1)
    logp = _log_probs_full(cfg, params, enc, dec)[:, t]
    for b in range(batch):
      if decoding.EOS_ID in np.argsort(-logp[b])[:2]:
        score = (live_logp[b] + logp[b, decoding.EOS_ID]) / ((5.0 + t + 1) / 6.0) ** alpha
        if score > best[b][1]:
          seq = np.zeros(length, np.int32)
          seq[:t] = live[b, :t]
          seq[t] = decoding.EOS_ID
          best[b] = (seq, score)
      masked = logp[b].copy()
      masked[decoding.EOS_ID] = -np.inf
      live[b, t] = masked.argmax()
      live_logp[b] += logp[b, live[b, t]]
  seqs = np.stack([s if s is not None else live[b] for b, (s, _) in enumerate(best)])
  scores = np.array([sc if s is not None else live_logp[b]
                     for b, (s, sc) in enumerate(best)])
  return seqs, scores


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_with_one_beam_is_greedy_plus_t5x_runner_up_eos(alpha):
  """T5X keeps the 2K best extensions, so 1-beam search is greedy search except that
  an EOS that was runner-up at an earlier step may finish with a better score. It
  equals greedy on every row where greedy's own EOS scores best (always so when
  greedy's EOS is the only one that was ever in the top 2)."""
  cfg = _config(vocab=8)
  params = _params(cfg, seed=7)
  enc = _encoder_tokens(cfg, batch=8, seed=4)
  length = 7
  greedy, greedy_scores = decoding.predict_batch_with_scores(cfg, params, enc,
                                                             max_decode_length=length)
  model = Transformer(cfg)

  def one_beam(p, x):  # `decode` runs greedy for 1 beam; call beam_search directly
    cache, cross = decoding.encode_and_init_cache(model, p, x, max_decode_length=length)
    step = decoding.make_tokens_to_logits(model, p, cross)
    return decoding.beam_search(step, cache, batch_size=x.shape[0],
                                max_decode_length=length, num_beams=1, alpha=alpha)

  beams, beam_scores = jax.jit(one_beam)(params, enc)
  beams, beam_scores = np.asarray(beams)[:, 0], np.asarray(beam_scores)[:, 0]
  ref_seqs, ref_scores = _reference_one_beam(cfg, params, enc, length, alpha)
  np.testing.assert_array_equal(beams, ref_seqs)
  np.testing.assert_allclose(beam_scores, ref_scores, rtol=1e-5, atol=1e-5)
  same = np.all(beams == greedy, axis=1)
  assert 2 <= same.sum() < len(same), "seeds should give rows of both kinds"
  if alpha == 0.0:
    np.testing.assert_allclose(beam_scores[same], greedy_scores[same], rtol=1e-5)


def _table_step(table, num_beams):
  """A stand-in model whose next-token logits depend only on (example, step)."""
  table = jnp.asarray(table)

  def step(ids, cache):
    rows = jnp.arange(ids.shape[0]) // num_beams
    return table[rows, cache["t"]], {"t": cache["t"] + 1}

  return step


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_search_loops_one_beam_equals_greedy_when_eos_is_never_runner_up(alpha):
  rng = np.random.default_rng(0)
  batch, length, vocab = 6, 8, 10
  table = rng.normal(size=(batch, length, vocab)).astype(np.float32)
  table[:, :, decoding.EOS_ID] = -30.0  # EOS never among the top 2 ...
  for b, t in enumerate([0, 3, 5, 7, None, 2]):
    if t is not None:
      table[b, t, decoding.EOS_ID] = 30.0  # ... except where it is the argmax
  cache = {"t": jnp.array(0)}
  greedy, greedy_scores = decoding.greedy_search(
      _table_step(table, 1), cache, batch_size=batch, max_decode_length=length)
  beams, beam_scores = decoding.beam_search(
      _table_step(table, 1), cache, batch_size=batch, max_decode_length=length,
      num_beams=1, alpha=alpha)
  greedy, beams = np.asarray(greedy), np.asarray(beams)[:, 0]
  np.testing.assert_array_equal(beams, greedy)
  assert greedy[0].tolist() == [1] + [0] * 7 and not (greedy[4] == 1).any()
  assert greedy[1, 3] == 1 and np.all(greedy[1, 4:] == 0) and np.all(greedy[1, :3] > 1)
  if alpha == 0.0:
    np.testing.assert_allclose(np.asarray(beam_scores)[:, 0], greedy_scores, rtol=1e-5)
  else:  # finished rows: penalised by their length; the unfinished row: raw log-prob
    ended = [0, 1, 2, 3, 5]
    np.testing.assert_allclose(
        np.asarray(beam_scores)[ended, 0],
        np.asarray(greedy_scores)[ended] / ((5.0 + np.array([1, 4, 6, 8, 3])) / 6.0) ** alpha,
        rtol=1e-5)


def _all_finished_sequences(vocab, length):
  """Every output that ends in EOS within `length` tokens (EOS only at the end)."""
  out = []
  for m in range(1, length + 1):
    for prefix in itertools.product([t for t in range(vocab) if t != 1], repeat=m - 1):
      out.append(list(prefix) + [1])
  return out


def _brute_force(cfg, params, enc_row, length, alpha):
  seqs = _all_finished_sequences(cfg.vocab_size, length)
  n = len(seqs)
  targets = np.zeros((n, length), np.int32)
  for i, s in enumerate(seqs):
    targets[i, :len(s)] = s
  dec = np.concatenate([np.zeros((n, 1), np.int32), targets[:, :-1]], axis=1)
  logp = _log_probs_full(cfg, params, np.repeat(enc_row[None], n, 0), dec)
  picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
  scores = np.array([picked[i, :len(s)].sum() / ((5.0 + len(s)) / 6.0) ** alpha
                     for i, s in enumerate(seqs)])
  return targets, scores


@pytest.mark.parametrize("alpha", [0.6, 0.0, 2.0])
def test_beam_search_finds_the_best_sequence_by_brute_force(alpha):
  # Vocabulary 5, length 3: 1 + 4 + 16 = 21 finished outputs. 40 beams keep every
  # live prefix (2K = 80 >= 16 x 5), so the finished set must be exactly the top 21.
  cfg = _config(vocab=5)
  params = _params(cfg, seed=7)
  enc = _encoder_tokens(cfg, batch=3, seed=6)
  length, beams = 3, 40
  seqs, scores = decoding.predict_batch_with_scores(
      cfg, params, enc, max_decode_length=length, num_beams=beams, alpha=alpha,
      return_all_beams=True)
  assert seqs.shape == (3, beams, length) and scores.shape == (3, beams)
  greedy = decoding.predict_batch(cfg, params, enc, max_decode_length=length)
  differs = 0
  for b in range(3):
    targets, expected = _brute_force(cfg, params, enc[b], length, alpha)
    order = np.argsort(-expected)
    np.testing.assert_allclose(scores[b, :len(order)], expected[order], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(seqs[b, 0], targets[order[0]])
    # The top-1 of predict_batch is the brute-force optimum.
    top = decoding.predict_batch(cfg, params, enc[b:b + 1], max_decode_length=length,
                                 num_beams=beams, alpha=alpha)
    np.testing.assert_array_equal(top[0], targets[order[0]])
    differs += int(not np.array_equal(greedy[b], targets[order[0]]))
  if alpha == 0.6:
    assert differs > 0, "the test should include a case where search beats greedy"


def test_beam_search_four_beams_is_sorted_and_pads_after_eos():
  cfg = _config(vocab=6)
  params = _params(cfg, seed=11)
  enc = _encoder_tokens(cfg, batch=5, seed=9)
  seqs, scores = decoding.predict_batch_with_scores(
      cfg, params, enc, max_decode_length=6, num_beams=4, alpha=0.6, return_all_beams=True)
  assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
  # Slots that no finished sequence reached hold padding with a NEG_INF score (T5X).
  real = scores > decoding.NEG_INF / 2
  assert real[:, 0].all() and not real.all(), "seeds should give both kinds of slot"
  assert np.all(seqs[~real] == 0)
  for row in seqs[real]:
    eos = np.flatnonzero(row == decoding.EOS_ID)
    assert eos.size  # every real beam here finished
    assert np.all(row[eos[0] + 1:] == 0)
  # Each returned score is the penalised log-probability of its sequence.
  flat = seqs[real]
  dec = np.concatenate([np.zeros((flat.shape[0], 1), np.int32), flat[:, :-1]], axis=1)
  logp = _log_probs_full(cfg, params, np.repeat(enc, 4, 0)[real.reshape(-1)], dec)
  picked = np.take_along_axis(logp, flat[..., None], -1)[..., 0]
  lengths = np.array([np.flatnonzero(r == 1)[0] + 1 for r in flat])
  expected = [picked[i, :n].sum() / ((5.0 + n) / 6.0) ** 0.6 for i, n in enumerate(lengths)]
  np.testing.assert_allclose(scores[real], expected, rtol=1e-5, atol=1e-5)


def test_sharded_params_on_8_device_mesh_match_one_device():
  cfg = _config(vocab=16)
  params = _params(cfg, seed=2)
  enc = _encoder_tokens(cfg, batch=8, seed=3)
  expected = {b: decoding.predict_batch_with_scores(cfg, params, enc, max_decode_length=6,
                                                    num_beams=b) for b in (1, 4)}
  mesh = partitioning.make_mesh(partitioning.MeshConfig(data=2, fsdp=2, model=2))
  model = Transformer(cfg)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), enc[:1], enc[:1])["params"])
  shardings = partitioning.logical_to_sharding(boxed, mesh)
  sharded = jax.device_put(params, shardings)
  assert sharded["decoder"]["layers_0"]["mlp"]["wi"]["kernel"].sharding.spec == P(
      "fsdp", "model")
  for b, (tokens, scores) in expected.items():
    got_tokens, got_scores = decoding.predict_batch_with_scores(
        cfg, sharded, enc, max_decode_length=6, num_beams=b, mesh=mesh)
    np.testing.assert_array_equal(got_tokens, tokens)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-4, atol=1e-5)


class _Classifier(nn.Module):
  """A decoder-less model (like the later LSTM classifier)."""

  @nn.compact
  def __call__(self, tokens):
    return nn.Dense(3)(nn.Embed(10, 4)(tokens).mean(axis=1))


def test_models_without_a_decoder_are_refused():
  with pytest.raises(ValueError, match="does not implement cached decoding"):
    decoding.predict_batch(_Classifier(), {}, np.ones((2, 3), np.int32),
                           max_decode_length=4, num_beams=4)
  with pytest.raises(ValueError, match="does not implement cached decoding"):
    decoding.check_supports_decoding(_Classifier())
  decoding.check_supports_decoding(Transformer(_config()))
  decoding.check_supports_decoding(_config())  # a T5Config builds a Transformer

  # Configs go through the model registry: an unregistered config names the families.
  with pytest.raises(TypeError, match=r"registered model config \(T5Config, LSTMConfig"):
    decoding.predict_batch(object(), {}, np.ones((2, 3), np.int32), max_decode_length=4)
  with pytest.raises(TypeError, match=r"registered model config \(T5Config, LSTMConfig"):
    decoding.resolve_model("t5_small")


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_decode_length=0), "max_decode_length"),
    (dict(max_decode_length=4, num_beams=0), "num_beams"),
    (dict(max_decode_length=4, alpha=-1.0), "alpha"),
])
def test_bad_arguments_say_what_to_fix(kwargs, message):
  cfg = _config()
  with pytest.raises(ValueError, match=message):
    decoding.predict_batch(cfg, _params(cfg), _encoder_tokens(cfg), **kwargs)
  with pytest.raises(ValueError, match=r"\[batch, length\]"):
    decoding.predict_batch(cfg, _params(cfg), np.ones(5, np.int32), max_decode_length=3)
