"""The fixed splits' cache: directory, key, manifest, verification and stale temp dirs.

A cache directory is `<cache_dir>/<name>-<first 16 hex digits of the key>`, the key
the SHA-256 of every parameter that shapes the data (`cache_params`). `verify` checks
a directory before it is reused: manifest, parameters, every file's size and SHA-256,
and the first example of every file against the generator now. docs/tasks.md explains
the choices.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import shutil
import socket
import struct
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

from tasks.fixed_splits import records
from tasks.synthetic.family import BatchFn, GenerateFn

log = logging.getLogger("synthpre_jax.fixed_splits")

# Bump when any generator's output changes: it is part of the cache key, so every
# cache built by older code is then rebuilt instead of reused. "3": the compiled
# kernels (tasks/synthetic/kernels.py).
GENERATOR_VERSION = "3"
# The generator split the fixed splits are drawn from (a stream of its own).
GENERATOR_SPLIT = "fixed"
MANIFEST = "manifest.json"
OWNER = "owner.json"
STALE_TEMP_SECONDS = 3600
ENV_DATA_DIR = "SYNTHPRE_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/synthpre_jax/synthetic"


def data_dir() -> pathlib.Path:
  """Where the registered `_fixed` tasks cache: $SYNTHPRE_DATA_DIR or the default."""
  return pathlib.Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR).expanduser()


@dataclasses.dataclass(frozen=True)
class FixedSplits:
  """A built (or reused) cache directory and its manifest."""

  directory: pathlib.Path
  manifest: Mapping[str, Any]
  reused: bool

  @property
  def num_examples(self) -> dict[str, int]:
    return {s: self.manifest["splits"][s]["num_examples"] for s in records.SPLITS}

  def files(self, split: str) -> list[str]:
    """The split's TFRecord files, in file-number order."""
    records.check_split(split)
    return [str(self.directory / f["name"]) for f in self.manifest["splits"][split]["files"]]

  def dataset(self, split: str, *, shard_index: int = 0, num_shards: int = 1,
              with_index: bool = False) -> tf.data.Dataset:
    """Examples j % num_shards == shard_index of `split`, in order, as int32 dicts
    {inputs, targets} (+ int64 `index`, the generator index, if `with_index`)."""
    return records.read_split(self.files(split), token_dtype=self.manifest["token_dtype"],
                      shard_index=shard_index, num_shards=num_shards,
                      with_index=with_index)


def _fn_name(fn: Callable) -> str:
  """A process-independent name of a generator function (part of the cache key)."""
  if isinstance(fn, functools.partial):
    return f"partial({_fn_name(fn.func)}, {fn.args!r}, {sorted(fn.keywords.items())!r})"
  qualname = getattr(fn, "__qualname__", None)
  if qualname is None:  # a callable object: its class
    return f"{type(fn).__module__}.{type(fn).__qualname__}"
  return f"{getattr(fn, '__module__', '?')}.{qualname}"


# Config fields added after caches were built: left out of the key at this default
# value, so the caches built before them stay valid (FormalConfig's ECA gzip band).
KEY_OMITTED_AT_DEFAULT = {"gzip_min_ratio": 0.0, "gzip_max_ratio": None}


def _config_dict(cfg: Any) -> dict:
  if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
    raise TypeError(f"cfg must be a dataclass instance (a SyntheticConfig), got {cfg!r}")
  return {k: v for k, v in dataclasses.asdict(cfg).items()
          if k not in KEY_OMITTED_AT_DEFAULT or v != KEY_OMITTED_AT_DEFAULT[k]}


def cache_params(task: str, cfg: Any, *, generate_fn: "GenerateFn | BatchFn", seed: int,
                 num_generated: int, num_train: int, num_validation: int,
                 num_files: int, batch: bool = False) -> dict[str, Any]:
  """Every parameter that shapes the data: the manifest's `params` and the cache key.
  `batch`: whether `generate_fn` is a batch function."""
  return {
      "format_version": records.FORMAT_VERSION,
      "task": task,
      "config": _config_dict(cfg),
      "generate_fn": _fn_name(generate_fn),
      "generate_kind": "batch" if batch else "example",
      "generator_version": GENERATOR_VERSION,
      "generator_split": GENERATOR_SPLIT,
      "seed": seed,
      "num_generated": num_generated,
      "num_train": num_train,
      "num_validation": num_validation,
      "num_files": num_files,
      "record_examples": records.RECORD_EXAMPLES,
      "token_dtype": records.token_dtype(cfg),
  }


