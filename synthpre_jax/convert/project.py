"""The project side of every conversion: expected tensors, checks, and writing/reading.

A converted checkpoint is laid out exactly like a training run's, so
`INITIAL_CHECKPOINT_PATH=<out>` fine-tunes from it like from any other source:

    <out>/checkpoints/<step>/params   Orbax parameter tree (T5X names, float32)
    <out>/checkpoints/<step>/meta     JSON: model_config, source, converter
    <out>/model.gin                   the Gin model file with the T5Config values

Everything is written into a temporary sibling directory first and renamed to `<out>`
at the end, so a failed conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import re
import uuid
from typing import Any, Iterable, Iterator, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import checksums
from synthpre_jax.cli import gin_utils
from synthpre_jax.models import T5Config, Transformer

# T5Config fields that decide the parameter tree (the rest are run-time choices).
ARCHITECTURE_FIELDS = ("vocab_size", "emb_dim", "num_heads", "head_dim",
                       "num_encoder_layers", "num_decoder_layers", "mlp_dim",
                       "mlp_activations", "logits_via_embedding",
                       "relative_attention_num_buckets", "relative_attention_max_distance")


class ConversionError(ValueError):
  """Bad input to a conversion; the message says what is wrong and what to do."""


def expected_shapes(config: T5Config) -> dict[str, tuple]:
  """{T5X name: shape} of the project's parameters for `config` (nothing allocated)."""
  model = Transformer(config.replace(dtype="float32", dropout_rate=0.0))
  tokens = jnp.ones((1, 4), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, tokens))
  flat = traverse_util.flatten_dict(shapes["params"], sep="/")
  return {k: tuple(getattr(v, "value", v).shape) for k, v in flat.items()}


def _list(names: Iterable[str], limit: int = 12) -> str:
  names = sorted(names)
  head = "\n    ".join(names[:limit])
  more = f"\n    ... (+{len(names) - limit} more)" if len(names) > limit else ""
  return "\n    " + head + more


def check_tensor_names(found: Iterable[str], expected: Iterable[str], *, source: str,
                       hint: str = "") -> None:
  """Raises ConversionError listing every missing and every unexpected tensor."""
  found, expected = set(found), set(expected)
  missing, extra = expected - found, found - expected
  if not missing and not extra:
    return
  parts = [f"{source} does not hold the tensors its configuration implies."]
  if missing:
    parts.append(f"  missing ({len(missing)}):{_list(missing)}")
  if extra:
    parts.append(f"  unexpected ({len(extra)}):{_list(extra)}")
  if hint:
    parts.append(hint)
  raise ConversionError("\n".join(parts))


def check_shape(name: str, source_name: str, got: tuple, want: tuple, source: str,
                hint: str = "Is config.json the one these weights were saved with?") -> None:
  """Raises ConversionError naming the tensor and both shapes."""
  if tuple(got) != tuple(want):
    where = "" if name == source_name else f" (project parameter {name!r})"
    raise ConversionError(
        f"{source}: tensor {source_name!r} has shape {tuple(got)}, but the configuration "
        f"implies {tuple(want)} for it{where}. {hint}")


def check_against_target(config: T5Config, target: T5Config, target_name: str) -> None:
  """Refuses a conversion whose architecture differs from the user's target Gin model.

  A different vocabulary size is refused too, never resized: row i of the embedding
  (and of the tied output layer) is the vector of token id i *of the checkpoint's
  vocabulary*; cutting or padding rows would silently pair ids of another vocabulary
  with vectors they were never trained with.
  """
  for field in ARCHITECTURE_FIELDS:
    got, want = getattr(config, field), getattr(target, field)
    if got == want:
      continue
    if field == "vocab_size":
      raise ConversionError(
          f"vocab_size differs: the checkpoint has {got} token embeddings, the target Gin "
          f"model {target_name} has T5Config.vocab_size = {want}. Refusing to resize: "
          "embedding row i belongs to token id i of the checkpoint's vocabulary, so cutting "
          "or padding rows would give another vocabulary's ids vectors they were never "
          f"trained with. Fine-tune with the checkpoint's vocabulary (vocab_size {got}; use "
          "the written model.gin), or convert without --gin_model and start a fresh "
          "embedding with TRANSFER_MODE='all_but_embeddings' in a model of that size.")
    raise ConversionError(
        f"T5Config.{field} differs: the checkpoint implies {got!r}, the target Gin model "
        f"{target_name} has {want!r}. Use a Gin model file of the checkpoint's "
        "architecture (the converter writes one as <out>/model.gin).")


