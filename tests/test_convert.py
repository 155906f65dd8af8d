"""python -m synthpre_jax.convert: Hugging Face and T5X checkpoints in, Hugging Face out.

Tiny random `transformers` T5 models (v1.0: ReLU, tied and scaled output; v1.1: gated
GELU, untied lm_head) are saved with save_pretrained, converted, and compared with
transformers on the same inputs: encoder outputs, teacher-forced logits, greedy decoding.
T5X checkpoints are built by hand in T5X's two on-disk layouts.

Only the tests that use the Hugging Face models (the `converted` fixture) need torch and
transformers; they skip without them. The T5X-layout tests build their trees from numpy
and run anyway (`test_t5x_layout_tests_pass_with_torch_unimportable` proves it).
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:
  import torch
  import transformers
except ImportError:  # the Hugging Face tests skip (see `converted`); the rest run
  torch = transformers = None

from synthpre_jax import checkpoints, partitioning  # noqa: E402
from synthpre_jax.training import optimizers  # noqa: E402
from synthpre_jax.training import trainer  # noqa: E402
from synthpre_jax.training import train_state as state_lib  # noqa: E402
from synthpre_jax.data import vocabulary  # noqa: E402
from synthpre_jax.convert import ConversionError, commands, hf, project  # noqa: E402
from synthpre_jax.convert import __main__ as cli  # noqa: E402
from synthpre_jax.models import T5Config, Transformer  # noqa: E402

VOCAB, D_MODEL, HEADS, D_KV, D_FF = 128, 32, 4, 8, 64
KINDS = ("v1_0", "v1_1")
# Max abs differences measured against transformers (printed with -s; see the report).
MEASURED: dict = {}


def _hf_config(kind: str, **overrides):
  kw = dict(vocab_size=VOCAB, d_model=D_MODEL, d_kv=D_KV, d_ff=D_FF, num_layers=2,
            num_decoder_layers=2, num_heads=HEADS, dropout_rate=0.0,
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
            feed_forward_proj="relu" if kind == "v1_0" else "gated-gelu",
            tie_word_embeddings=kind == "v1_0")
  kw.update(overrides)
  return transformers.T5Config(**kw)


def _hf_model(kind: str, seed: int = 0):
  """A random HF T5; norm scales randomised too, and v1.1's lm_head really untied."""
  torch.manual_seed(seed)
  model = transformers.T5ForConditionalGeneration(_hf_config(kind)).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("layer_norm.weight"):
        p.copy_(1.0 + 0.3 * torch.randn_like(p))
    if kind == "v1_1":  # transformers 5 ties lm_head at construction; real v1.1 is untied
      model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, D_MODEL) * 0.5)
      model.all_tied_weights_keys.pop("lm_head.weight", None)
  return model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """{kind: (hf model, hf dir, converted dir, conversion printout)}; skips the tests
  using it when torch or transformers is not importable."""
  if transformers is None:
    pytest.skip("needs torch and transformers (the Hugging Face reference models)")
  out = {}
  for kind in KINDS:
    root = tmp_path_factory.mktemp(kind)
    model = _hf_model(kind)
    model.save_pretrained(root / "hf")
    lines = commands.from_hf(str(root / "hf"), str(root / "ours"),
                             activation_dtype="float32")
    out[kind] = (model, root / "hf", root / "ours", "\n".join(lines))
  return out


def _load(path) -> tuple[dict, T5Config]:
  params, meta, _ = project.read_checkpoint(str(path))
  return params, project.config_from_meta(meta)


def _tree(flat):
  from flax import traverse_util
  return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()}, sep="/")


INPUTS = np.array([[5, 17, 99, 3, 42, 8, 71, 23, 64, 12, 1, 0, 0],    # right-padded
                   [9, 33, 4, 101, 56, 77, 2, 18, 90, 27, 45, 30, 1]], np.int32)
DECODER_INPUTS = np.array([[0, 14, 7, 88, 3, 51, 19],
                           [0, 61, 9, 2, 120, 44, 6]], np.int32)


def _hf_outputs(model):
  ids = torch.tensor(INPUTS, dtype=torch.long)
  mask = (ids > 0).long()
  dec = torch.tensor(DECODER_INPUTS, dtype=torch.long)
  with torch.no_grad():
    enc = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec,
                   decoder_attention_mask=torch.ones_like(dec)).logits
  return enc.numpy(), logits.numpy()