def cache_key(params: Mapping[str, Any]) -> str:
  return hashlib.sha256(json.dumps(params, sort_keys=True).encode("utf-8")).hexdigest()


def sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      h.update(block)
  return h.hexdigest()


# ------------------------------------------------------------------ verification


def verify(directory: pathlib.Path, params: Mapping[str, Any],
            batch_fn: BatchFn, cfg: Any) -> tuple[Optional[dict], str]:
  """(manifest, "") if `directory` is a valid cache for `params`, else (None, reason)."""
  path = directory / MANIFEST
  if not path.is_file():
    return None, f"{MANIFEST} is missing (a partial or foreign directory)"
  try:
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict):
      raise TypeError(f"a JSON {type(manifest).__name__}, not an object")
    splits = manifest["splits"]
  except (ValueError, KeyError, TypeError) as e:
    return None, f"{MANIFEST} is unreadable ({type(e).__name__}: {e})"
  if manifest.get("params") != dict(params):
    theirs = manifest.get("params") or {}
    diff = sorted(k for k in set(theirs) | set(params) if theirs.get(k) != params.get(k))
    return None, f"{MANIFEST} parameters differ from the request in {diff}"
  try:
    firsts = []  # (split, file name, first example's index, inputs, targets)
    for split in records.SPLITS:
      files = splits[split]["files"]
      if len(files) != params["num_files"]:
        return None, f"{split}: {len(files)} files listed, expected {params['num_files']}"
      for entry in files:
        f = directory / entry["name"]
        if not f.is_file():
          return None, f"{split} file {entry['name']} is missing"
        size = f.stat().st_size
        if size != entry["bytes"]:
          return None, (f"{split} file {entry['name']} has {size} bytes, the manifest "
                        f"says {entry['bytes']} (truncated or overwritten)")
        if sha256(f) != entry["sha256"]:
          return None, f"{split} file {entry['name']} fails its SHA-256 check (corrupt)"
        data = records.first_record(f)
        if data is not None:
          index, block = records.deserialize_block(data, params["token_dtype"])
          firsts.append((split, entry["name"], int(index[0]), *block.example(0)))
  except (KeyError, TypeError, ValueError, IndexError, struct.error) as e:
    return None, f"{MANIFEST} or a file is malformed ({type(e).__name__}: {e})"
  if firsts:  # the spot check: one generator call for all first examples
    now = batch_fn(params["task"], cfg, GENERATOR_SPLIT, params["seed"],
                   np.asarray([x[2] for x in firsts], np.int64))
    for j, (split, name, index, inputs, targets) in enumerate(firsts):
      want_inputs, want_targets = now.example(j)
      if not (np.array_equal(inputs, want_inputs) and np.array_equal(targets, want_targets)):
        return None, (f"{split} file {name}: the cached example {index} differs from what "
                      f"the generator produces now: the generator changed without a "
                      f"GENERATOR_VERSION bump")
  return manifest, ""


# ------------------------------------------------------------------ temp directories


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _newest_mtime(path: pathlib.Path) -> float:
  times = [path.stat().st_mtime]
  for p in path.iterdir():
    try:
      times.append(p.stat().st_mtime)
    except FileNotFoundError:
      pass
  return max(times)


def clean_stale_temp_dirs(cache_dir: pathlib.Path) -> list[pathlib.Path]:
  """Removes `.tmp-*` directories of killed builds in `cache_dir`; returns them.

  Stale: the owner (owner.json) ran on this host and its pid is gone, or nothing in
  it was written for `STALE_TEMP_SECONDS` (a build on another host, or one killed
  before it wrote owner.json).
  """
  removed = []
  if not cache_dir.is_dir():
    return removed
  host = socket.gethostname()
  for tmp in cache_dir.glob(".tmp-*"):
    try:
      if not tmp.is_dir():
        continue
      stale = False
      try:
        owner = json.loads((tmp / OWNER).read_text())
        if owner.get("host") == host and owner.get("pid") != os.getpid():
          stale = not _pid_alive(int(owner["pid"]))
      except (OSError, ValueError, KeyError, TypeError):
        pass
      stale = stale or time.time() - _newest_mtime(tmp) > STALE_TEMP_SECONDS
    except FileNotFoundError:  # another process removed or renamed it meanwhile
      continue
    if stale:
      log.warning("Removing %s, left by a killed or abandoned build.", tmp)
      shutil.rmtree(tmp, ignore_errors=True)
      removed.append(tmp)
  return removed
