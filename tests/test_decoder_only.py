"""The decoder-only family: logits against a hand-written numpy forward pass, padding and
packing invariance, causality, cached decoding, Gin model files, and the real trainer
(with moment matching and parameter statistics) on it."""

from __future__ import annotations

import math
import pathlib

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from synthpre_jax import decoding
from synthpre_jax.cli import gin_utils
from synthpre_jax.init import moment_matching, param_stats
from synthpre_jax.models import DecoderOnlyConfig, registry
from synthpre_jax.models.decoder_only import DecoderOnly
from synthpre_jax.training import hooks

import train_utils

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = dict(vocab_size=40, emb_dim=16, num_heads=2, head_dim=8, num_layers=2, mlp_dim=32,
             dropout_rate=0.0, relative_attention_num_buckets=8,
             relative_attention_max_distance=20)
# Right-padded inputs of different lengths; decoder inputs start with 0 (T5's start).
ENC = np.array([[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 1, 0],
                [9, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                [3, 4, 5, 6, 7, 1, 0, 0, 0, 0, 0, 0]], np.int32)
DEC = np.array([[0, 11, 12, 13, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
                [0, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                 32, 0],
                [0, 21, 22, 23, 24, 25, 26, 27, 28, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
               np.int32)


def _params(cfg: DecoderOnlyConfig, seed: int = 0):
  """Initial parameters with norm scales drawn away from 1 (so the reference must read them)."""
  params = nn.unbox(DecoderOnly(cfg).init(jax.random.PRNGKey(seed), ENC, DEC)["params"])
  flat = traverse_util.flatten_dict(jax.tree.map(np.asarray, params), sep="/")
  rng = np.random.default_rng(seed)
  for name in flat:
    if name.endswith("scale"):
      flat[name] = rng.uniform(0.5, 1.5, flat[name].shape).astype(np.float32)
  return traverse_util.unflatten_dict(flat, sep="/")


# ------------------------------------------------------------ the independent reference


def _bucket(relative: np.ndarray, num_buckets: int, max_distance: int) -> np.ndarray:
  """T5's causal relative-position bucket of key-minus-query offsets (float64 numpy)."""
  back = np.maximum(-relative, 0)
  exact = num_buckets // 2
  log_part = exact + np.floor(np.log(np.maximum(back, 1) / exact)
                              / math.log(max_distance / exact) * (num_buckets - exact))
  return np.where(back < exact, back, np.minimum(log_part, num_buckets - 1)).astype(int)


def _rms(x, scale):
  return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


def _gelu(x):  # the tanh approximation (flax.linen.gelu's default)
  return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def reference_logits(params, cfg: DecoderOnlyConfig, inputs, decoder_inputs) -> np.ndarray:
  """One example: `inputs` (real tokens only) then `decoder_inputs`; logits of the
  decoder positions, computed with numpy in float64."""
  p = {k: np.asarray(v, np.float64)
       for k, v in traverse_util.flatten_dict(params, sep="/").items()}
  seq = np.concatenate([inputs, decoder_inputs])
  n, li = len(seq), len(inputs)
  emb = p["token_embedder/embedding"]
  x = emb[seq]
  pos = np.arange(n)
  buckets = _bucket(pos[None, :] - pos[:, None], cfg.relative_attention_num_buckets,
                    cfg.relative_attention_max_distance)
  bias = p["decoder/relpos_bias/rel_embedding"][:, buckets]  # [heads, q, k]
  allowed = pos[None, :] <= pos[:, None]
  if cfg.prefix_lm:
    allowed |= (pos[None, :] < li) & (pos[:, None] < li)
  heads, hd = cfg.num_heads, cfg.head_dim
  for i in range(cfg.num_layers):
    pre = f"decoder/layers_{i}/"
    y = _rms(x, p[pre + "pre_self_attention_layer_norm/scale"])
    q, k, v = (
        (y @ p[pre + f"self_attention/{w}/kernel"]).reshape(n, heads, hd)
        for w in ("query", "key", "value"))
    scores = np.einsum("qnh,knh->nqk", q, k) + bias
    scores = np.where(allowed[None], scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    attended = np.einsum("nqk,knh->qnh", probs, v).reshape(n, heads * hd)
    x = x + attended @ p[pre + "self_attention/out/kernel"]
    y = _rms(x, p[pre + "pre_mlp_layer_norm/scale"])
    if cfg.mlp_activations == ("relu",):
      h = np.maximum(y @ p[pre + "mlp/wi/kernel"], 0)
    else:
      assert cfg.mlp_activations == ("gelu", "linear")
      h = _gelu(y @ p[pre + "mlp/wi_0/kernel"]) * (y @ p[pre + "mlp/wi_1/kernel"])
    x = x + h @ p[pre + "mlp/wo/kernel"]
  x = _rms(x, p["decoder/decoder_norm/scale"])[li:]
  if cfg.logits_via_embedding:
    return x @ emb.T / math.sqrt(cfg.emb_dim)
  return x @ p["decoder/logits_dense/kernel"]


@pytest.mark.parametrize("variant", [
    dict(),  # T5 v1.0: ReLU, tied logits, causal
    dict(mlp_activations=("gelu", "linear"), logits_via_embedding=False, prefix_lm=True),
])
def test_logits_match_a_numpy_forward_pass_of_the_packed_sequence(variant):
  cfg = DecoderOnlyConfig(**SMALL, **variant)
  params = _params(cfg)
  logits = np.asarray(DecoderOnly(cfg).apply({"params": params}, ENC, DEC))
  assert logits.shape == (3, DEC.shape[1], cfg.vocab_size)
  # Offsets up to 30 reach the log-spaced buckets and the clipped last one.
  for b in range(len(ENC)):
    want = reference_logits(params, cfg, ENC[b][ENC[b] > 0], DEC[b])
    np.testing.assert_allclose(logits[b], want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("prefix_lm", [False, True])
def test_padding_and_packing_do_not_change_the_logits(prefix_lm):
  cfg = DecoderOnlyConfig(**SMALL, prefix_lm=prefix_lm)
  params = _params(cfg)
  model = DecoderOnly(cfg)
  padded = np.asarray(model.apply({"params": params}, ENC, DEC))
  for b in range(len(ENC)):  # each example alone, inputs without padding
    alone = model.apply({"params": params}, ENC[b:b + 1, :int((ENC[b] > 0).sum())],
                        DEC[b:b + 1])
    np.testing.assert_allclose(padded[b], alone[0], atol=1e-5, rtol=0)
  # Rows 1 and 2 packed into one row (segment ids 1 and 2) give their unpacked logits.
  li1, li2, lt = 3, 6, 10
  enc = np.zeros((1, 12), np.int32)
  enc[0, :li1 + li2] = np.concatenate([ENC[1, :li1], ENC[2, :li2]])
  enc_seg = np.zeros_like(enc)
  enc_seg[0, :li1], enc_seg[0, li1:li1 + li2] = 1, 2
  dec = np.concatenate([DEC[1, :lt], DEC[2, :lt]])[None]
  dec_seg = np.repeat([1, 2], lt)[None].astype(np.int32)
  packed = np.asarray(model.apply({"params": params}, enc, dec, enc_seg, dec_seg))
  np.testing.assert_allclose(packed[0, :lt], padded[1, :lt], atol=1e-5, rtol=0)
  np.testing.assert_allclose(packed[0, lt:], padded[2, :lt], atol=1e-5, rtol=0)


def test_dropout_and_remat():
  cfg = DecoderOnlyConfig(**{**SMALL, "dropout_rate": 0.3})
  params = _params(cfg)
  plain = np.asarray(DecoderOnly(cfg).apply({"params": params}, ENC, DEC))
  remat = DecoderOnly(cfg.replace(remat_policy="full"))

  def loss(model, p, rng):
    logits = model.apply({"params": p}, ENC, DEC, enable_dropout=True,
                         rngs={"dropout": rng})
    return jnp.sum(jnp.sin(logits))

  key = jax.random.PRNGKey(3)
  np.testing.assert_allclose(
      remat.apply({"params": params}, ENC, DEC), plain, atol=1e-6, rtol=0)
  grads = [jax.grad(loss, argnums=1)(m, params, key) for m in (DecoderOnly(cfg), remat)]
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
  dropped = loss(DecoderOnly(cfg), params, key)
  assert abs(float(dropped) - float(jnp.sum(jnp.sin(plain)))) > 1e-3  # dropout acts
  with pytest.raises(ValueError, match="remat_policy"):
    cfg.replace(remat_policy="some")


@pytest.mark.parametrize("prefix_lm", [False, True])
def test_a_later_token_does_not_change_earlier_logits(prefix_lm):
  cfg = DecoderOnlyConfig(**SMALL, prefix_lm=prefix_lm)
  params = _params(cfg)
  model = DecoderOnly(cfg)
  base = np.asarray(model.apply({"params": params}, ENC, DEC))
  changed_dec = DEC.copy()
  changed_dec[:, 5] = 33
  out = np.asarray(model.apply({"params": params}, ENC, changed_dec))
  np.testing.assert_array_equal(out[:, :5], base[:, :5])
  assert np.abs(out[:, 5:] - base[:, 5:]).max() > 1e-3
  # Inputs: with causal attention the first input's logits ignore the later inputs;
  # with a prefix LM every input sees all of them (checked through the reference).
  changed_enc = ENC.copy()
  changed_enc[0, 2] = 33
  out = np.asarray(model.apply({"params": params}, changed_enc, DEC))
  assert np.abs(out[0] - base[0]).max() > 1e-3
  np.testing.assert_array_equal(out[1:], base[1:])
  want = reference_logits(params, cfg, changed_enc[0][changed_enc[0] > 0], DEC[0])
  np.testing.assert_allclose(out[0], want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("prefix_lm", [False, True])
def test_cached_decode_steps_equal_the_full_forward_and_greedy_decodes(prefix_lm):
  cfg = DecoderOnlyConfig(**SMALL, prefix_lm=prefix_lm)
  params = _params(cfg, seed=1)
  model = DecoderOnly(cfg)
  assert isinstance(model, decoding.Decodable)
  full = np.asarray(model.apply({"params": params}, ENC, DEC))
  cache, cross = decoding.encode_and_init_cache(model, params, ENC,
                                                max_decode_length=DEC.shape[1])
  step = jax.jit(decoding.make_tokens_to_logits(model, params, cross))
  for t in range(DEC.shape[1]):
    logits, cache = step(jnp.asarray(DEC[:, t]), cache)
    np.testing.assert_allclose(logits, full[:, t], atol=1e-5, rtol=0)
  # Greedy decoding equals an argmax loop that recomputes the full forward each step.
  length = 6
  got = decoding.predict_batch(cfg, params, ENC, max_decode_length=length)
  forward = jax.jit(lambda dec: model.apply({"params": params}, ENC, dec))
  dec = np.zeros((len(ENC), length + 1), np.int32)
  for t in range(length):  # causal: positions after t do not change position t's logits
    dec[:, t + 1] = np.asarray(forward(dec))[:, t].argmax(-1)
  want = dec[:, 1:].copy()
  for row in want:  # greedy's conventions: zeros after the first EOS
    eos = np.flatnonzero(row == decoding.EOS_ID)
    if eos.size:
      row[eos[0] + 1:] = 0
  np.testing.assert_array_equal(np.asarray(got), want)
  # Beam search runs on the same cache (its leaves are expanded and gathered per beam).
  # With alpha = 0 a beam's score is its tokens' summed log-probability (to EOS), which
  # the full forward pass recomputes.
  beams, scores = decoding.predict_batch_with_scores(
      cfg, params, ENC, max_decode_length=length, num_beams=2, alpha=0.0)
  beams = np.asarray(beams)
  assert beams.shape == (len(ENC), length)
  dec = np.concatenate([np.zeros((len(ENC), 1), np.int32), beams[:, :-1]], axis=1)
  log_probs = jax.nn.log_softmax(forward(np.pad(dec, ((0, 0), (0, 1)))))[:, :length]
  picked = np.take_along_axis(np.asarray(log_probs), beams[..., None], -1)[..., 0]
  ended = np.cumsum(beams == decoding.EOS_ID, axis=1) - (beams == decoding.EOS_ID) > 0
  np.testing.assert_allclose(np.asarray(scores), np.where(ended, 0, picked).sum(1),
                             atol=1e-4)


def test_registry_counts_and_names_and_validates():
  cfg = DecoderOnlyConfig(**SMALL)
  assert "DecoderOnlyConfig" in registry.registered()
  assert isinstance(registry.build_model(cfg), DecoderOnly)
  assert registry.embedding_names(cfg) == ("token_embedder/embedding",
                                           "decoder/logits_dense/kernel")
  # Forward FLOPs of a layer stack over 12 + 21 positions, logits over 21.
  d, hd, f, n = 16, 16, 32, 33
  fwd = 2 * 2 * (n * (4 * d * hd + 2 * d * f) * 2 + 21 * d * 40) + 4 * 2 * hd * 2 * n * n
  assert registry.flops_per_step(cfg, 2, 12, 21) == 3.0 * fwd
  with pytest.raises(ValueError, match="num_layers"):
    DecoderOnlyConfig(num_layers=0)
  with pytest.raises(ValueError, match="mlp_activations"):
    DecoderOnlyConfig(mlp_activations=("tanh",))


def _analytic_param_count(cfg: DecoderOnlyConfig) -> int:
  """Tied embedding + per layer (2 norms, q/k/v/o, one MLP input per activation and wo)
  + the shared relative-position table + the final norm."""
  d, inner = cfg.emb_dim, cfg.num_heads * cfg.head_dim
  layer = 2 * d + 4 * d * inner + (len(cfg.mlp_activations) + 1) * d * cfg.mlp_dim
  return (cfg.vocab_size * d + cfg.num_layers * layer
          + cfg.relative_attention_num_buckets * cfg.num_heads + d)


@pytest.mark.parametrize("name,layers,width,vocab,millions", [
    ("decoder_only_tiny", 4, 64, 512, 0.23), ("decoder_only_small", 12, 512, 32128, 54),
    ("decoder_only_base", 24, 768, 32128, 195), ("decoder_only_large", 48, 1024, 32128, 637),
    ("decoder_only_1b", 20, 2048, 32128, 1072)])
def test_gin_model_files_build_the_family(name, layers, width, vocab, millions):
  gin.clear_config()
  gin.add_config_file_search_path(str(REPO / "gin"))
  try:
    gin_utils.register_entry_points()
    gin.parse_config_files_and_bindings([str(REPO / "gin" / "models" / f"{name}.gin")], [])
    assert gin.query_parameter("train.model_config").selector == "DecoderOnlyConfig"
    cfg = registry.gin_configurables()["DecoderOnlyConfig"]()
  finally:
    gin.clear_config()
  assert registry.family(cfg) is DecoderOnlyConfig
  assert (cfg.num_layers, cfg.emb_dim, cfg.vocab_size, cfg.prefix_lm) == (
      layers, width, vocab, False)
  assert cfg.mlp_activations == ("relu",) and cfg.logits_via_embedding
  # The size ladder: the parameters the module creates (shapes only, nothing allocated)
  # are the analytic count, and the count is the one the Gin file's comment gives.
  shapes = jax.eval_shape(lambda: DecoderOnly(cfg).init(jax.random.PRNGKey(0), ENC, DEC))
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(shapes["params"])))
  assert count == _analytic_param_count(cfg)
  assert count == pytest.approx(millions * 1e6, rel=0.01), count


# ------------------------------------------------- the real trainer, moment matching, stats

TINY = DecoderOnlyConfig(vocab_size=512, emb_dim=32, num_heads=2, head_dim=16, num_layers=2,
                         mlp_dim=64, dropout_rate=0.0)


def test_trainer_moment_matching_and_param_stats_run_on_it(tmp_path):
  losses = []
  record = hooks.every_n_steps(lambda info: losses.append(info.train_metrics["loss"]), 1)
  first = train_utils.run(str(tmp_path / "pre"), steps=16, model=TINY, lr=3e-2,
                          ckpt_period=16, eval_period=16, log_period=1, hooks=[record])
  assert int(first.state.step) == 16 and len(losses) == 16
  assert np.all(np.isfinite(losses))
  # The last steps' training loss is well below the first steps'.
  assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3, losses
  init = moment_matching.MomentMatchingInit(str(tmp_path / "pre"), grouping="across_layers",
                                            checkpoint_step="latest")
  drawn = train_utils.run(str(tmp_path / "mm"), steps=1, model=TINY, init_transform=init,
                          ckpt_period=1, eval_period=1, log_period=1)
  log = "\n".join(drawn.restore_log)
  assert "moment matching from" in log and "re-drew" in log
  # all_but_embeddings keeps the (tied) token embedding fresh and copies the rest.
  moved = train_utils.run(str(tmp_path / "transfer"), steps=1, model=TINY,
                          initial=str(tmp_path / "pre"), transfer_mode="all_but_embeddings",
                          ckpt_period=1, eval_period=1, log_period=1)
  log = "\n".join(moved.restore_log)
  assert "kept fresh (seed 0): token_embedder/embedding" in log, log
  # 2 layers x (2 norms, 4 attention and 2 MLP kernels), the relpos table, the final norm.
  assert "loaded 18 tensors" in log, log
  stats = param_stats.checkpoint_stats(str(tmp_path / "pre" / "checkpoints" / "16"))
  names = {row["name"] for row in stats["tensors"]}
  assert "decoder/layers_1/self_attention/query/kernel" in names
  assert {"whole_model", "across_layers", "per_layer"} <= set(stats["groupings"])
  print("grouping errors:", stats["grouping_errors"])
