"""Hugging Face T5 <-> the project: config mapping, tensor mapping, file reading/writing.

Conventions checked against Hugging Face transformers' T5 model
(`T5ForConditionalGeneration`) and the project's synthpre_jax/models/layers.py +
synthpre_jax/models/attention.py:

- `nn.Linear` weights are stored `[out, in]`; the project's (T5X) kernels are `[in, out]`:
  every q/k/v/o/wi/wo/lm_head weight is transposed, nothing else changes.
- Neither side scales attention logits by 1/sqrt(d_kv) (HF `T5Attention.scaling = 1.0`,
  project `attend(..., scale=1.0)`): T5 folds that factor into the query kernel's
  initialisation, so query kernels are copied unchanged.
- HF keeps the relative-position table `[buckets, heads]` in block 0 of each stack only
  (`has_relative_attention_bias=bool(i == 0)`), shared by the stack's layers; the project
  has one `[heads, buckets]` table per stack: transposed. HF's
  `decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight`, which some
  old files carry, is unused by HF itself and is ignored here too.
- Output layer: T5 v1.0 ties it to `shared` and scales the decoder output by
  d_model^-0.5 (project: `logits_via_embedding=True`, same scaling); v1.1 has an untied
  `lm_head` and no scaling (project: `decoder/logits_dense/kernel = lm_head.weight.T`).
  transformers >= 5 records the scaling as `scale_decoder_outputs` and always sets
  `tie_word_embeddings=True`; older files say `tie_word_embeddings=false` for v1.1.
- `feed_forward_proj`: 'relu' -> ('relu',) with `wi`; 'gated-gelu' (HF's tanh GELU,
  `gelu_new`, = flax `nn.gelu`'s default) -> ('gelu', 'linear') with `wi_0` (activated)
  and `wi_1` (linear); 'gated-silu' -> ('silu', 'linear'); 'silu' -> ('silu',).
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, Mapping

import ml_dtypes
import numpy as np
from etils import epath

from synthpre_jax.convert.project import (ConversionError, check_shape, check_tensor_names,
                                          written_atomically)
from synthpre_jax.models import T5Config

SUPPORTED_MODEL_TYPES = ("t5", "mt5")
SUPPORTED_ARCHITECTURES = ("T5ForConditionalGeneration", "MT5ForConditionalGeneration")
_ACT_FROM_HF = {"relu": ("relu",), "gated-gelu": ("gelu", "linear"),
                "gated-gelu_new": ("gelu", "linear"), "gated-gelu_pytorch_tanh":
                ("gelu", "linear"), "gated-silu": ("silu", "linear"),
                "gated-swish": ("silu", "linear"), "silu": ("silu",), "swish": ("silu",)}
_ACT_TO_HF = {("relu",): "relu", ("gelu", "linear"): "gated-gelu",
              ("silu", "linear"): "gated-silu", ("silu",): "silu"}
IGNORED_HF_KEYS = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)
# Copies of `shared.weight` that some files carry; accepted only when equal to it.
EMBEDDING_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
LAYER_NORM_EPSILON = 1e-6


# ---------------------------------------------------------------- config


def _field(hf: Mapping[str, Any], name: str, default: Any = None) -> Any:
  if name in hf and hf[name] is not None:
    return hf[name]
  if default is None:
    raise ConversionError(f"config.json has no {name!r} field; is it a T5 config?")
  return default


def config_from_hf(hf: Mapping[str, Any]) -> tuple[T5Config, bool, float]:
  """(T5Config, HF scales the decoder output by d_model^-0.5, dropout_rate) of a HF
  T5 config dict. Raises ConversionError naming the field it cannot support.

  `logits_via_embedding` is provisional here: the tensors decide it (see
  `params_from_hf`)."""
  model_type = hf.get("model_type")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise ConversionError(
        f"config.json model_type={model_type!r} is not supported; only T5 encoder-decoders "
        f"({', '.join(SUPPORTED_MODEL_TYPES)}) convert to this project's model.")
  arch = hf.get("architectures") or []
  bad = [a for a in arch if a not in SUPPORTED_ARCHITECTURES]
  if bad:
    raise ConversionError(
        f"config.json architectures={arch!r} is not supported: need one of "
        f"{SUPPORTED_ARCHITECTURES} (an encoder and a decoder with an LM head).")
  if hf.get("is_encoder_decoder") is False:
    raise ConversionError("config.json is_encoder_decoder=false is not supported: the "
                          "project's T5 is an encoder-decoder.")
  proj = _field(hf, "feed_forward_proj", "relu")
  if proj not in _ACT_FROM_HF:
    raise ConversionError(
        f"config.json feed_forward_proj={proj!r} is not supported; supported: "
        f"{sorted(_ACT_FROM_HF)} ('gelu' without gating uses the exact erf GELU, which the "
        "project's MLP does not have).")
  gated = proj.startswith("gated-")
  if "is_gated_act" in hf and bool(hf["is_gated_act"]) != gated:
    raise ConversionError(
        f"config.json is_gated_act={hf['is_gated_act']} contradicts "
        f"feed_forward_proj={proj!r}; fix one of them.")
  eps = float(_field(hf, "layer_norm_epsilon", LAYER_NORM_EPSILON))
  if not np.isclose(eps, LAYER_NORM_EPSILON, rtol=1e-3, atol=0):
    raise ConversionError(
        f"config.json layer_norm_epsilon={eps} is not supported: the project's T5 RMS norm "
        f"uses {LAYER_NORM_EPSILON}.")
  if "scale_decoder_outputs" in hf:
    scaled = bool(hf["scale_decoder_outputs"])
  else:
    scaled = hf.get("tie_word_embeddings", True) is not False
  num_layers = int(_field(hf, "num_layers"))
  try:
    config = T5Config(
        vocab_size=int(_field(hf, "vocab_size")), emb_dim=int(_field(hf, "d_model")),
        num_heads=int(_field(hf, "num_heads")), head_dim=int(_field(hf, "d_kv")),
        num_encoder_layers=num_layers,
        num_decoder_layers=int(_field(hf, "num_decoder_layers", num_layers)),
        mlp_dim=int(_field(hf, "d_ff")), mlp_activations=_ACT_FROM_HF[proj],
        logits_via_embedding=scaled, dropout_rate=0.0, dtype="float32",
        relative_attention_num_buckets=int(_field(hf, "relative_attention_num_buckets", 32)),
        relative_attention_max_distance=int(_field(hf, "relative_attention_max_distance",
                                                   128)))
  except ValueError as e:
    raise ConversionError(f"config.json: {e}") from e
  return config, scaled, float(hf.get("dropout_rate", 0.1))


def config_to_hf(config: T5Config, dropout_rate: float = 0.1) -> dict[str, Any]:
  """The HF config.json dict of a project T5Config."""
  proj = _ACT_TO_HF.get(tuple(config.mlp_activations))
  if proj is None:
    raise ConversionError(
        f"T5Config.mlp_activations={tuple(config.mlp_activations)!r} has no Hugging Face "
        f"T5 equivalent; supported: {sorted(_ACT_TO_HF)}.")
  return {
      "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
      "vocab_size": config.vocab_size, "d_model": config.emb_dim, "d_kv": config.head_dim,
      "d_ff": config.mlp_dim, "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers, "num_heads": config.num_heads,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "dropout_rate": dropout_rate, "layer_norm_epsilon": LAYER_NORM_EPSILON,
      "initializer_factor": 1.0, "feed_forward_proj": proj, "is_encoder_decoder": True,
      # False = untied lm_head and no d_model^-0.5 scaling in every transformers version.
      "tie_word_embeddings": bool(config.logits_via_embedding),
      "use_cache": True, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
  }


# ---------------------------------------------------------------- tensor names


def name_map(config: T5Config) -> dict[str, tuple[str, bool]]:
  """{project name: (HF key, transpose)} for every parameter except the output layer."""
  out = {"token_embedder/embedding": ("shared.weight", False)}
  mlp = (["wi_0", "wi_1"] if len(config.mlp_activations) > 1 else ["wi"]) + ["wo"]
  attn = {"query": "q", "key": "k", "value": "v", "out": "o"}
  for stack, n_layers in (("encoder", config.num_encoder_layers),
                          ("decoder", config.num_decoder_layers)):
    first = "SelfAttention"
    out[f"{stack}/relpos_bias/rel_embedding"] = (
        f"{stack}.block.0.layer.0.{first}.relative_attention_bias.weight", True)
    out[f"{stack}/{stack}_norm/scale"] = (f"{stack}.final_layer_norm.weight", False)
    if stack == "encoder":
      subs = [("attention", "pre_attention_layer_norm", "SelfAttention")]
    else:
      subs = [("self_attention", "pre_self_attention_layer_norm", "SelfAttention"),
              ("encoder_decoder_attention", "pre_cross_attention_layer_norm",
               "EncDecAttention")]
    for i in range(n_layers):
      hf, ours = f"{stack}.block.{i}.layer", f"{stack}/layers_{i}"
      for j, (name, norm, hf_name) in enumerate(subs):
        for p, q in attn.items():
          out[f"{ours}/{name}/{p}/kernel"] = (f"{hf}.{j}.{hf_name}.{q}.weight", True)
        out[f"{ours}/{norm}/scale"] = (f"{hf}.{j}.layer_norm.weight", False)
      j = len(subs)
      for m in mlp:
        out[f"{ours}/mlp/{m}/kernel"] = (f"{hf}.{j}.DenseReluDense.{m}.weight", True)
      out[f"{ours}/pre_mlp_layer_norm/scale"] = (f"{hf}.{j}.layer_norm.weight", False)
  return out


def params_from_hf(tensors: Mapping[str, np.ndarray], config: T5Config, scaled: bool,
                   expected: Mapping[str, tuple], source: str, *,
                   lm_head_required: bool = False
                   ) -> tuple[dict[str, np.ndarray], T5Config, list[str]]:
  """Maps HF tensors to the project tree. Returns (params, final config, notes).

  `expected` is `project.expected_shapes` of the config with an untied output layer
  (it holds `decoder/logits_dense/kernel`); the tensors decide whether the output layer
  stays tied: tied when HF scales the output and `lm_head.weight` is absent or equal to
  `shared.weight`."""
  notes = []
  mapping = name_map(config)
  required = {key for key, _ in mapping.values()}
  if lm_head_required:
    required.add("lm_head.weight")
  optional = {"lm_head.weight", *IGNORED_HF_KEYS, *EMBEDDING_COPIES}
  check_tensor_names(
      [k for k in tensors if k not in optional or k in required], required, source=source,
      hint=("(A gated MLP has wi_0/wi_1 and feed_forward_proj='gated-gelu', a plain one wi "
            "and 'relu'; the layer counts come from num_layers / num_decoder_layers"
            + ("; tie_word_embeddings=false needs an lm_head.weight" if lm_head_required
               else "") + ".)"))
  shared = tensors["shared.weight"]
  for key in EMBEDDING_COPIES:
    if key in tensors and not np.array_equal(tensors[key], shared):
      raise ConversionError(f"{source}: {key!r} differs from 'shared.weight'; T5 shares one "
                            "token embedding between encoder and decoder.")
  for key in IGNORED_HF_KEYS:
    if key in tensors:
      notes.append(f"ignored {key} (unused by T5; transformers ignores it too)")

  lm_head = tensors.get("lm_head.weight")
  if lm_head is not None and tuple(lm_head.shape) != tuple(shared.shape):
    check_shape("decoder/logits_dense/kernel", "lm_head.weight", lm_head.shape,
                shared.shape, source)
  lm_differs = lm_head is not None and not np.array_equal(lm_head, shared)
  tied = scaled and not lm_differs
  config = config.replace(logits_via_embedding=tied)
  if not tied:
    mapping = dict(mapping)
    mapping["decoder/logits_dense/kernel"] = (
        "lm_head.weight" if lm_head is not None else "shared.weight", True)
  params = {}
  for name, (key, transpose) in mapping.items():
    value = tensors[key]
    want = tuple(expected[name])
    want_hf = want[::-1] if transpose else want
    check_shape(name, key, value.shape, want_hf, source)
    value = np.asarray(value, np.float32)
    params[name] = np.ascontiguousarray(value.T if transpose else value)
  if tied:
    notes.append("output layer: tied to the token embedding, logits scaled by "
                 "d_model^-0.5 (T5 v1.0) -> logits_via_embedding=True")
  elif scaled:
    params["decoder/logits_dense/kernel"] *= np.float32(config.emb_dim ** -0.5)
    notes.append("output layer: lm_head differs from the embedding but the output is "
                 "scaled by d_model^-0.5 -> decoder/logits_dense/kernel = "
                 "lm_head.weight.T * d_model^-0.5 (logits unchanged)")
  elif lm_head is None:
    notes.append("output layer: no lm_head.weight and no output scaling (transformers >= 5 "
                 "ties it to shared.weight) -> decoder/logits_dense/kernel = "
                 "shared.weight.T (an untied copy)")
  else:
    notes.append("output layer: untied lm_head, no output scaling (T5 v1.1) -> "
                 "decoder/logits_dense/kernel = lm_head.weight.T")
  return params, config, notes


def params_to_hf(params: Mapping[str, np.ndarray], config: T5Config) -> dict[str, np.ndarray]:
  """The HF state dict (numpy, contiguous, float32) of a project parameter tree."""
  out = {}
  for name, (key, transpose) in name_map(config).items():
    value = np.asarray(params[name], np.float32)
    out[key] = np.ascontiguousarray(value.T if transpose else value)
  if not config.logits_via_embedding:
    out["lm_head.weight"] = np.ascontiguousarray(
        np.asarray(params["decoder/logits_dense/kernel"], np.float32).T)
  return out


# ---------------------------------------------------------------- files


_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
              "BOOL": np.bool_}


def _parse_safetensors(data: bytes) -> dict[str, np.ndarray]:
  """safetensors bytes -> numpy, bfloat16 included (numpy has no bfloat16; the
  safetensors numpy API refuses it): bfloat16 tensors are widened to float32."""
  (n,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + n])
  base = 8 + n
  out = {}
  for key, info in header.items():
    if key == "__metadata__":
      continue
    dtype = ml_dtypes.bfloat16 if info["dtype"] == "BF16" else _ST_DTYPES.get(info["dtype"])
    if dtype is None:
      raise ConversionError(f"safetensors tensor {key!r} has unsupported dtype "
                            f"{info['dtype']}.")
    start, end = info["data_offsets"]
    arr = np.frombuffer(data[base + start:base + end], dtype=dtype).reshape(info["shape"])
    out[key] = arr.astype(np.float32) if info["dtype"] == "BF16" else arr.copy()
  return out


def _load_safetensors(path: epath.Path) -> dict[str, np.ndarray]:
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  data = path.read_bytes()
  try:
    return dict(safetensors.numpy.load(data))
  except (TypeError, KeyError):  # bfloat16: numpy has no such dtype
    return _parse_safetensors(data)


def _load_torch_bin(path: epath.Path) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConversionError(
        f"{path} is a PyTorch pickle and torch is not installed. Either install torch "
        "(the CPU build is enough) or convert the file to safetensors first, e.g. on a "
        "machine with transformers: T5ForConditionalGeneration.from_pretrained(d)"
        ".save_pretrained(d2) writes model.safetensors.") from None
  state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
  return {k: v.detach().to(torch.float32).numpy() if v.is_floating_point()
          else v.detach().numpy() for k, v in state.items()}


def read_hf_dir(directory: str) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
  """(config dict, {key: array}, weights file description) of a HF model directory:
  config.json plus model.safetensors, a sharded model.safetensors.index.json, or
  pytorch_model.bin (needs torch)."""
  d = epath.Path(directory)
  if not d.exists():
    raise ConversionError(f"Hugging Face directory {directory!r} does not exist.")
  config_path = d / "config.json"
  if not config_path.exists():
    raise ConversionError(f"{directory!r} has no config.json; point at a directory written "
                          "by save_pretrained (config.json + model.safetensors).")
  try:
    hf_config = json.loads(config_path.read_text())
  except json.JSONDecodeError as e:
    raise ConversionError(f"{config_path} is not valid JSON: {e}") from e
  for index_name, loader in (("model.safetensors.index.json", _load_safetensors),
                             ("pytorch_model.bin.index.json", _load_torch_bin)):
    if (d / index_name).exists():
      weight_map = json.loads((d / index_name).read_text())["weight_map"]
      tensors = {}
      for shard in sorted(set(weight_map.values())):
        tensors.update(loader(d / shard))
      return hf_config, tensors, f"{index_name} ({len(set(weight_map.values()))} shards)"
  if (d / "model.safetensors").exists():
    return hf_config, _load_safetensors(d / "model.safetensors"), "model.safetensors"
  if (d / "pytorch_model.bin").exists():
    return hf_config, _load_torch_bin(d / "pytorch_model.bin"), "pytorch_model.bin"
  found = sorted(p.name for p in d.iterdir())
  raise ConversionError(f"{directory!r} has no model.safetensors or pytorch_model.bin "
                        f"(found: {found}).")


def write_hf_dir(final: epath.Path, tmp: epath.Path, tensors: Mapping[str, np.ndarray],
                 hf_config: Mapping[str, Any]) -> None:
  """Writes config.json, generation_config.json and model.safetensors into `tmp`, then
  renames it to `final`."""
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  with written_atomically(final, tmp):
    (tmp / "config.json").write_text(json.dumps(dict(hf_config), indent=2) + "\n")
    (tmp / "generation_config.json").write_text(json.dumps(
        {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}, indent=2) + "\n")
    (tmp / "model.safetensors").write_bytes(
        safetensors.numpy.save(dict(tensors), metadata={"format": "pt"}))