# ---------------------------------------------------------------- Gin model files


def gin_model_text(config: T5Config, *, source: str, dropout_rate: float,
                   activation_dtype: str) -> str:
  """A Gin model file in the style of gin/models/*.gin for `config`."""
  lines = [
      f"# Converted by `python -m synthpre_jax.convert` from {source}.",
      "# Include it before a recipe (pretrain.gin / finetune.gin); override with",
      "# --gin.DROPOUT_RATE=... or --gin.ACTIVATION_DTYPE=\"'float32'\".",
      f"DROPOUT_RATE = {dropout_rate!r}",
      f"ACTIVATION_DTYPE = {activation_dtype!r}",
      "",
      "train.model_config = @T5Config()",
  ]
  for field in ARCHITECTURE_FIELDS:
    value = getattr(config, field)
    lines.append(f"T5Config.{field} = {tuple(value) if isinstance(value, (list, tuple)) else value!r}")
  lines += ["T5Config.dropout_rate = %DROPOUT_RATE", "T5Config.dtype = %ACTIVATION_DTYPE", ""]
  return "\n".join(lines)


_GIN_LINE = re.compile(r"^\s*(?:[\w.]+\.)?T5Config\.(\w+)\s*=\s*(.+?)\s*$")


def _gin_text(p: epath.Path, depth: int = 0) -> str:
  """The text of Gin file `p` with each `include 'FILE'` line replaced by FILE's text
  (FILE looked up under the packaged Gin directory, then as given)."""
  lines = []
  for line in p.read_text().splitlines():
    m = re.match(r"^\s*include\s+['\"](.+?)['\"]", line)
    if not m:
      lines.append(line)
      continue
    included = epath.Path(gin_utils.packaged_gin_dir()) / m.group(1)
    if not included.exists():
      included = epath.Path(m.group(1))
    if depth > 8 or not included.exists():
      raise ConversionError(f"Gin model file {p}: cannot read its include {m.group(1)!r}.")
    lines.append(_gin_text(included, depth + 1))
  return "\n".join(lines)


def read_gin_model(path: str) -> T5Config:
  """The T5Config a Gin model file binds, its includes followed (literal
  `T5Config.<field> = value` lines; `network.T5Config.` as in T5X's files works too).
  Macros (`%NAME`) are resolved when bound to a literal; other lines are ignored."""
  p = epath.Path(path)
  if not p.exists():
    packaged = epath.Path(gin_utils.packaged_gin_dir()) / path
    if not packaged.exists():
      raise ConversionError(f"Gin model file {path!r} not found (also looked in {packaged}).")
    p = packaged
  text = _gin_text(p)
  macros = {}
  for line in text.splitlines():
    m = re.match(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.+?)\s*$", line)
    if m:
      try:
        macros[m.group(1)] = ast.literal_eval(m.group(2))
      except (ValueError, SyntaxError):
        pass
  fields = {f.name for f in dataclasses.fields(T5Config)}
  values: dict[str, Any] = {}
  for line in text.splitlines():
    m = _GIN_LINE.match(line.split("#", 1)[0])
    if not m or m.group(1) not in fields:
      continue
    raw = m.group(2)
    if raw.startswith("%") and raw[1:] in macros:
      values[m.group(1)] = macros[raw[1:]]
      continue
    try:
      values[m.group(1)] = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      continue
  try:
    return T5Config(**values)
  except (TypeError, ValueError) as e:
    raise ConversionError(f"Gin model file {p}: {e}") from e


# ---------------------------------------------------------------- writing / reading


def prepare_output(out: str, overwrite: bool) -> tuple[epath.Path, epath.Path]:
  final = epath.Path(out)
  if final.exists() and any(True for _ in final.iterdir()):
    if not overwrite:
      raise ConversionError(
          f"Output directory {out!r} exists and is not empty. Choose a new directory "
          "(or pass --overwrite to replace it).")
  tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
  return final, tmp


@contextlib.contextmanager
def written_atomically(final: epath.Path, tmp: epath.Path) -> Iterator[None]:
  """Creates `tmp` for the body to fill, then replaces `final` with it; on any failure
  `tmp` is removed and `final` is left as it was."""
  try:
    tmp.mkdir(parents=True)
    yield
    if final.exists():
      final.rmtree()
    tmp.rename(final)
  except BaseException:
    if tmp.exists():
      tmp.rmtree()
    raise


