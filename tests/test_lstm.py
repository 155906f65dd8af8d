"""The LSTM baselines (synthpre_jax/models/lstm/) and the embedding-from-T5 arm:
shapes and names, padding invariance, cached decoding, learning tiny tasks through the
project's own train/eval steps, sharding, and the embedding copy. Tiny sizes, CPU."""

import functools
from pathlib import Path

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util
from jax.sharding import PartitionSpec as P

from synthpre_jax import decoding, partitioning
from synthpre_jax.checkpoints import checksums
from synthpre_jax.training import losses
from synthpre_jax.training import steps
from synthpre_jax.cli import train as train_cli
from synthpre_jax.training import train_state as state_lib
from synthpre_jax.init.lstm_embedding import LSTMEmbeddingFromT5
from synthpre_jax.models import T5Config, Transformer
from synthpre_jax.models.registry import build_model, flops_per_step
from synthpre_jax.models.lstm import (LSTMClassifier, LSTMConfig, LSTMSeq2Seq,
                                      reverse_index)

REPO = Path(__file__).resolve().parents[1]
EMB = "token_embedder/embedding"
V = 20
SMALL = LSTMConfig(vocab_size=V, emb_dim=16, hidden_dim=12, num_layers=2, dropout_rate=0.0)


@functools.lru_cache(maxsize=None)
def _jitted_init(model):
  tokens = jnp.ones((1, 8), jnp.int32)
  return jax.jit(lambda key: nn.unbox(model.init({"params": key}, tokens, tokens)["params"]))


def _init(model, seed=0):
  return _jitted_init(model)(jax.random.key(seed))


def _shapes(model):
  """The params as ShapeDtypeStructs (nothing compiled or allocated)."""
  tokens = jnp.ones((1, 8), jnp.int32)
  return nn.unbox(jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, tokens,
                                                    tokens))["params"])


def _flat(tree):
  return traverse_util.flatten_dict(tree, sep="/")


@functools.lru_cache(maxsize=None)
def _jitted_apply(model):
  return jax.jit(lambda params, enc, dec: model.apply({"params": params}, enc, dec))


def _apply(model, params, enc, dec):
  return np.asarray(_jitted_apply(model)(params, jnp.asarray(enc), jnp.asarray(dec)))


def _rows(rng, batch, length, lo=3, hi=7):
  """Right-padded random token rows (ids 3..V-1), real lengths lo..hi-1."""
  lens = rng.integers(lo, hi, size=batch)
  body = rng.integers(3, V, size=(batch, length))
  return np.where(np.arange(length)[None] < lens[:, None], body, 0).astype(np.int32), lens


def _copy_batch(rng, batch=32, length=8):
  """Copy task: target = input body + EOS; decoder inputs shifted right."""
  enc, lens = _rows(rng, batch, length, 3, length - 1)
  enc[np.arange(batch), lens] = 1
  dec = np.zeros_like(enc)
  dec[:, 1:] = enc[:, :-1]
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec,
          "decoder_target_tokens": enc.copy(),
          "decoder_loss_weights": (enc > 0).astype(np.float32)}


def _presence_batch(rng, batch=32, length=10):
  """Classification: label word 5 ("yes") when token 3 occurs, else 6 ("no"); the
  target is "<label> EOS". Half the rows get a 3, the others have theirs removed."""
  enc, lens = _rows(rng, batch, length, 3, length)
  enc = np.where(enc == 3, 4, enc)
  yes = np.arange(batch) % 2 == 0
  where = (rng.random(batch) * lens).astype(int)
  enc[np.nonzero(yes)[0], where[yes]] = 3
  tgt = np.zeros((batch, 3), np.int32)
  tgt[:, 0] = np.where(yes, 5, 6)
  tgt[:, 1] = 1
  dec = np.zeros_like(tgt)
  dec[:, 1:] = tgt[:, :-1]
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec,
          "decoder_target_tokens": tgt, "decoder_loss_weights": (tgt > 0).astype(np.float32)}


