"""Initialization from parameter statistics ("moment matching") and constant norm init.

Moment matching (Wu, Li, Liang 2022, "Insights into Pre-training via Simpler Synthetic
Tasks": initialization from parameter statistics):
  1. the model is initialised as usual (default init, seed SEED);
  2. a pre-trained checkpoint is read only to compute statistics, on the host;
  3. the parameter names are partitioned into groups (`synthpre_jax.init.param_groups`); each
     group pools all elements of its pre-trained tensors: mean and population SD;
  4. every tensor of a group is re-drawn: `mean_std`: each element ~ N(mean_g, sd_g);
     `scale`: a norm-scale group is set to mean_g exactly, any other ~ N(0, sd_g);
  5. the token embedding is never in a group; nothing is copied.

The re-draw runs inside `jax.jit` into the parameters' own shardings, keyed by the run
seed (see docs/init_transforms.md).

`ConstantNormInit` sets the pre-attention norm scales (optionally the pre-MLP ones too)
of a default-initialised model to a constant, with no pre-trained model involved.

Both are "init transforms" for `synthpre_jax.training.trainer.train(init_transform=...)`:
`(params, mesh, param_shardings, seed) -> (params, log lines)`, applied at step 0 only.
No Gin here; `synthpre_jax.cli.train` binds them.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import checksums
from synthpre_jax.evaluation import results
from synthpre_jax.init import param_groups

STATS_FNS = ("mean_std", "scale")
# Folded into key(SEED) for the re-draw, so it never reuses the default init's stream.
DRAW_KEY_TAG = 0x6D6D  # "mm"


@dataclasses.dataclass(frozen=True)
class Moments:
  """Count, mean, sum of squared deviations (M2), min and max of some elements, in
  float64; `pool` combines them exactly (Chan et al.'s parallel formula)."""
  count: int
  mean: float
  m2: float
  min: float
  max: float

  @property
  def sd(self) -> float:
    """Population standard deviation."""
    return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else float("nan")

  @classmethod
  def of(cls, x: np.ndarray) -> "Moments":
    x = np.asarray(x, np.float64).ravel()
    if not x.size:
      return cls(0, 0.0, 0.0, float("nan"), float("nan"))
    mean = float(x.mean())
    return cls(int(x.size), mean, float(np.sum((x - mean) ** 2)), float(x.min()),
               float(x.max()))

  @classmethod
  def pool(cls, parts: Iterable["Moments"]) -> "Moments":
    out = None
    for p in parts:
      if out is None or not out.count:
        out = p
        continue
      if not p.count:
        continue
      n = out.count + p.count
      delta = p.mean - out.mean
      out = cls(n, out.mean + delta * p.count / n,
                out.m2 + p.m2 + delta * delta * out.count * p.count / n,
                min(out.min, p.min), max(out.max, p.max))
    if out is None:
      raise ValueError("Cannot pool statistics of no tensor.")
    return out


def read_params(params_path: Union[str, epath.Path]) -> dict[str, np.ndarray]:
  """A saved parameter tree as host numpy arrays by flat name (`encoder/layers_0/...`),
  verified against its checksums first; nothing is placed on an accelerator."""
  path = epath.Path(checkpoints.absolute_path(str(params_path)))
  checksums.verify(path.parent, ("params",))  # CorruptCheckpointError names a bad file
  meta = ocp.PyTreeCheckpointer().metadata(path)
  tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  restored = ocp.PyTreeCheckpointer().restore(
      path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  return {k: np.asarray(v) for k, v in checkpoints.flat_names(restored).items()}


def tensor_moments(params: Mapping[str, np.ndarray],
                   names: Optional[Iterable[str]] = None) -> dict[str, Moments]:
  """Per-tensor statistics of flat host params (all, or only `names`)."""
  return {n: Moments.of(params[n]) for n in (sorted(params) if names is None else names)}


def group_moments(groups: Mapping[str, Sequence[str]],
                  per_tensor: Mapping[str, Moments]) -> dict[str, Moments]:
  """Pooled statistics of each group (all elements of its tensors together)."""
  return {label: Moments.pool(per_tensor[n] for n in members)
          for label, members in groups.items()}


def check_stats_fn(stats_fn: str) -> None:
  if stats_fn not in STATS_FNS:
    raise ValueError(f"Unknown STATS_FN {stats_fn!r}; known statistics functions: "
                     f"{', '.join(STATS_FNS)} (mean_std: N(mean, sd); scale: norm-scale "
                     "groups = mean, others N(0, sd)).")


def check_architecture(source: Mapping[str, tuple], target: Mapping[str, tuple],
                       where: str) -> list[str]:
  """Raises ValueError naming the first tensor (sorted by name) that has no counterpart
  in the other tree or a different rank. Returns the names whose shapes differ at the
  same rank (allowed: their statistics are used as they are)."""
  for name in sorted(set(source) | set(target)):
    if name not in source:
      raise ValueError(
          f"Stats checkpoint {where} does not match the model's architecture: parameter "
          f"{name!r} (shape {tuple(target[name])}) has no counterpart in the checkpoint. "
          "Use a checkpoint of the same family (T5 v1.0 vs v1.1) and depth.")
    if name not in target:
      raise ValueError(
          f"Stats checkpoint {where} does not match the model's architecture: its "
          f"parameter {name!r} (shape {tuple(source[name])}) has no counterpart in the "
          "model. Use a checkpoint of the same family (T5 v1.0 vs v1.1) and depth.")
    if len(source[name]) != len(target[name]):
      raise ValueError(
          f"Stats checkpoint {where} does not match the model's architecture: parameter "
          f"{name!r} has rank {len(source[name])} (shape {tuple(source[name])}) in the "
          f"checkpoint but rank {len(target[name])} (shape {tuple(target[name])}) in the "
          "model.")
  return [n for n in sorted(target) if tuple(source[n]) != tuple(target[n])]


@dataclasses.dataclass(frozen=True)
class DrawSpec:
  """How one tensor is re-drawn: the constant `mean` (constant=True) or N(mean, sd)."""
  mean: float
  sd: float
  constant: bool = False


def plan(groups: Mapping[str, Sequence[str]], stats: Mapping[str, Moments],
         stats_fn: str) -> dict[str, DrawSpec]:
  """The per-tensor draw for every grouped tensor under `stats_fn`."""
  check_stats_fn(stats_fn)
  specs = {}
  for label, members in groups.items():
    m = stats[label]
    norm_group = all(param_groups.is_norm_scale(n) for n in members)
    for name in members:
      if stats_fn == "mean_std":
        specs[name] = DrawSpec(m.mean, m.sd)
      elif norm_group:
        specs[name] = DrawSpec(m.mean, 0.0, constant=True)
      else:
        specs[name] = DrawSpec(0.0, m.sd)
  return specs


def draw_key(seed: int) -> jax.Array:
  """The re-draw's own key: key(SEED) folded with a tag (not the default init's)."""
  return jax.random.fold_in(jax.random.key(seed), DRAW_KEY_TAG)


def _name_id(name: str) -> np.uint32:
  return np.uint32(zlib.crc32(name.encode()))


def build_draw(specs: Mapping[str, DrawSpec], shapes: Mapping[str, Any],
               shardings: Optional[Mapping[str, Any]] = None):
  """A jitted `(key, means, sds) -> {name: array}` drawing the tensors of `specs`
  directly into `shardings` (or unsharded when None). Each tensor uses
  `fold_in(key, crc32(name))`, so a tensor's draw does not depend on which others are
  re-drawn. Returns (function, means, sds) with the statistics as host float32 arrays."""
  names = sorted(specs)
  means = np.array([specs[n].mean for n in names], np.float32)
  sds = np.array([specs[n].sd for n in names], np.float32)
  constant = [specs[n].constant for n in names]
  dims = [(tuple(shapes[n].shape), shapes[n].dtype) for n in names]

  def draw(key, means, sds):
    out = {}
    for i, (name, (shape, dtype)) in enumerate(zip(names, dims)):
      if constant[i]:
        out[name] = jnp.full(shape, means[i], dtype)
      else:
        z = jax.random.normal(jax.random.fold_in(key, _name_id(name)), shape, jnp.float32)
        out[name] = (means[i] + sds[i] * z).astype(dtype)
    return out

  out_shardings = None if shardings is None else {n: shardings[n] for n in names}
  return jax.jit(draw, out_shardings=out_shardings), means, sds


def _replace(params: Any, new: Mapping[str, Any]) -> Any:
  flat = dict(checkpoints.flat_names(params))
  flat.update(new)
  return traverse_util.unflatten_dict(flat, sep="/")


def redraw(params: Any, specs: Mapping[str, DrawSpec], key: jax.Array,
           param_shardings: Optional[Any] = None) -> Any:
  """`params` with the tensors of `specs` re-drawn (sharded like `param_shardings`)."""
  if not specs:
    return params
  shapes = checkpoints.flat_names(params)
  shardings = None if param_shardings is None else checkpoints.flat_names(param_shardings)
  fn, means, sds = build_draw(specs, shapes, shardings)
  return _replace(params, fn(key, means, sds))


def set_constant(params: Any, names: Sequence[str], value: float,
                 param_shardings: Optional[Any] = None) -> Any:
  """`params` with the tensors `names` set to `value` (sharded like `param_shardings`)."""
  return redraw(params, {n: DrawSpec(value, 0.0, constant=True) for n in names},
                jax.random.key(0), param_shardings)


def _shape_names(params: Any) -> dict[str, tuple]:
  return {k: tuple(v.shape) for k, v in checkpoints.flat_names(params).items()}


@dataclasses.dataclass(frozen=True)
class MomentMatchingInit:
  """Re-draws the model's tensors from the statistics of `stats_checkpoint` (a run's
  MODEL_DIR, its checkpoints/ directory or one checkpoints/<step> directory).

  `grouping`: a name in `param_groups.GROUPINGS` (or a grouping function);
  `stats_fn`: 'mean_std' or 'scale'. Use as `trainer.train(init_transform=...)`.
  `only_fresh`: re-draw only the tensors the INITIAL_CHECKPOINT_PATH transfer kept fresh
  (the trainer passes them as `fresh=`); the groups' statistics still pool all members.
  """
  stats_checkpoint: str
  grouping: Union[str, param_groups.Grouping] = "per_param"
  stats_fn: str = "mean_std"
  # Which step of a MODEL_DIR: 'latest', 'best', 'first_ge:0.99' or a number.
  checkpoint_step: Union[str, int] = "first_ge:0.99"
  only_fresh: bool = False

  def __post_init__(self):
    if not self.stats_checkpoint:
      raise ValueError("MomentMatchingInit needs a stats checkpoint "
                       "(INIT_STATS_CHECKPOINT).")
    param_groups.check_grouping_name(self.grouping)
    check_stats_fn(self.stats_fn)

  @property
  def grouping_name(self) -> str:
    return self.grouping if isinstance(self.grouping, str) else getattr(
        self.grouping, "__name__", "custom")

  @property
  def description(self) -> str:
    only = ", only tensors kept fresh by the transfer" if self.only_fresh else ""
    return (f"moment matching from {self.stats_checkpoint} (grouping "
            f"{self.grouping_name}, stats {self.stats_fn}{only})")

  def resolve(self) -> tuple[epath.Path, Optional[int], str]:
    """(params path, step, how the step was chosen) of the statistics' checkpoint."""
    return results.resolve_checkpoint(self.stats_checkpoint, self.checkpoint_step,
                                      macro="INIT_STATS_CHECKPOINT")

  def compute(self, target_shapes: Mapping[str, tuple]
              ) -> tuple[dict[str, DrawSpec], dict[str, list[str]], dict[str, Moments],
                         list[str], epath.Path]:
    """Host side: (per-tensor draws, groups, group statistics, same-rank tensors whose
    shapes differ, the resolved params path), for a model of `target_shapes`."""
    path, _, _ = self.resolve()
    differing = check_architecture(checkpoints.params_metadata(path), target_shapes,
                                   str(path))
    groups = param_groups.make_groups(self.grouping, list(target_shapes))
    grouped = [n for members in groups.values() for n in members]
    per_tensor = tensor_moments(read_params(path), grouped)
    stats = group_moments(groups, per_tensor)
    return plan(groups, stats, self.stats_fn), groups, stats, differing, path

  def __call__(self, params: Any, mesh: Any, param_shardings: Any, seed: int, *,
               fresh: Optional[Sequence[str]] = None) -> tuple[Any, list[str]]:
    """Re-draws the grouped tensors (only those in `fresh` when `only_fresh` and it is
    given); returns (params, restore-log lines)."""
    del mesh  # the shardings carry it
    shapes = _shape_names(params)
    specs, groups, stats, differing, path = self.compute(shapes)
    restricted = self.only_fresh and fresh is not None
    if restricted:
      keep = set(fresh)
      specs = {n: s for n, s in specs.items() if n in keep}
    params = redraw(params, specs, draw_key(seed), param_shardings)
    kept = sorted(set(shapes) - set(specs))
    lines = [f"moment matching from {path}: grouping {self.grouping_name}, stats "
             f"{self.stats_fn}, re-drew {len(specs)} tensors, kept "
             f"{checkpoints.summarize_names(kept) if kept else 'nothing'} (default init)"]
    if restricted:
      lines[0] = lines[0].replace("(default init)", "(transferred or default init)")
      lines.append(f"  only the tensors the transfer kept fresh (ONLY_FRESH=True): "
                   f"{checkpoints.summarize_names(sorted(specs)) if specs else 'none'}")
    shown = ", ".join(f"{k} mean {stats[k].mean:.4g} SD {stats[k].sd:.4g}"
                      for k in list(groups)[:3])
    more = f", ... (+{len(groups) - 3} more)" if len(groups) > 3 else ""
    lines.append(f"  {param_groups.describe(groups)}; {shown}{more}; draw key "
                 f"fold_in(key(SEED={seed}), {DRAW_KEY_TAG:#x})")
    if differing:
      n = differing[0]
      lines.append(f"  {len(differing)} tensors differ in shape from the checkpoint "
                   f"(first {n}: model {shapes[n]}); their group statistics are used "
                   "as they are")
    return params, lines


@dataclasses.dataclass(frozen=True)
class ConstantNormInit:
  """Sets the pre-attention norm scales (encoder pre_attention_layer_norm, decoder
  pre_self_attention_layer_norm and pre_cross_attention_layer_norm) to `value`, and the
  pre-MLP norm scales too when `include_pre_mlp_norms`; all else keeps its default init."""
  value: float = 0.4
  include_pre_mlp_norms: bool = False

  def __post_init__(self):
    if not math.isfinite(self.value):
      raise ValueError(f"NORM_CONSTANT must be finite, got {self.value}.")

  @property
  def description(self) -> str:
    extra = " and pre-MLP" if self.include_pre_mlp_norms else ""
    return f"pre-attention{extra} norm scales = {self.value}"

  def names(self, names: Sequence[str]) -> list[str]:
    """The tensors it sets, among a model's parameter names."""
    chosen = param_groups.select("pre_attention_norms", names)
    if self.include_pre_mlp_norms:
      chosen += param_groups.select("pre_mlp_norms", names)
    return sorted(chosen)

  def __call__(self, params: Any, mesh: Any, param_shardings: Any,
               seed: int) -> tuple[Any, list[str]]:
    del mesh, seed
    shapes = _shape_names(params)
    chosen = self.names(list(shapes))
    params = set_constant(params, chosen, self.value, param_shardings)
    return params, [f"{self.description}: set {len(chosen)} tensors "
                    f"({checkpoints.summarize_names(chosen, 3)}); the other "
                    f"{len(shapes) - len(chosen)} keep their default init"]