def write_checkpoint(out: str, params: Mapping[str, np.ndarray], config: T5Config, *,
                     source: str, converter: str, step: int = 0,
                     dropout_rate: float = 0.1, activation_dtype: str = "bfloat16",
                     vocabulary: Optional[Mapping[str, Any]] = None,
                     overwrite: bool = False) -> epath.Path:
  """Writes `<out>/checkpoints/<step>/{params,meta}` and `<out>/model.gin` atomically.

  `params` maps T5X names to arrays; they must be exactly the tensors `config` implies
  (checked here again, so a converter bug cannot produce an unloadable checkpoint)."""
  expected = expected_shapes(config)
  check_tensor_names(params, expected, source=f"converted tree from {source}")
  for name, want in expected.items():
    check_shape(name, name, np.shape(params[name]), want, f"converted tree from {source}")
  final, tmp = prepare_output(out, overwrite)
  tree = traverse_util.unflatten_dict(
      {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in params.items()},
      sep="/")
  meta = {"model_config": dataclasses.asdict(config), "source": source,
          "converter": converter, "vocabulary": dict(vocabulary or {}) or None}
  with written_atomically(final, tmp):
    manager = ocp.CheckpointManager(
        tmp / "checkpoints",
        options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False))
    manager.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(tree),
                                               meta=ocp.args.JsonSave(meta)))
    manager.wait_until_finished()
    manager.close()
    checksums.seal(tmp / "checkpoints" / str(step))
    (tmp / "model.gin").write_text(gin_model_text(
        config, source=source, dropout_rate=dropout_rate,
        activation_dtype=activation_dtype))
  return final


def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], Optional[dict], epath.Path]:
  """(flat params as numpy, the step's meta dict or None, params path) of a project
  checkpoint given as a MODEL_DIR, its checkpoints/ dir or one step dir."""
  try:
    params_path = checkpoints.resolve_params_path(path, macro="Project checkpoint")
  except FileNotFoundError as e:
    raise ConversionError(str(e)) from e
  try:
    checksums.verify(params_path.parent, ("params",))
  except checksums.CorruptCheckpointError as e:
    raise ConversionError(str(e)) from e
  meta_tree = ocp.PyTreeCheckpointer().metadata(params_path)
  tree = getattr(getattr(meta_tree, "item_metadata", meta_tree), "tree", meta_tree)
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  restored = ocp.PyTreeCheckpointer().restore(
      params_path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  flat = {k: np.asarray(v) for k, v in checkpoints.flat_names(restored).items()}
  try:
    meta = checkpoints.read_meta(params_path)
  except (ValueError, FileNotFoundError, OSError, json.JSONDecodeError):
    meta = None
  return flat, meta, params_path


def infer_config(shapes: Mapping[str, tuple], *, gated_activations=("gelu", "linear"),
                 relative_attention_max_distance: int = 128) -> T5Config:
  """The T5Config a parameter tree implies. Not recoverable from shapes: the gated
  MLP's activation pair (T5 v1.1's gated GELU assumed) and the relative-position
  max distance (T5's 128 assumed); pass a Gin model file to set them otherwise."""
  def shape(name):
    if name not in shapes:
      raise ConversionError(f"Parameter {name!r} not found; is this a T5 checkpoint with "
                            "T5X parameter names?")
    return tuple(shapes[name])

  vocab, emb = shape("token_embedder/embedding")
  heads, buckets = shape("encoder/relpos_bias/rel_embedding")
  joined = shape("encoder/layers_0/attention/query/kernel")[1]
  gated = "encoder/layers_0/mlp/wi_0/kernel" in shapes
  mlp = shape("encoder/layers_0/mlp/" + ("wi_0" if gated else "wi") + "/kernel")[1]

  def count(stack):
    return len({n.split("/")[1] for n in shapes if n.startswith(f"{stack}/layers_")})

  return T5Config(
      vocab_size=vocab, emb_dim=emb, num_heads=heads, head_dim=joined // heads,
      num_encoder_layers=count("encoder"), num_decoder_layers=count("decoder"),
      mlp_dim=mlp, mlp_activations=tuple(gated_activations) if gated else ("relu",),
      logits_via_embedding="decoder/logits_dense/kernel" not in shapes,
      relative_attention_num_buckets=buckets,
      relative_attention_max_distance=relative_attention_max_distance)


def config_from_meta(meta: Optional[dict]) -> Optional[T5Config]:
  if not meta or "model_config" not in meta:
    return None
  known = {f.name for f in dataclasses.fields(T5Config)}
  values = {k: v for k, v in meta["model_config"].items() if k in known}
  try:
    return T5Config(**values)
  except (TypeError, ValueError):
    return None