def test_config_validation_and_factory():
  with pytest.raises(ValueError, match="kind"):
    LSTMConfig(kind="lm")
  with pytest.raises(ValueError, match="hidden_dim"):
    LSTMConfig(hidden_dim=0)
  with pytest.raises(ValueError, match="dropout_rate"):
    LSTMConfig(dropout_rate=1.0)
  assert LSTMConfig().num_layers == 4 and LSTMConfig().hidden_dim == 256
  assert LSTMConfig().bidirectional and LSTMConfig().encoder_dim == 512
  assert isinstance(build_model(SMALL), LSTMSeq2Seq)
  assert isinstance(build_model(SMALL.replace(kind="classifier")), LSTMClassifier)
  assert isinstance(build_model(T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8,
                                         num_encoder_layers=1, num_decoder_layers=1,
                                         mlp_dim=32)), Transformer)
  with pytest.raises(TypeError, match="LSTMConfig"):
    build_model({"vocab_size": 3})
  small = flops_per_step(SMALL, 8, 16, 16)
  assert 0 < small < flops_per_step(SMALL.replace(hidden_dim=24), 8, 16, 16)
  # Decoding goes by protocol: the seq2seq model is decoded step by step; the classifier
  # predicts its label positions in one pass and has no decoder.
  classifier = build_model(SMALL.replace(kind="classifier"))
  assert isinstance(build_model(SMALL), decoding.Decodable)
  assert not isinstance(classifier, decoding.Decodable)
  assert isinstance(classifier, decoding.LabelPredictor)
  assert not hasattr(classifier, "decode_step")


def test_shapes_names_and_logical_axes():
  tokens = jnp.ones((1, 8), jnp.int32)
  boxed = _flat(jax.eval_shape(lambda: LSTMSeq2Seq(SMALL).init(
      {"params": jax.random.key(0)}, tokens, tokens))["params"])
  names = {k: v.names for k, v in boxed.items()}
  assert names[EMB] == ("vocab", "embed") and boxed[EMB].value.shape == (V, 16)
  assert names["encoder/layers_0/forward/input_kernel"] == ("embed", "mlp")
  assert boxed["encoder/layers_0/backward/input_kernel"].value.shape == (16, 48)
  assert boxed["encoder/layers_1/forward/input_kernel"].value.shape == (24, 48)  # 2 x 12
  assert names["encoder/layers_1/backward/recurrent_kernel"] == (None, None)
  assert boxed["decoder/layers_1/input_kernel"].value.shape == (12, 48)
  assert names["decoder/logits_dense/kernel"] == ("embed", "vocab")
  assert boxed["decoder/attention/query_kernel"].value.shape == (12, 24)
  # Forget-gate biases start at 1, the others at 0.
  bias = np.asarray(_flat(_init(LSTMSeq2Seq(SMALL)))["encoder/layers_0/forward/bias"])
  np.testing.assert_array_equal(bias, np.repeat([0.0, 1.0, 0.0, 0.0], 12))
  cls = _flat(jax.eval_shape(lambda: LSTMClassifier(
      SMALL.replace(kind="classifier", max_label_length=4)).init(
          {"params": jax.random.key(0)}, tokens, tokens))["params"])
  assert cls["head/position_embedding"].value.shape == (4, 12)
  assert not any(k.startswith("decoder/") for k in cls)
  rng = np.random.default_rng(0)
  enc, _ = _rows(rng, 3, 9)
  for kind, t_dec in (("seq2seq", 5), ("classifier", 7)):
    model = build_model(SMALL.replace(kind=kind, max_label_length=4))
    logits = _apply(model, _init(model), enc, np.zeros((3, t_dec), np.int32))
    assert logits.shape == (3, t_dec, V) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


def test_reverse_index_reverses_within_length_only():
  idx = np.asarray(reverse_index(jnp.array([3, 5, 0]), 5))
  np.testing.assert_array_equal(idx, [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]])