def _our_outputs(params, config):
  model = Transformer(config.replace(dtype="float32", dropout_rate=0.0,
                                     attention_implementation="xla"))
  run = jax.jit(lambda p, e, d: (
      model.apply({"params": p}, e, method=Transformer.encode),
      model.apply({"params": p}, e, d)))
  enc, logits = run(_tree(params), jnp.asarray(INPUTS), jnp.asarray(DECODER_INPUTS))
  return np.asarray(enc), np.asarray(logits)


@pytest.mark.parametrize("kind", KINDS)
def test_from_hf_matches_transformers_encoder_and_logits(converted, kind):
  model, _, ours, printout = converted[kind]
  params, config = _load(ours)
  assert config.logits_via_embedding == (kind == "v1_0")
  assert config.mlp_activations == (("relu",) if kind == "v1_0" else ("gelu", "linear"))
  assert ("tied to the token embedding" in printout) == (kind == "v1_0")
  hf_enc, hf_logits = _hf_outputs(model)
  enc, logits = _our_outputs(params, config)
  valid = INPUTS > 0  # HF computes padded positions too; they are never attended to
  enc_diff = float(np.abs(enc - hf_enc)[valid].max())
  logit_diff = float(np.abs(logits - hf_logits).max())
  MEASURED[kind] = dict(encoder=enc_diff, logits=logit_diff,
                        logit_scale=float(np.abs(hf_logits).max()))
  print(f"\n{kind}: max |encoder diff| {enc_diff:.2e}, max |logit diff| {logit_diff:.2e} "
        f"(max |logit| {np.abs(hf_logits).max():.2f})")
  np.testing.assert_allclose(enc[valid], hf_enc[valid], atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(logits, hf_logits, atol=5e-5, rtol=1e-5)


def _greedy(params, config, inputs, steps):
  """Greedy decoding with the project's full forward (no cache): position t is read
  from the teacher-forced logits of the tokens chosen so far; after EOS, padding."""
  model = Transformer(config.replace(dtype="float32", dropout_rate=0.0))
  forward = jax.jit(lambda p, e, d: model.apply({"params": p}, e, d))
  p = _tree(params)
  dec = np.zeros((inputs.shape[0], steps + 1), np.int32)
  done = np.zeros(inputs.shape[0], bool)
  for t in range(steps):
    logits = np.asarray(forward(p, jnp.asarray(inputs), jnp.asarray(dec[:, :-1])))
    token = np.where(done, 0, logits[:, t].argmax(-1))
    dec[:, t + 1] = token
    done |= token == 1
  return dec


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_decode_matches_transformers_generate(converted, kind):
  model, _, ours, _ = converted[kind]
  params, config = _load(ours)
  steps = 6
  ids = torch.tensor(INPUTS, dtype=torch.long)
  with torch.no_grad():
    want = model.generate(input_ids=ids, attention_mask=(ids > 0).long(), do_sample=False,
                          num_beams=1, max_new_tokens=steps, min_new_tokens=0).numpy()
  got = _greedy(params, config, INPUTS, steps)
  np.testing.assert_array_equal(got[:, :want.shape[1]], want)
  assert (got[:, want.shape[1]:] == 0).all()
  assert want.shape[1] > 2  # decoded several tokens, not an immediate EOS


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_project_hf_project_is_identical_and_transformers_loads_it(
    converted, kind, tmp_path):
  model, _, ours, _ = converted[kind]
  params, config = _load(ours)
  lines = commands.to_hf(str(ours), str(tmp_path / "hf"))
  assert any("model.safetensors" in line for line in lines)
  assert sorted(os.listdir(tmp_path / "hf")) == ["config.json", "generation_config.json",
                                                 "model.safetensors"]
  commands.from_hf(str(tmp_path / "hf"), str(tmp_path / "back"))
  back, back_config = _load(tmp_path / "back")
  assert back_config == config.replace(dtype="bfloat16")  # the default ACTIVATION_DTYPE
  assert back.keys() == params.keys()
  for name in params:
    np.testing.assert_array_equal(back[name], params[name], err_msg=name)

  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
  assert reloaded.config.is_gated_act == (kind == "v1_1")
  for (n1, p1), (n2, p2) in zip(model.state_dict().items(), reloaded.state_dict().items()):
    assert n1 == n2
    np.testing.assert_array_equal(p1.numpy(), p2.numpy(), err_msg=n1)
  ids = torch.tensor(INPUTS, dtype=torch.long)
  with torch.no_grad():
    kw = dict(input_ids=ids, attention_mask=(ids > 0).long(), do_sample=False, num_beams=1,
              max_new_tokens=5)
    np.testing.assert_array_equal(reloaded.generate(**kw).numpy(), model.generate(**kw).numpy())
  np.testing.assert_array_equal(_hf_outputs(reloaded)[1], _hf_outputs(model)[1])


def test_converted_checkpoint_restores_like_any_initial_checkpoint(converted, tmp_path):
  _, _, ours, _ = converted["v1_1"]
  params, config = _load(ours)
  # The trainer's INITIAL_CHECKPOINT_PATH steps: resolve, check shapes, restore sharded.
  mesh = partitioning.make_mesh(partitioning.MeshConfig())
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig(schedule="constant",
                                                            learning_rate=0.0))
  model = Transformer(config)
  shapes, shardings = state_lib.abstract_state(model, tx, mesh)
  for given in (ours, ours / "checkpoints", ours / "checkpoints" / "0"):
    path = checkpoints.resolve_params_path(str(given))
    assert path == ours / "checkpoints" / "0" / "params"
  # No spiece.model beside the HF weights: the converter records T5's vocabulary.
  assert checkpoints.read_meta(path)["vocabulary"] == vocabulary.t5_identity()
  expected = {k: tuple(v.shape) for k, v in checkpoints.flat_names(shapes.params).items()}
  checkpoints.check_compatible(checkpoints.params_metadata(path), expected, str(path))
  loaded = checkpoints.load_params(path, shapes.params, shardings.params)
  for name, value in checkpoints.flat_names(loaded).items():
    np.testing.assert_array_equal(np.asarray(value), params[name], err_msg=name)


