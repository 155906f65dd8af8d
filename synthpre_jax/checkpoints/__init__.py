"""Orbax checkpoints: atomic saves, keep-last-N plus keep-best (and given steps), resume,
and transfer.

Layout: `<MODEL_DIR>/checkpoints/<step>/{params,opt_state,meta,checksums.json}`. Orbax
writes each step into a temporary directory and renames it when written; the step is
*complete* once `checksums.json` is recorded beside it (`synthpre_jax.checkpoints.checksums`), and
every read verifies it first. Leftovers are cleaned at the next start.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence, Union

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util
from orbax.checkpoint import checkpoint_managers as ocp_managers

from synthpre_jax.checkpoints import checksums
from synthpre_jax.checkpoints import transfer_modes
from synthpre_jax.training.train_state import TrainState

# The fixed transfer modes; 'first_k_layers:K' and 'regex:...' take an argument
# (all forms and their validation: synthpre_jax.checkpoints.transfer_modes).
TRANSFER_MODES = transfer_modes.FIXED_MODES
# Tensors with one row per token id, kept fresh by 'all_but_embeddings' when the model
# family names none (each family names its own: `ModelConfig.embedding_names`).
EMBEDDING_NAMES = ("token_embedder/embedding", "decoder/logits_dense/kernel")
BEST_METRIC = "token_accuracy"


def flat_names(tree: Any) -> dict[str, Any]:
  """`{'encoder/layers_0/...': leaf}` for a nested parameter dict."""
  return traverse_util.flatten_dict(tree, sep="/")


def absolute_path(path: Optional[str]) -> Optional[str]:
  """`path` made absolute against the working directory (`~` expanded); URLs such as
  gs://... and None are returned unchanged. Entry points call it once per path."""
  if not path or "://" in str(path):
    return path
  return os.path.abspath(os.path.expanduser(str(path)))


def checkpoint_dir(model_dir: str) -> epath.Path:
  return epath.Path(model_dir) / "checkpoints"


def complete_steps(root: Union[str, epath.Path]) -> list[int]:
  """Sorted steps under a `checkpoints/` directory whose save finished (checksums
  recorded: `checksums.is_complete`); the one definition every reader uses."""
  root = epath.Path(root)
  if not root.exists():
    return []
  return sorted(int(c.name) for c in root.iterdir()
                if c.name.isdigit() and checksums.is_complete(c))


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """How often and how many: `period` in steps, keep the last `keep` plus the best one
  by validation token accuracy (`keep_best=True`), plus every step in `keep_steps`."""
  period: int = 1000
  keep: int = 3
  keep_best: bool = True
  async_save: bool = True
  # Also keep the first checkpoint whose validation token accuracy reaches this value
  # (the paper's 'first_ge:0.99' source checkpoint), e.g. 0.99 in gin/pretrain.gin.
  keep_first_reaching: Optional[float] = None
  # How a resume checks the step it reads: 'full' (sizes and SHA-256 of every file) or
  # 'sizes' (sizes only: for very large checkpoints; misses flipped bits).
  verify: str = "full"
  # Steps that are always saved and never deleted (0: the initial state, saved before
  # the first step), e.g. a natural-token curve's steps (the study spec's token_steps, synthpre_jax/study/spec.py).
  keep_steps: tuple[int, ...] = ()

  def __post_init__(self):
    if self.period < 1 or self.keep < 1:
      raise ValueError(f"CheckpointConfig: period ({self.period}) and keep ({self.keep}) "
                       "must be >= 1.")
    steps = tuple(self.keep_steps or ())
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
      raise ValueError(f"CheckpointConfig.keep_steps must be step numbers >= 0, got "
                       f"{self.keep_steps!r}.")
    object.__setattr__(self, "keep_steps", tuple(sorted(set(steps))))
    if self.verify not in checksums.VERIFY_MODES:
      raise ValueError(f"CheckpointConfig.verify must be one of {checksums.VERIFY_MODES}, "
                       f"got {self.verify!r}.")