@pytest.mark.parametrize("kind", ["seq2seq", "classifier"])
def test_padding_does_not_change_real_positions(kind):
  model = build_model(SMALL.replace(kind=kind, max_label_length=4))
  params = _init(model, seed=1)
  rng = np.random.default_rng(1)
  enc, lens = _rows(rng, 4, 6, 2, 6)
  dec, _ = _rows(rng, 4, 4, 4, 5)
  dec[:, 0] = 0
  base = _apply(model, params, enc, dec)
  # More padding after every row (encoder and decoder) leaves the real positions alone.
  padded = _apply(model, params, np.pad(enc, ((0, 0), (0, 7))), np.pad(dec, ((0, 0), (0, 3))))
  np.testing.assert_allclose(padded[:, :4], base, rtol=1e-5, atol=1e-5)
  # The shortest row alone, unpadded, gives its row of the padded batch.
  i = int(np.argmin(lens))
  alone = _apply(model, params, enc[i:i + 1, :lens[i]], dec[i:i + 1])
  np.testing.assert_allclose(alone[0], base[i], rtol=1e-5, atol=1e-5)
  # The encoder really reads both ways: changing the LAST real token changes the outputs
  # (the classifier pools over positions, so any change shows; the seq2seq model's
  # backward direction carries it to the first encoder position).
  changed = enc.copy()
  changed[np.arange(4), lens - 1] = np.where(enc[np.arange(4), lens - 1] == 3, 4, 3)
  assert np.abs(_apply(model, params, changed, dec) - base).max() > 1e-4


def test_backward_direction_sees_the_future_and_forward_the_past():
  cfg = SMALL.replace(num_layers=1)
  model = LSTMSeq2Seq(cfg)
  params = _init(model, seed=2)
  enc = np.array([[5, 6, 7, 8, 1, 0, 0]], np.int32)
  changed = enc.copy()
  changed[0, 3] = 9
  out = lambda e: np.asarray(model.apply({"params": params}, jnp.asarray(e), method="encode"))
  a, b = out(enc), out(changed)
  h = cfg.hidden_dim
  np.testing.assert_allclose(a[0, :3, :h], b[0, :3, :h], atol=1e-6)   # forward: past only
  assert np.abs(a[0, :3, h:] - b[0, :3, h:]).max() > 1e-4            # backward: future
  np.testing.assert_allclose(a[0, 4:5, h:], b[0, 4:5, h:], atol=1e-6)  # after pos 3 (bwd)


def test_cached_decode_steps_match_the_teacher_forced_pass():
  model = build_model(SMALL.replace(max_label_length=4))
  params = _init(model, seed=3)
  rng = np.random.default_rng(3)
  enc, _ = _rows(rng, 3, 7)
  dec, _ = _rows(rng, 3, 5, 5, 6)
  dec[:, 0] = 0
  full = _apply(model, params, enc, dec)
  variables = {"params": params}
  encoded = model.apply(variables, jnp.asarray(enc), method="encode")
  _, caches = model.apply(variables, encoded, jnp.asarray(enc), 5, method="init_decoder_cache",
                          mutable=["cache", "cross_cache"])
  cache = caches["cache"]
  for t in range(5):
    logits, mutated = model.apply({"params": params, "cache": cache,
                                   "cross_cache": caches["cross_cache"]},
                                  jnp.asarray(dec[:, t:t + 1]), method="decode_step",
                                  mutable=["cache"])
    cache = mutated["cache"]
    np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, t], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="init_decoder_cache"):
    model.apply(variables, jnp.asarray(dec[:, :1]), method="decode_step", mutable=["cache"])


