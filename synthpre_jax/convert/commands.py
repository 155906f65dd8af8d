"""The three conversions: from-hf, from-t5x, to-hf. Each returns the lines it prints."""

from __future__ import annotations

from typing import Optional

import numpy as np
from etils import epath

from synthpre_jax.convert import hf as hf_lib
from synthpre_jax.convert import project
from synthpre_jax.convert import t5x as t5x_lib
from synthpre_jax.data import vocabulary
from synthpre_jax.models import T5Config

_QUERY_NOTE = ("query kernels copied unchanged: T5 folds 1/sqrt(head_dim) into the query "
               "kernel's initialisation and neither side rescales attention logits")


def _describe(config: T5Config) -> str:
  return (f"vocab {config.vocab_size}, d_model {config.emb_dim}, {config.num_heads} heads x "
          f"{config.head_dim}, {config.num_encoder_layers}+{config.num_decoder_layers} "
          f"layers, MLP {config.mlp_dim} {tuple(config.mlp_activations)}, "
          f"logits_via_embedding={config.logits_via_embedding}, relpos "
          f"{config.relative_attention_num_buckets} buckets / max distance "
          f"{config.relative_attention_max_distance}")


def _target(gin_model: Optional[str]) -> Optional[T5Config]:
  return project.read_gin_model(gin_model) if gin_model else None


def _hf_vocabulary(src: str) -> tuple[dict, str]:
  """The vocabulary of a Hugging Face T5 directory: its spiece.model if present, else
  T5's (every public T5 checkpoint uses it)."""
  spm = epath.Path(src) / "spiece.model"
  if spm.exists():
    ident = vocabulary.sentencepiece_identity(spm.read_bytes(), vocabulary.T5_EXTRA_IDS,
                                              32100, str(spm))
    return ident, f"vocabulary: {vocabulary.describe(ident)}, from {spm}"
  return vocabulary.t5_identity(), "vocabulary: T5's (no spiece.model in the directory)"


def _finish(out: str, params, config, *, source, converter, step, dropout_rate,
            activation_dtype, overwrite, lines, vocab: dict) -> list[str]:
  # The meta's model_config says what model.gin says.
  config = config.replace(dropout_rate=dropout_rate, dtype=activation_dtype)
  final = project.write_checkpoint(
      out, params, config, source=source, converter=converter, step=step,
      dropout_rate=dropout_rate, activation_dtype=activation_dtype, vocabulary=vocab,
      overwrite=overwrite)
  n = sum(int(np.size(v)) for v in params.values())
  lines += [f"  wrote {len(params)} tensors ({n:,} parameters, float32) to "
            f"{final}/checkpoints/{step}/params",
            f"  wrote the Gin model file {final}/model.gin",
            "  fine-tune from it: --gin_file=<that model.gin> --gin_file=finetune.gin ... "
            f"--gin.INITIAL_CHECKPOINT_PATH=\"'{final}'\""]
  return lines


def from_hf(src: str, out: str, *, gin_model: Optional[str] = None,
            activation_dtype: str = "bfloat16", overwrite: bool = False) -> list[str]:
  """A Hugging Face T5 directory -> a project checkpoint + model.gin."""
  hf_config, tensors, weights_file = hf_lib.read_hf_dir(src)
  config, scaled, dropout = hf_lib.config_from_hf(hf_config)
  lm_head_required = (hf_config.get("tie_word_embeddings") is False
                      and "scale_decoder_outputs" not in hf_config)
  expected = project.expected_shapes(config.replace(logits_via_embedding=False))
  source = f"{src} ({weights_file})"
  params, config, notes = hf_lib.params_from_hf(
      tensors, config, scaled, expected, source, lm_head_required=lm_head_required)
  target = _target(gin_model)
  if target is not None:
    project.check_against_target(config, target, gin_model)
  lines = [f"from-hf: {source}", f"  model: {_describe(config)}"]
  lines += [f"  {note}" for note in notes + [_QUERY_NOTE]]
  lines.append(f"  {len(tensors)} HF tensors -> {len(params)} project tensors "
               "(Linear weights transposed to [in, out]; relative-position tables of "
               "block 0 -> one [heads, buckets] table per stack)")
  vocab, vocab_line = _hf_vocabulary(src)
  lines.append(f"  {vocab_line}")
  return _finish(out, params, config, source=str(src), converter="from-hf", step=0,
                 dropout_rate=dropout, activation_dtype=activation_dtype,
                 overwrite=overwrite, lines=lines, vocab=vocab)


