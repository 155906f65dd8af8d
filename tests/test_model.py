"""The T5 network: T5X names and counts, initializers, relative positions, attention."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthpre_jax.models import T5Config, Transformer
from synthpre_jax.models import attention
from synthpre_jax.models.layers import relative_position_bucket

SMALL = T5Config()  # T5 v1.0 small, vocab 32,128
V11_SMALL = T5Config(num_heads=6, num_encoder_layers=8, num_decoder_layers=8, mlp_dim=1024,
                     mlp_activations=("gelu", "linear"), logits_via_embedding=False)
TINY = T5Config(vocab_size=96, emb_dim=32, num_heads=4, head_dim=8, num_encoder_layers=2,
                num_decoder_layers=2, mlp_dim=64, dropout_rate=0.0)


def _abstract_params(cfg):
  tokens = jnp.ones((1, 8), jnp.int32)
  boxed = jax.eval_shape(lambda: Transformer(cfg).init(jax.random.key(0), tokens, tokens))
  return flax.traverse_util.flatten_dict(boxed["params"], sep="/")


def _count(flat):
  return sum(int(np.prod(flax.core.meta.unbox(v).shape)) for v in flat.values())


def test_t5_small_names_and_count_match_t5():
  flat = _abstract_params(SMALL)
  assert _count(flat) == 60_506_624  # T5 v1.0 small, vocab 32,128: 60.5M
  assert len(flat) == 131
  for name in ["token_embedder/embedding", "encoder/relpos_bias/rel_embedding",
               "decoder/relpos_bias/rel_embedding", "encoder/encoder_norm/scale",
               "decoder/decoder_norm/scale",
               "encoder/layers_0/attention/query/kernel",
               "encoder/layers_5/pre_attention_layer_norm/scale",
               "encoder/layers_5/pre_mlp_layer_norm/scale",
               "encoder/layers_2/mlp/wi/kernel", "encoder/layers_2/mlp/wo/kernel",
               "decoder/layers_3/encoder_decoder_attention/out/kernel",
               "decoder/layers_0/pre_self_attention_layer_norm/scale",
               "decoder/layers_0/pre_cross_attention_layer_norm/scale",
               "decoder/layers_5/self_attention/value/kernel"]:
    assert name in flat, name
  assert not any("logits_dense" in k for k in flat)  # tied embedding
  assert flax.core.meta.unbox(flat["encoder/relpos_bias/rel_embedding"]).shape == (8, 32)
  # 18 pre-attention norms in T5 small: 6 encoder + 6 self + 6 cross.
  pre_attn = [k for k in flat if k.endswith(("pre_attention_layer_norm/scale",
                                             "pre_self_attention_layer_norm/scale",
                                             "pre_cross_attention_layer_norm/scale"))]
  assert len(pre_attn) == 18


def test_t5_1_1_small_gated_untied():
  flat = _abstract_params(V11_SMALL)
  assert _count(flat) == 76_961_152  # T5 v1.1 small
  assert "decoder/logits_dense/kernel" in flat
  assert "encoder/layers_7/mlp/wi_0/kernel" in flat and "encoder/layers_7/mlp/wi_1/kernel" in flat
  assert not any(k.endswith("mlp/wi/kernel") for k in flat)


def test_every_parameter_has_logical_axes_of_its_rank():
  for name, box in _abstract_params(V11_SMALL).items():
    assert isinstance(box, flax.linen.LogicallyPartitioned), name
    assert len(box.names) == len(box.value.shape), name
    assert all(isinstance(n, str) for n in box.names), name


def test_initializers_follow_the_spec():
  cfg = T5Config(vocab_size=512, emb_dim=256, num_heads=4, head_dim=64, num_encoder_layers=1,
                 num_decoder_layers=1, mlp_dim=512, dropout_rate=0.0)
  tokens = jnp.ones((1, 4), jnp.int32)
  params = Transformer(cfg).init(jax.random.key(3), tokens, tokens)["params"]
  flat = {k: np.asarray(v) for k, v in
          flax.traverse_util.flatten_dict(flax.core.meta.unbox(params), sep="/").items()}
  layer = "encoder/layers_0/"
  np.testing.assert_allclose(flat["token_embedder/embedding"].std(), 1.0, rtol=0.02)
  np.testing.assert_allclose(flat[layer + "attention/key/kernel"].std(), 256 ** -0.5, rtol=0.03)
  np.testing.assert_allclose(flat[layer + "attention/query/kernel"].std(),
                             256 ** -0.5 / 8.0, rtol=0.03)
  np.testing.assert_allclose(flat[layer + "attention/out/kernel"].std(), 256 ** -0.5, rtol=0.03)
  wi = flat[layer + "mlp/wi/kernel"]
  np.testing.assert_allclose(wi.std(), 256 ** -0.5, rtol=0.03)
  # Truncated normal: nothing beyond 2 (scaled) standard deviations of the base normal.
  assert np.abs(wi).max() <= 2.0 * 256 ** -0.5 / 0.87962566 + 1e-6
  rel = flat["encoder/relpos_bias/rel_embedding"]
  limit = np.sqrt(3.0 * 1.0 / ((4 + 32) / 2.0))  # fan_avg uniform over [heads, buckets]
  assert np.abs(rel).max() <= limit and np.abs(rel).max() > 0.8 * limit
  assert np.all(flat[layer + "pre_attention_layer_norm/scale"] == 1.0)


def test_relative_position_buckets_match_t5():
  rel = np.array([0, -1, 1, -9, -100, -1000, 7, 200])
  bi = relative_position_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128)
  np.testing.assert_array_equal(bi, [0, 1, 17, 8, 15, 15, 23, 31])
  uni = relative_position_bucket(np.array([0, -1, 3, -20, -15, -500]), bidirectional=False,
                                 num_buckets=32, max_distance=128)
  np.testing.assert_array_equal(uni, [0, 1, 0, 17, 15, 31])


def _reference_attention(q, k, v, bias, mask):
  logits = np.einsum("btnh,bsnh->bnts", q, k) + bias
  logits = np.where(mask, logits, -1e10)
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  return np.einsum("bnts,bsnh->btnh", p, v)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_applies_bias_and_lengths_exactly(causal):
  rng = np.random.default_rng(0)
  b, t, n, h = 3, 7, 2, 4
  q, k, v = (rng.normal(size=(b, t, n, h)).astype(np.float32) for _ in range(3))
  bias = rng.normal(size=(1, n, t, t)).astype(np.float32)
  lengths = np.array([7, 4, 1], np.int32)
  mask = np.arange(t)[None, None, None, :] < lengths[:, None, None, None]
  if causal:
    mask = mask & (np.arange(t)[:, None] >= np.arange(t)[None, :])[None, None]
  want = _reference_attention(q, k, v, bias, mask)
  got = attention.attend(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), bias=jnp.asarray(bias),
                         is_causal=causal, kv_lengths=jnp.asarray(lengths))
  explicit = attention.explicit_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                                          bias=jnp.asarray(bias), is_causal=causal,
                                          kv_lengths=jnp.asarray(lengths), mask=None)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
  np.testing.assert_allclose(np.asarray(explicit), want, atol=1e-5)


def test_padding_does_not_change_real_positions():
  model = Transformer(TINY)
  rng = np.random.default_rng(1)
  enc = rng.integers(2, 96, (2, 6)).astype(np.int32)
  dec = rng.integers(2, 96, (2, 5)).astype(np.int32)
  dec[:, 0] = 0
  params = model.init(jax.random.key(0), enc, dec)["params"]
  short = model.apply({"params": params}, enc, dec)
  enc_pad = np.pad(enc, ((0, 0), (0, 4)))
  dec_pad = np.pad(dec, ((0, 0), (0, 3)))
  long = model.apply({"params": params}, enc_pad, dec_pad)
  np.testing.assert_allclose(np.asarray(long)[:, :5], np.asarray(short), atol=2e-5)


def test_bfloat16_compute_keeps_float32_params():
  cfg = TINY.replace(dtype="bfloat16")
  model = Transformer(cfg)
  tokens = jnp.ones((2, 6), jnp.int32)
  params = model.init(jax.random.key(0), tokens, tokens)["params"]
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  logits = model.apply({"params": params}, tokens, tokens)
  # Logits stay float32 by default (as T5X), bf16 on request.
  assert logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))
  low = Transformer(cfg.replace(logits_dtype="bfloat16")).apply({"params": params}, tokens, tokens)
  assert low.dtype == jnp.bfloat16


def test_config_rejects_bad_values():
  with pytest.raises(ValueError, match="mlp_activations"):
    T5Config(mlp_activations=("swish",))
  with pytest.raises(ValueError, match="dtype"):
    T5Config(dtype="float64")