def test_classifier_label_logits_are_the_training_logits_and_greedy_prediction():
  model = build_model(SMALL.replace(kind="classifier", max_label_length=4))
  params = _init(model, seed=3)
  rng = np.random.default_rng(3)
  enc, _ = _rows(rng, 3, 7)
  dec, _ = _rows(rng, 3, 6, 6, 7)
  full = _apply(model, params, enc, dec)
  one_pass = np.asarray(model.apply({"params": params}, jnp.asarray(enc), 6,
                                    method="label_logits"))
  np.testing.assert_array_equal(one_pass, full)  # the decoder tokens are not read
  tokens, scores = decoding.predict_batch_with_scores(model, params, enc, max_decode_length=6)
  argmax = full.argmax(-1)
  log_probs = np.asarray(jax.nn.log_softmax(jnp.asarray(full)))
  for row in range(3):
    stop = next((t + 1 for t in range(6) if argmax[row, t] == 1), 6)
    np.testing.assert_array_equal(tokens[row, :stop], argmax[row, :stop])
    assert np.all(tokens[row, stop:] == 0)
    want = log_probs[row, np.arange(stop), argmax[row, :stop]].sum()
    np.testing.assert_allclose(scores[row], want, rtol=1e-5)


def test_project_decoder_greedy_and_beam_search_on_the_lstms():
  rng = np.random.default_rng(4)
  enc, _ = _rows(rng, 4, 6)
  for kind in ("seq2seq", "classifier"):
    model = build_model(SMALL.replace(kind=kind, max_label_length=4))
    tokens = decoding.predict_batch(model, _init(model, seed=4), enc, max_decode_length=6)
    assert tokens.shape == (4, 6)
    ended = np.cumsum(tokens == 1, axis=1) > 0  # after the first EOS: padding only
    assert np.all(tokens[:, 1:][ended[:, :-1]] == 0)
  beams, scores = decoding.predict_batch_with_scores(
      LSTMSeq2Seq(SMALL), _init(LSTMSeq2Seq(SMALL)), enc, max_decode_length=5, num_beams=3,
      return_all_beams=True)
  assert beams.shape == (4, 3, 5) and np.all(np.diff(scores, axis=1) <= 1e-6)
  with pytest.raises(ValueError, match="max_decode_length"):
    decoding.predict_batch(LSTMSeq2Seq(SMALL), _init(LSTMSeq2Seq(SMALL)), enc,
                           max_decode_length=0)
  # The classifier has no decoder to search: beam search is refused, by config too.
  classifier = SMALL.replace(kind="classifier", max_label_length=4)
  with pytest.raises(ValueError, match="beam search does not apply"):
    decoding.predict_batch(classifier, _init(build_model(classifier)), enc,
                           max_decode_length=4, num_beams=4)


def test_packed_batches_are_refused():
  model = LSTMSeq2Seq(SMALL)
  params = _init(model)
  tokens = jnp.ones((2, 4), jnp.int32)
  with pytest.raises(ValueError, match="pack"):
    model.apply({"params": params}, tokens, tokens, jnp.ones_like(tokens), jnp.ones_like(tokens))


def _one_device_mesh():
  return partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])


def _train(model, make_batch, steps_n, lr, mesh=None, seed=0):
  """Trains with the project's sharded train step (Adam) and returns the state and the
  jitted eval step."""
  mesh = mesh or _one_device_mesh()
  tx = optax.adam(lr)
  _, shardings = state_lib.abstract_state(model, tx, mesh)
  state = state_lib.create_state(model, tx, mesh, seed, shardings)
  train_step = steps.make_train_step(model, tx, mesh, shardings,
                                     loss_normalizing_factor="num_tokens")
  rng, key = np.random.default_rng(seed), jax.random.key(seed + 1)
  for _ in range(steps_n):
    state, _ = train_step(state, make_batch(rng), key)
  return state, steps.make_eval_step(model, mesh, shardings.params)


