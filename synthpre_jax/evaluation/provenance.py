"""A run's definition record, `<MODEL_DIR>/run.json`: what a number from this run means.

Written once when a run starts at step 0 (a resume keeps it): the task (a subset name
carries its subset seed), the seeds, the vocabulary identity, every checkpoint read
(path, chosen step and the rule that chose it), the code version and the Gin config
hash. `evaluate` copies it into results.json and a study into each cell's record.
TensorFlow-free.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from typing import Any, Mapping, Optional

from etils import epath

from synthpre_jax import distributed
from synthpre_jax.evaluation import results

RUN_FILE = "run.json"


def config_hash(config_text: str) -> str:
  """sha256 of a resolved Gin config's text."""
  return hashlib.sha256(config_text.encode()).hexdigest()


def code_version() -> dict[str, Optional[str]]:
  """The git commit of the source tree (None outside a checkout) and a hash of the
  project's Python sources (synthpre_jax.distributed.code_fingerprint), taken once per
  process: a process runs the code it imported, so every run of an in-process study
  records that version even when the checkout changes while the study runs."""
  return dict(_process_code_version())


# The checkout holding this package: synthpre_jax/evaluation/provenance.py -> its root.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_state(root: str) -> tuple[Optional[str], Optional[bool]]:
  """(HEAD commit, whether synthpre_jax/, tasks/ or gin/ under `root` differ from it,
  untracked files included); (None, None) outside a git checkout."""
  try:
    commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip() or None
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "synthpre_jax",
                            "tasks", "gin"], capture_output=True, text=True, timeout=10,
                           check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None, None
  return commit, (bool(dirty) if commit else None)


@functools.lru_cache(maxsize=None)
def _process_code_version() -> tuple:
  commit, dirty = git_state(SOURCE_ROOT)
  return (("git_commit", commit), ("git_dirty", dirty),
          ("source_sha256", distributed.code_fingerprint()))


def transform_source(init_transform: Any) -> Optional[dict[str, Any]]:
  """The checkpoint an init transform reads (moment matching, LSTM embedding)."""
  resolve = getattr(init_transform, "resolve", None)
  if resolve is None:
    return None if init_transform is None else {
        "kind": type(init_transform).__name__,
        "description": getattr(init_transform, "description", repr(init_transform))}
  params_path, step, how = resolve()
  return {"kind": type(init_transform).__name__, "params_path": str(params_path),
          "step": step, "how": how,
          "rule": getattr(init_transform, "checkpoint_step", None),
          "description": getattr(init_transform, "description", "")}


def write_run_record(model_dir: str, *, task: str, seed: int, data_seed: int,
                     vocab: Mapping[str, Any], initial_checkpoint: Optional[Mapping],
                     transfer_mode: str, allow_vocab_mismatch: bool,
                     init_transform: Any = None, gin_config_hash: Optional[str] = None
                     ) -> epath.Path:
  """Writes `<model_dir>/run.json` atomically and returns its path."""
  record = {
      "task": task, "seed": int(seed), "data_seed": int(data_seed),
      "vocabulary": dict(vocab), "initial_checkpoint": dict(initial_checkpoint or {}) or None,
      "transfer_mode": transfer_mode if initial_checkpoint else None,
      "allow_vocab_mismatch": bool(allow_vocab_mismatch),
      "init_transform": transform_source(init_transform),
      "code_version": code_version(), "gin_config_hash": gin_config_hash,
      "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  path = epath.Path(model_dir) / RUN_FILE
  results.write_json_atomic(path, record)
  return path


def read_run_record(model_dir: str) -> Optional[dict[str, Any]]:
  """The run's run.json, or None for runs made before it existed."""
  path = epath.Path(model_dir) / RUN_FILE
  return json.loads(path.read_text()) if path.exists() else None
