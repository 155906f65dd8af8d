"""Reading T5X checkpoints (no t5x package needed).

Two layouts, both directories named `checkpoint_<step>`:

- the classic T5X layout (`t5x.checkpoints.Checkpointer`): a msgpack file `checkpoint`
  holding `{'version': 3, 'optimizer': {'target': {...}, 'state': {'step': ...,
  'param_states': {...}}}}` (version 0 files lack the `optimizer` level), in which each
  partitioned array is replaced by a TensorStore spec with a path relative to the step
  directory (`target.encoder.layers_0.attention.query.kernel`, a zarr array), and small
  unpartitioned arrays are stored inline;
- the Orbax layout of newer T5X (a PyTree checkpoint with keys `target/...` and
  `state/...`), read with Orbax.

Only `target/...` (the parameters) is used; `state/param_states` (optimizer slots) and
`state/step` are ignored. T5X parameter names are the project's. Conventions:

- kernels are 2-D (`DenseGeneral` stores `[prod(in), prod(out)]`); 3-D attention kernels
  (`[embed, heads, kv]`, `[heads, kv, embed]`) as some Flax T5 variants save are
  flattened to that 2-D form;
- the query kernel already holds T5's 1/sqrt(head_dim) factor: T5X divides the query
  kernel's initialiser by sqrt(head_dim) and never scales attention logits, exactly as
  the project does (`layers.MultiHeadDotProductAttention`, `attend(scale=1.0)`), so it is
  copied unchanged, as are all other tensors.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import serialization

from synthpre_jax.convert.project import ConversionError

_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")
_ORBAX_MARKERS = ("_METADATA", "manifest.ocdbt", "_CHECKPOINT_METADATA", "_sharding")


def find_step_dir(path: str) -> tuple[epath.Path, Optional[int]]:
  """The `checkpoint_<step>` directory for a T5X model dir, its checkpoints dir, a step
  dir or the step's `checkpoint` file; the newest step when several."""
  p = epath.Path(path)
  if not p.exists():
    raise ConversionError(f"T5X checkpoint {path!r} does not exist.")
  if p.name == "checkpoint" and not p.is_dir():
    p = p.parent
  if (p / "checkpoint").exists() or any((p / m).exists() for m in _ORBAX_MARKERS):
    m = _STEP_DIR.match(p.name)
    return p, int(m.group(1)) if m else None
  for root in (p, p / "checkpoints"):
    if not root.exists():
      continue
    steps = sorted((int(m.group(1)), c) for c in root.iterdir()
                   if (m := _STEP_DIR.match(c.name)) and c.is_dir())
    if steps:
      return steps[-1][1], steps[-1][0]
  raise ConversionError(
      f"No T5X checkpoint in {path!r}: looked for a `checkpoint` msgpack file or an Orbax "
      "checkpoint in it, and for checkpoint_<step>/ directories in it and in its "
      "checkpoints/ directory.")


def _is_ts_spec(x: Any) -> bool:
  return isinstance(x, dict) and ("kvstore" in x or "driver" in x) and "metadata" in x


def _absolute_spec(spec: dict, step_dir: epath.Path) -> dict:
  """T5X writes relative kvstore paths (and a dummy GCS bucket): point them at step_dir."""
  spec = dict(spec)
  kvstore = dict(spec.get("kvstore") or {})
  rel = kvstore.get("path", spec.pop("path", None))
  if rel is None:
    raise ConversionError(f"TensorStore spec without a path in the T5X checkpoint: {spec}")
  where = os.fspath(step_dir)
  m = re.fullmatch(r"gs://([^/]+)/(.*)", where, re.DOTALL)
  if m:
    kvstore = {"driver": "gcs", "bucket": m.group(1), "path": f"{m.group(2)}/{rel}"}
  else:
    kvstore = {"driver": "file", "path": os.path.join(where, rel)}
  spec["kvstore"] = kvstore
  return spec