def test_seq2seq_learns_to_copy_through_the_project_train_step():
  model = LSTMSeq2Seq(SMALL.replace(num_layers=1, emb_dim=32, hidden_dim=32))
  state, eval_step = _train(model, _copy_batch, 300, 1e-2)
  held_out = _copy_batch(np.random.default_rng(99), batch=64)
  metrics = losses.summarize(jax.device_get(eval_step(state.params, held_out)))
  assert metrics["token_accuracy"] >= 0.95, metrics
  greedy = decoding.predict_batch(model, jax.device_get(state.params),
                                  held_out["encoder_input_tokens"], max_decode_length=8)
  exact = np.mean(np.all(greedy == held_out["decoder_target_tokens"], axis=1))
  assert exact >= 0.6, exact


def test_classifier_learns_token_presence_through_the_project_train_step():
  model = LSTMClassifier(SMALL.replace(kind="classifier", num_layers=1, hidden_dim=16,
                                       max_label_length=3))
  state, eval_step = _train(model, _presence_batch, 150, 1e-2)
  held_out = _presence_batch(np.random.default_rng(98), batch=64)
  metrics = losses.summarize(jax.device_get(eval_step(state.params, held_out)))
  assert metrics["sequence_accuracy"] >= 0.95, metrics
  predicted = decoding.predict_batch(model, jax.device_get(state.params),
                                     held_out["encoder_input_tokens"], max_decode_length=3)
  np.testing.assert_array_equal(predicted[:, 1], 1)  # EOS after the label
  assert np.mean(predicted[:, 0] == held_out["decoder_target_tokens"][:, 0]) >= 0.95


def _mesh_222():
  return partitioning.make_mesh(partitioning.MeshConfig(data=2, fsdp=2, model=2))


SHARDED = SMALL.replace(vocab_size=32, emb_dim=16, hidden_dim=8)


def test_params_follow_the_logical_axis_rules():
  mesh = _mesh_222()
  _, shardings = state_lib.abstract_state(LSTMSeq2Seq(SHARDED), optax.sgd(0.1), mesh)
  specs = {k: v.spec for k, v in _flat(shardings.params).items()}
  assert specs[EMB] == P("model", "fsdp")
  assert specs["encoder/layers_0/forward/input_kernel"] == P("fsdp", "model")
  assert specs["encoder/layers_0/forward/bias"] == P("model")
  assert specs["encoder/layers_0/forward/recurrent_kernel"] == P(None, None)
  assert specs["decoder/attention/out_kernel"] == P(None, None)
  assert specs["decoder/logits_dense/kernel"] == P("fsdp", "model")
  _, shardings = state_lib.abstract_state(
      LSTMClassifier(SHARDED.replace(kind="classifier")), optax.sgd(0.1), mesh)
  specs = {k: v.spec for k, v in _flat(shardings.params).items()}
  assert specs["head/logits_dense/kernel"] == P("fsdp", "model")
  assert specs["head/position_embedding"] == P(None, None)


@pytest.mark.slow
def test_sharded_train_step_matches_one_device():
  model, tx = LSTMSeq2Seq(SHARDED), optax.sgd(0.1)
  batch = _copy_batch(np.random.default_rng(5), batch=8)
  results = []
  for mesh in (_mesh_222(), _one_device_mesh()):
    _, shardings = state_lib.abstract_state(model, tx, mesh)
    state = state_lib.create_state(model, tx, mesh, 0, shardings)
    step = steps.make_train_step(model, tx, mesh, shardings)
    state, sums = step(state, batch, jax.random.key(0))
    results.append((float(sums["loss_sum"]), jax.device_get(state.params)))
  assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
  for k, v in _flat(results[0][1]).items():
    np.testing.assert_allclose(v, _flat(results[1][1])[k], rtol=1e-4, atol=1e-6, err_msg=k)


# --------------------------------------------------------------- embedding from T5

T5_TINY = T5Config(vocab_size=32, emb_dim=16, num_heads=2, head_dim=8, num_encoder_layers=1,
                   num_decoder_layers=1, mlp_dim=32, dropout_rate=0.0)