@dataclasses.dataclass(kw_only=True)
class FirstReaching(ocp_managers.PreservationPolicy):
  """Preserves the earliest checkpoint whose `BEST_METRIC` is >= `threshold`."""
  threshold: float

  def should_preserve(self, checkpoints, *, context) -> list[bool]:
    del context
    reached = [i for i, c in enumerate(checkpoints) if c.metrics is not None
               and c.metrics.get(BEST_METRIC, -np.inf) >= self.threshold]
    first = min(reached, key=lambda i: checkpoints[i].step) if reached else None
    return [i == first for i in range(len(checkpoints))]


@dataclasses.dataclass(kw_only=True)
class KeepSteps(ocp_managers.PreservationPolicy):
  """Preserves the checkpoints whose step is one of `steps` (CheckpointConfig.keep_steps)."""
  steps: tuple[int, ...]

  def should_preserve(self, checkpoints, *, context) -> list[bool]:
    del context
    return [c.step in self.steps for c in checkpoints]


def make_manager(model_dir: str, config: CheckpointConfig) -> ocp.CheckpointManager:
  """The run's CheckpointManager (creates the directory)."""
  policies = [ocp_managers.LatestN(n=config.keep)]
  if config.keep_best:
    policies.append(ocp_managers.BestN(
        get_metric_fn=lambda m: m[BEST_METRIC], n=1,
        keep_checkpoints_without_metrics=False))
  if config.keep_first_reaching is not None:
    policies.append(FirstReaching(threshold=config.keep_first_reaching))
  if config.keep_steps:
    policies.append(KeepSteps(steps=config.keep_steps))
  options = ocp.CheckpointManagerOptions(
      create=True, cleanup_tmp_directories=True,
      enable_async_checkpointing=config.async_save,
      preservation_policy=ocp_managers.AnyPreservationPolicy(policies))
  return ocp.CheckpointManager(checkpoint_dir(model_dir), options=options)


def save(manager: ocp.CheckpointManager, state: TrainState, *,
         metrics: Optional[dict] = None, meta: Optional[dict] = None) -> None:
  """Saves params and optimizer state at `state.step` (asynchronously when enabled)."""
  step = int(jax.device_get(state.step))
  manager.save(step, args=ocp.args.Composite(
      params=ocp.args.StandardSave(state.params),
      opt_state=ocp.args.StandardSave(state.opt_state),
      meta=ocp.args.JsonSave(meta or {})), metrics=metrics, force=True)


def _abstract(shapes: Any, shardings: Any) -> Any:
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, shardings)


def restore_state(step_dir: epath.Path, shapes: TrainState, shardings: TrainState,
                  verify: Optional[str] = "full") -> TrainState:
  """Verifies (unless `verify` is None: done already), then restores the training state
  saved in `step_dir` into its shardings. Raises checksums.CorruptCheckpointError."""
  step_dir = epath.Path(step_dir)
  if verify is not None:
    checksums.verify(step_dir, ("params", "opt_state"), mode=verify)
  step = int(step_dir.name)
  reader = ocp.StandardCheckpointer()
  params = reader.restore(step_dir / "params", _abstract(shapes.params, shardings.params))
  restored = reader.restore(step_dir / "opt_state",
                            _abstract(shapes.opt_state, shardings.opt_state))
  # Orbax returns optax's NamedTuples as plain tuples: rebuild the exact structure.
  opt_def = jax.tree_util.tree_structure(shapes.opt_state)
  opt_state = jax.tree_util.tree_unflatten(opt_def, jax.tree_util.tree_leaves(restored))
  step_arr = jax.device_put(np.asarray(step, np.int32), shardings.step)
  return TrainState(step=step_arr, params=params, opt_state=opt_state)


