"""The restore rules of a run: resume from MODEL_DIR, else step 0 with
INITIAL_CHECKPOINT_PATH's parameters transferred and the init transform applied; every
decision is returned as a log line."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax

from synthpre_jax import checkpoints
from synthpre_jax import distributed
from synthpre_jax.checkpoints import recovery as checkpoint_recovery
from synthpre_jax.checkpoints import transfer_modes
from synthpre_jax.data import vocabulary
from synthpre_jax.training import parts as parts_lib

# (params, mesh, param shardings, seed) -> (params, restore-log lines); run at step 0 only,
# after the INITIAL_CHECKPOINT_PATH transfer (e.g. synthpre_jax.init.moment_matching).
# A transform whose `only_fresh` is true is also passed `fresh=` the names the transfer
# kept fresh (all names when nothing was loaded).
InitTransform = Callable[[Any, Any, Any, int], tuple[Any, list[str]]]


def describe(init_transform: InitTransform) -> str:
  return getattr(init_transform, "description", None) or repr(init_transform)


def initial_state(cfg: Any, parts: parts_lib.Parts, mesh: Any, verify: str,
                   init_transform: Optional[InitTransform] = None,
                   embedding_names: tuple[str, ...] = checkpoints.EMBEDDING_NAMES):
  """Applies the restore rules and returns (state, human-readable decision lines):
  the newest MODEL_DIR checkpoint that verifies (damaged ones moved aside, see
  `checkpoint_recovery`), else step 0. Raises ValueError if it does not fit the model."""
  lines = [f"MODEL_DIR: {cfg.model_dir}"]
  root = checkpoints.checkpoint_dir(cfg.model_dir)
  restored, recovery = checkpoint_recovery.restore_newest(
      root, parts.shapes, parts.shardings, verify=verify, is_primary=jax.process_index() == 0,
      barrier=distributed.wait_for_all)
  lines.extend(recovery)
  if restored is not None:
    latest = int(jax.device_get(restored.step))
    lines.append(f"  found checkpoint step {latest} in {root}"
                 " -> resuming from it (params, optimizer state, step, data position)")
    # Its own embedding continues: the task's vocabulary must still be the same.
    lines.extend("  " + line for line in vocabulary.check_transfer(
        recorded_vocabulary(root / str(latest) / "params"), cfg.vocabulary,
        source_path=str(root / str(latest)), copies_embedding=True, allow_mismatch=False))
    if cfg.initial_checkpoint_path:
      lines.append(f"  INITIAL_CHECKPOINT_PATH={cfg.initial_checkpoint_path} IGNORED: a "
                   "checkpoint in MODEL_DIR takes precedence")
    if init_transform is not None:
      lines.append(f"  init transform {describe(init_transform)} NOT applied: it runs "
                   "only when a run starts at step 0")
    return restored, lines
  lines.append("  no checkpoint in MODEL_DIR -> starting at step 0")
  state, more, fresh = _step0_state(cfg, parts, embedding_names)
  lines.extend(more)
  if init_transform is not None:
    embedding_source = getattr(init_transform, "embedding_source", None)
    if embedding_source is not None:  # e.g. the LSTM with T5's input embedding
      path = embedding_source()
      lines.extend("  " + line for line in vocabulary.check_transfer(
          recorded_vocabulary(path), cfg.vocabulary, source_path=str(path),
          copies_embedding=True, allow_mismatch=False))
    if getattr(init_transform, "only_fresh", False):  # re-draw what was not transferred
      params, more = init_transform(state.params, mesh, parts.shardings.params, cfg.seed,
                                    fresh=fresh)
    else:
      params, more = init_transform(state.params, mesh, parts.shardings.params, cfg.seed)
    lines.extend("  " + line for line in more)
    state = state.replace(params=params)
  return state, lines


def _step0_state(cfg: Any, parts: parts_lib.Parts,
                 embedding_names: tuple[str, ...] = checkpoints.EMBEDDING_NAMES):
  """The fresh state, with INITIAL_CHECKPOINT_PATH's parameters transferred into it by
  TRANSFER_MODE; returns (state, log lines, the names kept fresh)."""
  lines = []
  if not cfg.initial_checkpoint_path:
    lines.append(f"  INITIAL_CHECKPOINT_PATH: none -> all parameters freshly initialised "
                 f"(seed {cfg.seed})")
    return parts.init(cfg.seed), lines, sorted(checkpoints.flat_names(parts.shapes.params))
  params_path = checkpoints.resolve_params_path(cfg.initial_checkpoint_path)
  expected = {k: tuple(v.shape)
              for k, v in checkpoints.flat_names(parts.shapes.params).items()}
  checkpoints.check_compatible(checkpoints.params_metadata(params_path), expected,
                               str(params_path))
  # Before any array is read: a mode that takes nothing of this model fails here.
  taken, _ = transfer_modes.select(cfg.transfer_mode, list(expected), embedding_names)
  vocab_lines = vocabulary.check_transfer(
      recorded_vocabulary(params_path), cfg.vocabulary, source_path=str(params_path),
      copies_embedding=bool(set(taken) & set(embedding_names)), allow_mismatch=cfg.allow_vocab_mismatch)
  state = parts.init(cfg.seed)
  loaded = checkpoints.load_params(params_path, parts.shapes.params, parts.shardings.params)
  params, taken, fresh = checkpoints.transfer(loaded, state.params, cfg.transfer_mode,
                                              embedding_names)
  lines.append(f"  INITIAL_CHECKPOINT_PATH: {params_path} (transfer mode "
               f"{cfg.transfer_mode!r})")
  lines.append(f"    loaded {len(taken)} tensors: {checkpoints.summarize_names(taken)}")
  lines.append(f"    kept fresh (seed {cfg.seed}): "
               f"{checkpoints.summarize_names(fresh) if fresh else 'nothing'}")
  lines.extend("    " + line for line in vocab_lines)
  lines.append("    optimizer state: fresh; step: 0")
  return state.replace(params=params), lines, fresh


def recorded_vocabulary(params_path) -> Optional[dict]:
  """The vocabulary identity in the checkpoint's meta (None when not recorded)."""
  meta = checkpoints.read_meta(params_path) or {}
  return meta.get("vocabulary")