@pytest.fixture(scope="module")
def t5_run(tmp_path_factory):
  """A tiny T5 "pre-trained" run dir with one checkpoint, and its embedding."""
  rng = np.random.default_rng(7)
  params = jax.tree.map(lambda x: rng.normal(0.5, 3.0, x.shape).astype(np.float32),
                        _shapes(Transformer(T5_TINY)))  # not N(0, 1)
  run = tmp_path_factory.mktemp("t5") / "run"
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(run / "checkpoints" / "11" / "params", params)
  ckpt.wait_until_finished()
  checksums.seal(run / "checkpoints" / "11")
  return run, np.asarray(_flat(params)[EMB])


def _lstm_state(cfg, mesh):
  """Default-initialised params placed in their shardings on `mesh`, and those."""
  model = build_model(cfg)
  _, shardings = state_lib.abstract_state(model, optax.sgd(0.1), mesh)
  return jax.device_put(_init(model), shardings.params), shardings.params


def test_embedding_from_t5_copies_exactly_that_tensor_in_its_sharding(t5_run):
  run, t5_emb = t5_run
  mesh = _mesh_222()
  params, shardings = _lstm_state(SHARDED, mesh)
  before = {k: np.asarray(v) for k, v in _flat(params).items()}
  transform = LSTMEmbeddingFromT5(str(run))
  new, lines = transform(params, mesh, shardings, seed=0)
  flat = _flat(new)
  np.testing.assert_array_equal(np.asarray(flat[EMB]), t5_emb)
  assert flat[EMB].sharding == _flat(shardings)[EMB]
  for k, v in before.items():
    if k != EMB:
      np.testing.assert_array_equal(np.asarray(flat[k]), v, err_msg=k)
  text = "\n".join(lines)
  assert "checkpoints/11/params" in text and "copied exactly" in text
  assert "input embedding from T5" in transform.description
  # rescale=True keeps the directions and takes the fresh embedding's SD.
  rescaled, lines = LSTMEmbeddingFromT5(str(run), rescale=True)(params, mesh, shardings, 0)
  got = np.asarray(_flat(rescaled)[EMB])
  assert got.std() == pytest.approx(before[EMB].std(), rel=1e-4)
  np.testing.assert_allclose(got * (t5_emb.std() / got.std()), t5_emb, rtol=1e-4, atol=1e-5)


def test_embedding_from_t5_rejects_mismatches_clearly(t5_run, tmp_path):
  run, t5_emb = t5_run
  mesh, sh = None, None  # unsharded params (no shardings given): copied as they are
  plain, _ = LSTMEmbeddingFromT5(str(run))(_init(LSTMSeq2Seq(SHARDED)), mesh, sh, 0)
  np.testing.assert_array_equal(np.asarray(_flat(plain)[EMB]), t5_emb)
  # The shape checks come first: abstract params are enough to hit them.
  wide = _shapes(LSTMSeq2Seq(SHARDED.replace(emb_dim=24)))
  with pytest.raises(ValueError, match=r"LSTMConfig.emb_dim = 16 \(the T5 d_model\)"):
    LSTMEmbeddingFromT5(str(run))(wide, mesh, sh, 0)
  other_vocab = _shapes(LSTMClassifier(SHARDED.replace(vocab_size=40, kind="classifier")))
  with pytest.raises(ValueError, match="LSTMConfig.vocab_size = 32"):
    LSTMEmbeddingFromT5(str(run))(other_vocab, mesh, sh, 0)
  with pytest.raises(FileNotFoundError, match="EMBEDDING_CHECKPOINT"):
    LSTMEmbeddingFromT5(str(tmp_path / "missing"))(wide, mesh, sh, 0)
  no_emb = tmp_path / "no_emb"
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(no_emb / "checkpoints" / "1" / "params", {"encoder": {"w": np.zeros((2, 2))}})
  ckpt.wait_until_finished()
  checksums.seal(no_emb / "checkpoints" / "1")
  with pytest.raises(ValueError, match="has no 'token_embedder/embedding'"):
    LSTMEmbeddingFromT5(str(no_emb))(other_vocab, mesh, sh, 0)
  with pytest.raises(ValueError, match="EMBEDDING_CHECKPOINT"):
    LSTMEmbeddingFromT5("")