def resolve_params_path(path: str, macro: str = "INITIAL_CHECKPOINT_PATH") -> epath.Path:
  """Accepts a model dir, its `checkpoints/` dir, or one step dir; returns the step's
  `params` directory, or raises FileNotFoundError saying what was looked for (naming
  the Gin macro `macro` that set the path). Relative paths are taken from the working
  directory; a run's newest *complete* step is used (see `complete_steps`)."""
  p = epath.Path(absolute_path(str(path)))
  if not p.exists():
    raise FileNotFoundError(
        f"{macro} {path!r} does not exist. Point it at a run's MODEL_DIR, "
        "its checkpoints/ directory, or one checkpoints/<step> directory.")
  if (p / "params").exists():
    return p / "params"
  root = p / "checkpoints" if (p / "checkpoints").exists() else p
  steps = complete_steps(root)
  if not steps:
    raise FileNotFoundError(
        f"{macro} {path!r} holds no finished checkpoint (looked for "
        f"{root}/<step>/{checksums.CHECKSUMS_FILE}). Is the pre-training run done or "
        "still writing its first? A step saved before checksums existed can be accepted "
        "with `python -m synthpre_jax.checkpoints.checksums seal <step dir>`.")
  return root / str(steps[-1]) / "params"


def read_meta(params_path: epath.Path) -> Optional[dict]:
  """The JSON `meta` saved beside a step's `params`, or None when there is none."""
  meta_dir = epath.Path(params_path).parent / "meta"
  if not meta_dir.exists():
    return None
  checksums.verify(meta_dir.parent, ("meta",))
  return ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(meta_dir)


def params_metadata(params_path: epath.Path) -> dict[str, tuple]:
  """{name: shape} of a saved parameter tree, read without loading any array; its
  metadata files are verified first, the arrays by size (checksums.CorruptCheckpointError)."""
  checksums.verify(epath.Path(params_path).parent, ("params",), hash_up_to=1 << 16)
  meta = ocp.PyTreeCheckpointer().metadata(params_path)
  tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
  return {k: tuple(v.shape) for k, v in flat_names(tree).items()}


def check_compatible(saved: dict[str, tuple], expected: dict[str, tuple],
                     source: str) -> None:
  """Raises ValueError naming the first parameter missing or of a different shape."""
  for name in sorted(expected):
    if name not in saved:
      raise ValueError(
          f"Checkpoint {source} does not match the model: parameter {name!r} "
          f"(shape {expected[name]}) is missing from it. Is the Gin model file the one "
          "the checkpoint was trained with?")
    if tuple(saved[name]) != tuple(expected[name]):
      raise ValueError(
          f"Checkpoint {source} does not match the model: parameter {name!r} has shape "
          f"{tuple(saved[name])} in the checkpoint but {tuple(expected[name])} in the "
          "model. Use the Gin model file the checkpoint was trained with.")
  extra = sorted(set(saved) - set(expected))
  if extra:
    raise ValueError(f"Checkpoint {source} does not match the model: it has parameters "
                     f"the model lacks, first {extra[0]!r} ({len(extra)} in all). Use the "
                     "Gin model file the checkpoint was trained with.")


def load_params(params_path: epath.Path, shapes: Any, shardings: Any) -> Any:
  """Verifies, then restores a parameter tree from a step's `params` directory into
  `shardings`. Raises checksums.CorruptCheckpointError naming a bad file."""
  checksums.verify(epath.Path(params_path).parent, ("params",))
  return ocp.StandardCheckpointer().restore(params_path, _abstract(shapes, shardings))


def transfer(loaded: Any, fresh: Any, mode: str,
             embedding_names: Sequence[str] = EMBEDDING_NAMES
             ) -> tuple[Any, list[str], list[str]]:
  """Combines loaded and freshly initialised params by transfer mode (a form in
  `transfer_modes.FORMS`; 'all_but_embeddings' keeps `embedding_names` fresh).

  Returns (params, names taken from the checkpoint, names kept fresh). Raises
  ValueError for an invalid mode or one that takes nothing of this model.
  """
  flat_loaded, flat_fresh = flat_names(loaded), flat_names(fresh)
  taken, kept = transfer_modes.select(mode, list(flat_loaded), embedding_names)
  keep_fresh = set(kept)
  out = {k: (flat_fresh[k] if k in keep_fresh else v) for k, v in flat_loaded.items()}
  return traverse_util.unflatten_dict(out, sep="/"), taken, kept


def summarize_names(names: Sequence[str], limit: int = 4) -> str:
  """'a, b, c, ... (+N more)' for the restore log."""
  names = list(names)
  head = ", ".join(names[:limit])
  return head + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")