@pytest.mark.slow
def test_one_finetuning_step_starts_from_the_converted_checkpoint(converted, tmp_path):
  _, _, ours, _ = converted["v1_1"]
  params, config = _load(ours)
  rng = np.random.default_rng(0)
  batch = {"encoder_input_tokens": rng.integers(2, VOCAB, (8, 12)).astype(np.int32),
           "decoder_input_tokens": rng.integers(2, VOCAB, (8, 6)).astype(np.int32),
           "decoder_target_tokens": rng.integers(2, VOCAB, (8, 6)).astype(np.int32)}
  cfg = trainer.TrainConfig(model_dir=str(tmp_path / "ft"), train_steps=1, batch_size=8,
                            inputs_length=12, targets_length=6, log_period=1,
                            eval_period=1, initial_checkpoint_path=str(ours))
  result = trainer.train(
      model_config=config, train_config=cfg,
      optimizer_config=optimizers.OptimizerConfig(schedule="constant", learning_rate=0.0),
      mesh_config=partitioning.MeshConfig(),
      checkpoint_config=checkpoints.CheckpointConfig(period=1, keep=1, async_save=False),
      train_data=lambda start: iter([batch] * 2))
  assert "loaded 52 tensors" in "\n".join(result.restore_log)
  for name, value in checkpoints.flat_names(result.state.params).items():
    np.testing.assert_array_equal(np.asarray(value), params[name], err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_model_gin_binds_the_converted_config(converted, kind):
  import gin
  from synthpre_jax.cli import train as train_cli
  _, _, ours, _ = converted[kind]
  _, config = _load(ours)
  assert project.read_gin_model(str(ours / "model.gin")) == config
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([str(ours / "model.gin")], [],
                                        finalize_config=False)
    bound = gin.query_parameter("train.model_config").scoped_configurable_fn()
  finally:
    gin.clear_config()
  assert bound == config
  assert train_cli.CONFIGURABLES["T5Config"]  # the name model.gin binds


def test_bfloat16_safetensors_and_pytorch_bin_convert(converted, tmp_path):
  model, _, _, _ = converted["v1_0"]
  bf16 = transformers.T5ForConditionalGeneration.from_pretrained(
      converted["v1_0"][1]).to(torch.bfloat16)
  bf16.save_pretrained(tmp_path / "bf16")
  commands.from_hf(str(tmp_path / "bf16"), str(tmp_path / "bf16_ours"))
  got, _ = _load(tmp_path / "bf16_ours")
  want = bf16.shared.weight.detach().to(torch.float32).numpy()
  np.testing.assert_array_equal(got["token_embedder/embedding"], want)

  (tmp_path / "bin").mkdir()
  (tmp_path / "bin" / "config.json").write_text(
      (converted["v1_0"][1] / "config.json").read_text())
  torch.save(model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
  commands.from_hf(str(tmp_path / "bin"), str(tmp_path / "bin_ours"))
  from_bin, _ = _load(tmp_path / "bin_ours")
  from_st, _ = _load(converted["v1_0"][2])
  assert from_bin.keys() == from_st.keys()
  for name in from_st:
    np.testing.assert_array_equal(from_bin[name], from_st[name], err_msg=name)


# ---------------------------------------------------------------- T5X


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tests of T5X's on-disk layouts: they need neither torch nor transformers.
T5X_LAYOUT_TESTS = ("test_from_t5x_classic_layout_puts_every_value_in_place",
                    "test_from_t5x_orbax_layout_and_3d_attention_kernels",
                    "test_from_t5x_bad_inputs")
T5X_GIN = ("network.T5Config.mlp_activations = ('gelu', 'linear')\n"
           "network.T5Config.relative_attention_max_distance = 128\n")


def _t5x_shapes() -> dict:
  """Names and shapes of a T5X v1.1 target tree (gated GELU, untied logits, 2+2 layers)."""
  attention = {"query": (D_MODEL, HEADS * D_KV), "key": (D_MODEL, HEADS * D_KV),
               "value": (D_MODEL, HEADS * D_KV), "out": (HEADS * D_KV, D_MODEL)}
  mlp = {"wi_0": (D_MODEL, D_FF), "wi_1": (D_MODEL, D_FF), "wo": (D_FF, D_MODEL)}
  shapes = {"token_embedder/embedding": (VOCAB, D_MODEL),
            "decoder/logits_dense/kernel": (D_MODEL, VOCAB)}
  for stack in ("encoder", "decoder"):
    shapes[f"{stack}/relpos_bias/rel_embedding"] = (HEADS, 32)
    shapes[f"{stack}/{stack}_norm/scale"] = (D_MODEL,)
    atts = ([("attention", "pre_attention_layer_norm")] if stack == "encoder" else
            [("self_attention", "pre_self_attention_layer_norm"),
             ("encoder_decoder_attention", "pre_cross_attention_layer_norm")])
    for i in range(2):
      for name, norm in atts:
        for kernel, shape in attention.items():
          shapes[f"{stack}/layers_{i}/{name}/{kernel}/kernel"] = shape
        shapes[f"{stack}/layers_{i}/{norm}/scale"] = (D_MODEL,)
      for kernel, shape in mlp.items():
        shapes[f"{stack}/layers_{i}/mlp/{kernel}/kernel"] = shape
      shapes[f"{stack}/layers_{i}/pre_mlp_layer_norm/scale"] = (D_MODEL,)
  return shapes


def _t5x_params(seed: int = 0) -> dict:
  """A random T5X target tree from numpy alone: every tensor distinct, norm scales ~1."""
  rng = np.random.default_rng(seed)
  return {name: ((1.0 + 0.3 * rng.standard_normal(shape)) if name.endswith("/scale") else
                 0.5 * rng.standard_normal(shape)).astype(np.float32)
          for name, shape in _t5x_shapes().items()}


def _t5x_params_from_hf(model):
  """A T5X target tree (T5X names, 2-D kernels) from a v1.1 HF model, built by hand from
  the torch tensors; the query kernel is stored as is, scaling folded in (T5X)."""
  sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  t = {"token_embedder/embedding": sd["shared.weight"],
       "decoder/logits_dense/kernel": sd["lm_head.weight"].T}
  for stack in ("encoder", "decoder"):
    t[f"{stack}/relpos_bias/rel_embedding"] = sd[
        f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T
    t[f"{stack}/{stack}_norm/scale"] = sd[f"{stack}.final_layer_norm.weight"]
    for i in range(2):
      b = f"{stack}.block.{i}.layer"
      atts = ([("attention", "pre_attention_layer_norm", 0, "SelfAttention")]
              if stack == "encoder" else
              [("self_attention", "pre_self_attention_layer_norm", 0, "SelfAttention"),
               ("encoder_decoder_attention", "pre_cross_attention_layer_norm", 1,
                "EncDecAttention")])
      for name, norm, j, hf_name in atts:
        for ours, theirs in (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o")):
          t[f"{stack}/layers_{i}/{name}/{ours}/kernel"] = sd[f"{b}.{j}.{hf_name}.{theirs}.weight"].T
        t[f"{stack}/layers_{i}/{norm}/scale"] = sd[f"{b}.{j}.layer_norm.weight"]
      j = len(atts)
      for m in ("wi_0", "wi_1", "wo"):
        t[f"{stack}/layers_{i}/mlp/{m}/kernel"] = sd[f"{b}.{j}.DenseReluDense.{m}.weight"].T
      t[f"{stack}/layers_{i}/pre_mlp_layer_norm/scale"] = sd[f"{b}.{j}.layer_norm.weight"]
  return {k: np.ascontiguousarray(v, np.float32) for k, v in t.items()}


def _nest(flat):
  out = {}
  for k, v in flat.items():
    node = out
    *parents, leaf = k.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = v
  return out


def _write_classic_t5x(step_dir, target, drop=(), reshape3d=()):
  """T5X's Checkpointer layout: msgpack `checkpoint` with TensorStore specs (relative
  paths, gzip zarr) for partitioned arrays and inline arrays for the rest."""
  import tensorstore as ts
  from flax import serialization
  step_dir.mkdir(parents=True)

  def spec_for(name, arr):
    rel = name.replace("/", ".")
    spec = {"driver": "zarr", "dtype": "float32",
            "kvstore": {"driver": "file", "path": rel},
            "metadata": {"compressor": {"id": "gzip"}, "shape": list(arr.shape),
                         "chunks": list(arr.shape)}}
    absolute = dict(spec, kvstore={"driver": "file", "path": str(step_dir / rel)})
    ts.open(absolute, create=True).result().write(arr).result()
    return spec

  written = {}
  for name, arr in target.items():
    if name in drop:
      continue
    if name in reshape3d:
      arr = arr.reshape(arr.shape[0], HEADS, D_KV)
    full = f"target/{name}"
    # Small unpartitioned arrays (T5X: no mesh axes) go inline into the msgpack.
    written[full] = arr if name.endswith("rel_embedding") else spec_for(full, arr)
  written["state/step"] = np.int32(1000)
  for name in ("encoder/layers_0/attention/query/kernel", "decoder/decoder_norm/scale"):
    v = np.ones(target[name].shape[:1], np.float32)
    written[f"state/param_states/{name}/v_row"] = spec_for(
        f"state/param_states/{name}/v_row", v)
  (step_dir / "checkpoint").write_bytes(
      serialization.msgpack_serialize({"version": 3, "optimizer": _nest(written)}))


def test_from_t5x_classic_layout_puts_every_value_in_place(tmp_path):
  target = _t5x_params()
  model_dir = tmp_path / "t5x_run"
  _write_classic_t5x(model_dir / "checkpoint_1000", target)
  _write_classic_t5x(model_dir / "checkpoint_500", {k: v * 0 for k, v in target.items()})
  (model_dir / "config.gin").write_text(T5X_GIN)
  lines = commands.from_t5x(str(model_dir), str(tmp_path / "ours"))
  text = "\n".join(lines)
  assert "checkpoint_1000" in text and "step 1000" in text and "query kernels copied" in text
  params, config = _load(tmp_path / "ours")
  assert (tmp_path / "ours" / "checkpoints" / "1000" / "params").exists()
  assert config.mlp_activations == ("gelu", "linear") and not config.logits_via_embedding
  # The converted checkpoint names T5's vocabulary, so a fine-tuning with another
  # vocabulary is refused (synthpre_jax.data.vocabulary).
  meta = checkpoints.read_meta(tmp_path / "ours" / "checkpoints" / "1000" / "params")
  assert meta["vocabulary"]["name"] == "t5"
  assert meta["vocabulary"]["sha256"] == vocabulary.T5_SPM_SHA256
  assert "vocabulary: T5's" in text
  assert params.keys() == target.keys()
  for name in target:  # the query kernel too: copied as is, no rescaling
    np.testing.assert_array_equal(params[name], target[name], err_msg=name)


def test_from_t5x_computes_what_transformers_computes(converted, tmp_path):
  model = converted["v1_1"][0]
  target = _t5x_params_from_hf(model)
  assert {k: v.shape for k, v in target.items()} == _t5x_shapes()
  _write_classic_t5x(tmp_path / "t5x_run" / "checkpoint_1000", target)
  (tmp_path / "t5x_run" / "config.gin").write_text(T5X_GIN)
  commands.from_t5x(str(tmp_path / "t5x_run"), str(tmp_path / "ours"))
  params, config = _load(tmp_path / "ours")
  # Independent of any mapping code: the query kernel is the HF q weight, unscaled.
  q = model.encoder.block[1].layer[0].SelfAttention.q.weight.detach().numpy()
  np.testing.assert_array_equal(params["encoder/layers_1/attention/query/kernel"], q.T)
  # Same function as transformers: no rescaling was needed anywhere.
  _, hf_logits = _hf_outputs(model)
  _, logits = _our_outputs(params, config)
  np.testing.assert_allclose(logits, hf_logits, atol=5e-5, rtol=1e-5)


def test_from_t5x_orbax_layout_and_3d_attention_kernels(tmp_path):
  import orbax.checkpoint as ocp
  target = _t5x_params()
  tree = {"target": _nest({k: (v.reshape(D_MODEL, HEADS, D_KV)
                               if k.endswith("attention/key/kernel") else v)
                           for k, v in target.items()}),
          "state": {"step": np.int32(7), "param_states": _nest(
              {f"{k}/v": np.zeros_like(v) for k, v in list(target.items())[:3]})}}
  ocp.PyTreeCheckpointer().save(tmp_path / "run" / "checkpoint_7", tree)
  lines = commands.from_t5x(str(tmp_path / "run" / "checkpoint_7"), str(tmp_path / "ours"))
  assert "Orbax" in lines[0] and "flattened 6 3-D attention kernels" in "\n".join(lines)
  params, _ = _load(tmp_path / "ours")
  for name in target:
    np.testing.assert_array_equal(params[name], target[name], err_msg=name)


def test_from_t5x_bad_inputs(tmp_path):
  target = _t5x_params()
  _write_classic_t5x(tmp_path / "a" / "checkpoint_1", target,
                     drop=("decoder/layers_1/mlp/wo/kernel",))
  with pytest.raises(ConversionError, match=r"(?s)missing \(1\):\s+decoder/layers_1/mlp/wo"):
    commands.from_t5x(str(tmp_path / "a"), str(tmp_path / "out"))
  bad = dict(target)
  bad["encoder/layers_0/mlp/wo/kernel"] = np.zeros((D_FF + 1, D_MODEL), np.float32)
  _write_classic_t5x(tmp_path / "b" / "checkpoint_1", bad)
  with pytest.raises(ConversionError, match=r"'encoder/layers_0/mlp/wo/kernel' has shape "
                                            r"\(65, 32\).*implies \(64, 32\)"):
    commands.from_t5x(str(tmp_path / "b"), str(tmp_path / "out"))
  with pytest.raises(ConversionError, match="No T5X checkpoint"):
    commands.from_t5x(str(tmp_path), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()


# Runs in a fresh interpreter where `import torch` and `import transformers` fail.
_WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
import pytest

class Outcomes:
  def __init__(self):
    self.seen = {}

  def pytest_runtest_logreport(self, report):
    if report.when == "call" or report.outcome != "passed":
      self.seen[report.nodeid.rsplit("::", 1)[-1]] = report.outcome

outcomes = Outcomes()
code = pytest.main(sys.argv[1:], plugins=[outcomes])
assert sys.modules.get("torch") is None, "torch was imported"
print("OUTCOMES " + json.dumps({"exit": int(code), "tests": outcomes.seen}))
"""


def test_t5x_layout_tests_pass_with_torch_unimportable(tmp_path):
  ids = [f"tests/test_convert.py::{name}" for name in T5X_LAYOUT_TESTS]
  res = subprocess.run(
      [sys.executable, "-c", _WITHOUT_TORCH, *ids, "-q", "-p", "no:cacheprovider",
       f"--basetemp={tmp_path / 'inner'}"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  lines = [l for l in res.stdout.splitlines() if l.startswith("OUTCOMES ")]
  assert lines, res.stdout[-3000:] + res.stderr[-3000:]
  got = json.loads(lines[-1][len("OUTCOMES "):])
  assert got["tests"] == {name: "passed" for name in T5X_LAYOUT_TESTS}, res.stdout[-3000:]
  assert got["exit"] == 0


# ---------------------------------------------------------------- bad input


def _copy_hf(src, dst, *, config_edit=None, tensor_edit=None):
  from safetensors.numpy import load_file, save_file
  dst.mkdir()
  cfg = json.loads((src / "config.json").read_text())
  if config_edit:
    config_edit(cfg)
  (dst / "config.json").write_text(json.dumps(cfg))
  tensors = load_file(src / "model.safetensors")
  if tensor_edit:
    tensor_edit(tensors)
  save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
  return dst


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(model_type="bart"), "model_type='bart' is not supported"),
    (lambda c: c.update(architectures=["T5EncoderModel"]), "architectures=.*T5EncoderModel"),
    (lambda c: c.update(feed_forward_proj="gelu"), "feed_forward_proj='gelu' is not supported"),
    (lambda c: c.update(is_gated_act=True), "is_gated_act=True contradicts feed_forward_proj"),
    (lambda c: c.update(layer_norm_epsilon=1e-5), "layer_norm_epsilon=1e-05 is not supported"),
    (lambda c: c.update(num_layers=3),
     r"(?s)missing \(8\):.*encoder.block.2.layer.0.SelfAttention.q.weight"),
])
def test_unsupported_configs_name_the_field(converted, tmp_path, edit, message):
  src = _copy_hf(converted["v1_0"][1], tmp_path / "hf", config_edit=edit)
  with pytest.raises(ConversionError, match=message):
    commands.from_hf(str(src), str(tmp_path / "out"))
  assert os.listdir(tmp_path) == ["hf"]  # nothing half-written


def test_gated_mismatch_missing_extra_and_shape_errors_list_the_tensors(converted, tmp_path):
  v11 = converted["v1_1"][1]
  src = _copy_hf(v11, tmp_path / "relu", config_edit=lambda c: c.update(
      feed_forward_proj="relu", is_gated_act=False, dense_act_fn="relu"))
  with pytest.raises(ConversionError) as e:
    commands.from_hf(str(src), str(tmp_path / "out"))
  msg = str(e.value)
  assert "missing (4):" in msg and "encoder.block.0.layer.1.DenseReluDense.wi.weight" in msg
  assert "unexpected (8):" in msg and "decoder.block.1.layer.2.DenseReluDense.wi_1.weight" in msg

  def drop_and_add(t):
    del t["decoder.block.1.layer.1.EncDecAttention.k.weight"]
    t["encoder.block.0.layer.0.SelfAttention.q.bias"] = np.zeros(32, np.float32)
  src = _copy_hf(v11, tmp_path / "missing", tensor_edit=drop_and_add)
  with pytest.raises(ConversionError, match=r"(?s)missing \(1\):\s+decoder.block.1.layer.1."
                     r"EncDecAttention.k.weight.*unexpected \(1\):\s+encoder.block.0.layer.0."
                     r"SelfAttention.q.bias"):
    commands.from_hf(str(src), str(tmp_path / "out"))

  def wrong_shape(t):
    t["decoder.block.0.layer.2.DenseReluDense.wo.weight"] = np.zeros((32, 65), np.float32)
  src = _copy_hf(v11, tmp_path / "shape", tensor_edit=wrong_shape)
  with pytest.raises(ConversionError, match=r"'decoder.block.0.layer.2.DenseReluDense.wo."
                     r"weight' has shape \(32, 65\), but the configuration implies \(32, 64\)"):
    commands.from_hf(str(src), str(tmp_path / "out"))

  src = _copy_hf(v11, tmp_path / "legacy_untied", config_edit=lambda c: (
      c.update(tie_word_embeddings=False), c.pop("scale_decoder_outputs", None)),
      tensor_edit=lambda t: t.pop("lm_head.weight"))
  with pytest.raises(ConversionError, match=r"(?s)missing \(1\):\s+lm_head.weight.*"
                     "tie_word_embeddings=false needs an lm_head.weight"):
    commands.from_hf(str(src), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()


def test_target_gin_model_vocab_and_layer_mismatches_are_refused(converted, tmp_path):
  src = converted["v1_0"][1]
  gin_file = tmp_path / "target.gin"
  text = (converted["v1_0"][2] / "model.gin").read_text()
  gin_file.write_text(text.replace(f"vocab_size = {VOCAB}", "vocab_size = 512"))
  with pytest.raises(ConversionError, match=r"(?s)vocab_size differs: the checkpoint has 128"
                     r".*vocab_size = 512\. Refusing to resize"):
    commands.from_hf(str(src), str(tmp_path / "out"), gin_model=str(gin_file))
  gin_file.write_text(text.replace("num_encoder_layers = 2", "num_encoder_layers = 6"))
  with pytest.raises(ConversionError, match=r"T5Config.num_encoder_layers differs: the "
                                            r"checkpoint implies 2, the target .* has 6"):
    commands.from_hf(str(src), str(tmp_path / "out"), gin_model=str(gin_file))
  # The shipped v1.0 small model file is found by its packaged name.
  with pytest.raises(ConversionError, match="vocab_size differs"):
    commands.from_hf(str(src), str(tmp_path / "out"), gin_model="models/t5_1_0_small.gin")
  gin_file.write_text(text)  # matching target: accepted
  commands.from_hf(str(src), str(tmp_path / "out"), gin_model=str(gin_file))


def test_pytorch_bin_without_torch_says_what_to_do(converted, tmp_path, monkeypatch):
  (tmp_path / "bin").mkdir()
  (tmp_path / "bin" / "config.json").write_text(
      (converted["v1_0"][1] / "config.json").read_text())
  (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"not read")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ConversionError, match="torch is not installed.*safetensors"):
    commands.from_hf(str(tmp_path / "bin"), str(tmp_path / "out"))


def test_cli_output_dir_rules_and_exit_codes(converted, tmp_path, capsys):
  src = str(converted["v1_0"][1])
  (tmp_path / "taken").mkdir()
  (tmp_path / "taken" / "file").write_text("x")
  assert cli.main(["from-hf", src, str(tmp_path / "taken")]) == 1
  assert "exists and is not empty" in capsys.readouterr().err
  assert cli.main(["from-hf", src, str(tmp_path / "taken"), "--overwrite"]) == 0
  assert "wrote the Gin model file" in capsys.readouterr().out
  assert cli.main(["from-hf", str(tmp_path / "nowhere"), str(tmp_path / "o")]) == 1
  assert "does not exist" in capsys.readouterr().err
  (tmp_path / "empty").mkdir()
  assert cli.main(["from-hf", str(tmp_path / "empty"), str(tmp_path / "o")]) == 1
  assert "has no config.json" in capsys.readouterr().err
  assert cli.main(["to-hf", str(tmp_path / "taken"), str(tmp_path / "hf")]) == 0
  assert "from_pretrained" in capsys.readouterr().out
  assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == []  # no temp dirs


def test_to_hf_refuses_activations_transformers_lacks(converted, tmp_path):
  params, config = _load(converted["v1_0"][2])
  with pytest.raises(ConversionError, match=r"mlp_activations=\('gelu',\) has no Hugging Face"):
    hf.config_to_hf(config.replace(mlp_activations=("gelu",)))
  gin_file = tmp_path / "other.gin"
  gin_file.write_text((converted["v1_0"][2] / "model.gin").read_text().replace(
      "mlp_dim = 64", "mlp_dim = 128"))
  with pytest.raises(ConversionError, match=r"'decoder/layers_0/mlp/wi/kernel' has shape "
                     r"\(32, 64\).*implies \(32, 128\).*came from --gin_model"):
    commands.to_hf(str(converted["v1_0"][2]), str(tmp_path / "hf"), gin_model=str(gin_file))


def test_a_failure_while_writing_leaves_nothing_behind(converted, tmp_path, monkeypatch):
  def broken(*args, **kwargs):
    raise OSError("disk full")
  monkeypatch.setattr(project, "gin_model_text", broken)  # after the params are written
  with pytest.raises(OSError, match="disk full"):
    commands.from_hf(str(converted["v1_0"][1]), str(tmp_path / "out"))
  assert os.listdir(tmp_path) == []