def _read_ts(spec: dict, step_dir: epath.Path, name: str) -> np.ndarray:
  import tensorstore as ts  # pylint: disable=g-import-not-at-top  (optional)
  try:
    arr = ts.open(_absolute_spec(spec, step_dir), open=True).result().read().result()
  except (ValueError, RuntimeError) as e:
    raise ConversionError(f"Cannot read T5X tensor {name!r} from {step_dir}: {e}") from e
  return np.asarray(arr)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  out = {}
  if isinstance(tree, dict) and not _is_ts_spec(tree):
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}/"))
  else:
    out[prefix[:-1]] = tree
  return out


def _target(tree: dict, where: str) -> dict:
  if "optimizer" in tree and isinstance(tree["optimizer"], dict):
    tree = tree["optimizer"]
  if "target" not in tree:
    raise ConversionError(f"{where} has no 'target' (parameters) entry; top-level keys: "
                          f"{sorted(tree)}. Is it a T5X train-state checkpoint?")
  return tree["target"]


def _read_msgpack(step_dir: epath.Path) -> dict[str, np.ndarray]:
  try:
    contents = serialization.msgpack_restore((step_dir / "checkpoint").read_bytes())
  except Exception as e:  # msgpack raises several unrelated types
    raise ConversionError(f"{step_dir / 'checkpoint'} is not a T5X msgpack checkpoint "
                          f"({type(e).__name__}: {e}).") from e
  flat = _flatten(_target(contents, str(step_dir / "checkpoint")))
  out = {}
  for name, leaf in flat.items():
    if _is_ts_spec(leaf):
      out[name] = _read_ts(leaf, step_dir, name)
    elif isinstance(leaf, (np.ndarray, np.generic, float, int)):
      out[name] = np.asarray(leaf)
    else:
      raise ConversionError(f"T5X tensor {name!r}: unsupported entry {type(leaf).__name__} "
                            f"in {step_dir / 'checkpoint'}.")
  return out


def _read_orbax(step_dir: epath.Path) -> dict[str, np.ndarray]:
  checkpointer = ocp.PyTreeCheckpointer()
  try:
    meta = checkpointer.metadata(step_dir)
  except (ValueError, FileNotFoundError) as e:
    raise ConversionError(f"{step_dir} is not a readable Orbax checkpoint: {e}") from e
  tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
  target = {"target": _target(dict(tree), str(step_dir))}
  if "optimizer" in tree:
    target = {"optimizer": target}
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
  restored = checkpointer.restore(step_dir, args=ocp.args.PyTreeRestore(
      item=target, restore_args=restore_args, partial_restore=True))
  return {k: np.asarray(v) for k, v in _flatten(_target(restored, str(step_dir))).items()}


def read_t5x(path: str) -> tuple[dict[str, np.ndarray], Optional[int], epath.Path, str]:
  """(flat `target` params as float32 numpy, step or None, step dir, layout name)."""
  step_dir, step = find_step_dir(path)
  if any((step_dir / m).exists() for m in _ORBAX_MARKERS):
    params, layout = _read_orbax(step_dir), "Orbax PyTree"
  else:
    params, layout = _read_msgpack(step_dir), "T5X msgpack + TensorStore"
  return ({k: np.asarray(v, np.float32) for k, v in params.items()}, step, step_dir,
          layout)


def to_project_shapes(params: dict[str, np.ndarray], expected: dict[str, tuple]
                      ) -> tuple[dict[str, np.ndarray], list[str]]:
  """Flattens 3-D attention kernels to the 2-D T5X/project form where that is all that
  differs; other shapes are left for the caller's check."""
  out, notes = {}, []
  for name, value in params.items():
    want = expected.get(name)
    if (want is not None and value.ndim == 3 and len(want) == 2
        and name.endswith("/kernel") and value.size == int(np.prod(want))):
      if name.endswith("/out/kernel") and value.shape[2] == want[1]:
        value = value.reshape(want)
      elif not name.endswith("/out/kernel") and value.shape[0] == want[0]:
        value = value.reshape(want)
      if value.shape == tuple(want):
        notes.append(f"flattened 3-D kernel {name} to {tuple(want)}")
    out[name] = value
  return out, notes