def _t5x_config(shapes, step_dir: epath.Path, gin_model: Optional[str]
                ) -> tuple[T5Config, str]:
  """The config of a T5X tree: shapes, plus the two values shapes cannot tell (gated
  activation pair, relative-position max distance) from --gin_model, else from T5X's
  config.gin beside the checkpoints, else T5's defaults."""
  spec, origin = None, "T5 defaults (gated GELU, max distance 128)"
  if gin_model:
    spec, origin = project.read_gin_model(gin_model), f"--gin_model {gin_model}"
  else:
    for cand in (step_dir.parent / "config.gin", step_dir.parent.parent / "config.gin"):
      if cand.exists():
        spec, origin = project.read_gin_model(str(cand)), str(cand)
        break
  kwargs = {}
  if spec is not None:
    if len(spec.mlp_activations) > 1:
      kwargs["gated_activations"] = spec.mlp_activations
    kwargs["relative_attention_max_distance"] = spec.relative_attention_max_distance
  return project.infer_config(shapes, **kwargs), origin


def from_t5x(src: str, out: str, *, gin_model: Optional[str] = None,
             activation_dtype: str = "bfloat16", dropout_rate: float = 0.1,
             overwrite: bool = False) -> list[str]:
  """A T5X checkpoint (classic msgpack + TensorStore, or Orbax) -> project checkpoint."""
  params, step, step_dir, layout = t5x_lib.read_t5x(src)
  config, origin = _t5x_config({k: v.shape for k, v in params.items()}, step_dir, gin_model)
  expected = project.expected_shapes(config)
  params, flattened = t5x_lib.to_project_shapes(params, expected)
  where = f"T5X checkpoint {step_dir}"
  project.check_tensor_names(params, expected, source=where)
  for name in sorted(expected):
    project.check_shape(name, name, params[name].shape, expected[name], where,
                        hint=f"(The model config came from {origin}.)")
  target = _target(gin_model)
  if target is not None:
    project.check_against_target(config, target, gin_model)
  lines = [f"from-t5x: {step_dir} ({layout}, step {step})",
           f"  model (from the tensor shapes; activations and max distance from {origin}): "
           f"{_describe(config)}",
           f"  {len(params)} target/... tensors copied under the same names "
           "(state/param_states and state/step ignored)", f"  {_QUERY_NOTE}"]
  if flattened:
    lines.append(f"  flattened {len(flattened)} 3-D attention kernels to 2-D")
  lines.append("  vocabulary: T5's (T5X checkpoints carry none; the public T5 ones use it)")
  return _finish(out, params, config, source=str(src), converter="from-t5x",
                 step=step or 0, dropout_rate=dropout_rate,
                 activation_dtype=activation_dtype, overwrite=overwrite, lines=lines,
                 vocab=vocabulary.t5_identity())


def to_hf(src: str, out: str, *, gin_model: Optional[str] = None,
          overwrite: bool = False) -> list[str]:
  """A project checkpoint -> a Hugging Face T5 directory (config.json, model.safetensors)."""
  params, meta, params_path = project.read_checkpoint(src)
  shapes = {k: v.shape for k, v in params.items()}
  if gin_model:
    config, origin = project.read_gin_model(gin_model), f"--gin_model {gin_model}"
  else:
    config, origin = project.config_from_meta(meta), "the checkpoint's meta"
    if config is None:
      config = project.infer_config(shapes)
      origin = "the tensor shapes (gated GELU and max distance 128 assumed)"
  expected = project.expected_shapes(config)
  where = f"Project checkpoint {params_path}"
  project.check_tensor_names(params, expected, source=where,
                             hint=f"(The model config came from {origin}.)")
  for name in sorted(expected):
    project.check_shape(name, name, params[name].shape, expected[name], where,
                        hint=f"(The model config came from {origin}.)")
  dropout = float((meta or {}).get("model_config", {}).get("dropout_rate", 0.1))
  hf_config = hf_lib.config_to_hf(config, dropout_rate=dropout)
  tensors = hf_lib.params_to_hf(params, config)
  final, tmp = project.prepare_output(out, overwrite)
  hf_lib.write_hf_dir(final, tmp, tensors, hf_config)
  return [f"to-hf: {params_path}", f"  model (from {origin}): {_describe(config)}",
          f"  wrote {len(tensors)} tensors to {final}/model.safetensors (kernels transposed "
          "to [out, in]" + ("" if config.logits_via_embedding else
                            "; decoder/logits_dense/kernel -> lm_head.weight") + ")",
          f"  wrote {final}/config.json (feed_forward_proj="
          f"{hf_config['feed_forward_proj']!r}, tie_word_embeddings="
          f"{hf_config['tie_word_embeddings']})",
          "  load it: transformers.T5ForConditionalGeneration.from_pretrained("
          f"'{final}')"]