# --------------------------------------------------------------------------- Gin files


def _gin_names():
  """Registers LSTMConfig and the init transform with Gin unless train.py already does."""
  names = {"LSTMConfig": LSTMConfig, "lstm_embedding_from_t5": LSTMEmbeddingFromT5}
  for name, cls in names.items():
    if name not in train_cli.CONFIGURABLES:
      train_cli.CONFIGURABLES[name] = gin.external_configurable(cls, name=name, module=None)
  return train_cli.CONFIGURABLES


@pytest.mark.parametrize("name,kind,layers,hidden,vocab,emb", [
    ("lstm_seq2seq", "seq2seq", 4, 256, 32128, 512),
    ("lstm_classifier", "classifier", 4, 256, 32128, 512),
    ("lstm_seq2seq_tiny", "seq2seq", 2, 64, 8192, 64),
    ("lstm_classifier_tiny", "classifier", 2, 64, 8192, 64),
])
def test_gin_model_files(name, kind, layers, hidden, vocab, emb):
  configurables = _gin_names()
  gin.clear_config()
  gin.add_config_file_search_path(str(REPO / "gin"))  # the model files' includes
  try:
    gin.parse_config_files_and_bindings(
        [str(REPO / "gin" / "models" / f"{name}.gin"),
         str(REPO / "gin" / "init" / "lstm_embedding_from_t5.gin")],
        ["EMBEDDING_CHECKPOINT = '/tmp/t5'"])
    cfg = configurables["LSTMConfig"]()
    transform = configurables["lstm_embedding_from_t5"]()
    assert gin.query_parameter("train.model_config").selector == "LSTMConfig"
    assert gin.query_parameter("train.init_transform").selector == "lstm_embedding_from_t5"
  finally:
    gin.clear_config()
  assert (cfg.kind, cfg.num_layers, cfg.hidden_dim, cfg.vocab_size, cfg.emb_dim) == (
      kind, layers, hidden, vocab, emb)
  assert cfg.bidirectional
  assert transform == LSTMEmbeddingFromT5("/tmp/t5", rescale=False)


# ------------------------------------------------------- the trainer, end to end (slow)


def test_trainer_trains_the_lstm_with_the_embedding_transform(t5_run, tmp_path):
  """`trainer.train` builds the LSTM from its config (models.registry): it trains,
  evaluates, checkpoints, and applies the third arm's init transform at step 0."""
  from tests import train_utils as tu  # pylint: disable=g-import-not-at-top
  del t5_run
  cfg = SMALL.replace(vocab_size=512, emb_dim=16, hidden_dim=16, num_layers=1)
  result = tu.run(str(tmp_path / "lstm"), steps=8, model=cfg, lr=1e-2)
  assert np.isfinite(result.eval_metrics["loss"]) and result.eval_metrics["token_accuracy"] > 0
  saved = tu.load_step_params(str(tmp_path / "lstm"))
  assert "encoder/layers_0/backward/recurrent_kernel" in saved
  # The third arm: a checkpoint holding a [512, 16] embedding; lr 0 keeps it as copied.
  t5_emb = np.random.default_rng(8).normal(0, 2, (512, 16)).astype(np.float32)
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / "t5" / "checkpoints" / "5" / "params",
            {"token_embedder": {"embedding": t5_emb}})
  ckpt.wait_until_finished()
  checksums.seal(tmp_path / "t5" / "checkpoints" / "5")
  result = tu.run(str(tmp_path / "arm3"), steps=2, model=cfg, lr=0.0,
                  init_transform=LSTMEmbeddingFromT5(str(tmp_path / "t5")))
  assert any("LSTM input embedding from" in line for line in result.restore_log)
  np.testing.assert_array_equal(tu.load_step_params(str(tmp_path / "arm3"))[EMB], t5_emb)
