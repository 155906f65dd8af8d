"""Builds the fixed splits: generate, deduplicate inputs, write, move into the cache.

`build_fixed_splits` draws examples 0, 1, ... of (task, cfg, "fixed", seed) in chunks
of `CHUNK`, keeps the first occurrence of each input (compared exactly), writes the
first `num_train` kept as train and the next `num_validation` as validation
(`tasks/fixed_splits/records.py`), and renames the finished directory into the cache
(`tasks/fixed_splits/cache.py`), reusing a valid one. docs/tasks.md explains the
choices and gives the measured speed.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import multiprocessing
import os
import pathlib
import re
import shutil
import socket
import time
import uuid
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from tasks.fixed_splits import cache as fixed_cache
from tasks.fixed_splits import records
from tasks.synthetic import kernels
from tasks.synthetic.family import BatchFn, GenerateFn
from tasks.synthetic.ragged import Batch

log = logging.getLogger("synthpre_jax.fixed_splits")

PROGRESS_EVERY = 100_000
CHUNK = 8_192  # examples per generation chunk (one generate_batch call / worker task)


def _as_ids(x: Any, what: str, index: int) -> np.ndarray:
  a = np.asarray(x)
  if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
    raise ValueError(f"generate_fn returned {what} of shape {a.shape} and dtype {a.dtype} "
                     f"for example {index}; expected a 1-D integer array.")
  return a.astype(np.int32, copy=False)


def per_example_batch(generate_fn: GenerateFn, task: str, cfg: Any, split: str, seed: int,
                      indices: Sequence[int]) -> Batch:
  """A Batch from a per-example generator, one call per index."""
  out = []
  for i in np.asarray(indices).tolist():
    inputs, targets = generate_fn(task, cfg, split, seed, i)
    out.append((_as_ids(inputs, "inputs", i), _as_ids(targets, "targets", i)))
  return Batch.from_examples(out)


def _default_workers(num_generated: int, batch: bool) -> int:
  if batch or num_generated < 100_000:
    return 1  # the vectorized generators outrun the worker start-up and transfer
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count() or 1
  return max(1, min(cores, 32))


def _generate_chunk(fn: "GenerateFn | BatchFn", batch: bool, task: str, cfg: Any,
                    seed: int, start: int, stop: int) -> Batch:
  """Examples start..stop-1 of the generator stream. Top-level so that spawned workers
  can run it."""
  indices = np.arange(start, stop, dtype=np.int64)
  if not batch:
    return per_example_batch(fn, task, cfg, fixed_cache.GENERATOR_SPLIT, seed, indices)
  out = fn(task, cfg, fixed_cache.GENERATOR_SPLIT, seed, indices)
  if not isinstance(out, Batch) or len(out) != len(indices):
    raise ValueError(f"batch_fn must return a ragged.Batch of {len(indices)} examples, "
                     f"got {type(out).__name__}")
  return out


def _star_generate_chunk(args: tuple) -> Batch:
  return _generate_chunk(*args)


def _chunks(fn, batch: bool, task: str, cfg: Any, seed: int, num_generated: int,
            num_workers: int) -> Iterator[tuple[int, Batch]]:
  starts = range(0, num_generated, CHUNK)
  args = [(fn, batch, task, cfg, seed, s, min(s + CHUNK, num_generated)) for s in starts]
  if num_workers <= 1:
    for a in args:
      yield a[5], _generate_chunk(*a)
    return
  # spawn, not fork: this process runs TensorFlow threads.
  with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
    for a, out in zip(args, pool.imap(_star_generate_chunk, args, chunksize=1)):
      yield a[5], out
    # leaving the block (also on an early stop) terminates the workers


_K_TOKEN = np.uint64(0xD1B54A32D192ED03)
_K_LENGTH = np.uint64(0x8CB92BA72F3D8DD7)


def input_hashes(batch: Batch) -> np.ndarray:
  """A 64-bit hash of every example's inputs (dedup candidates; compared exactly after):
  mix64 of the row's length and of the wrapping sum of mix64(id * K + position step)."""
  return kernels.row_hashes(batch.inputs, batch.input_offsets, _K_TOKEN, _K_LENGTH)


class _Dedup:
  """First-occurrence dedup of inputs across chunks, exact: a hash match is a duplicate
  only if the ids are equal. Chunks start at multiples of `chunk_size`."""

  def __init__(self, chunk_size: int):
    self.chunk_size = chunk_size
    self.seen: dict[int, int] = {}  # hash -> generator index of its first occurrence
    self.more: dict[int, list[int]] = {}  # hash -> later indices with other inputs
    self.chunks: dict[int, Batch] = {}  # start -> chunk

  def _inputs(self, index: int) -> np.ndarray:
    start = index - index % self.chunk_size
    return self.chunks[start].example(index - start)[0]

  def keep(self, start: int, chunk: Batch) -> np.ndarray:
    """Rows of `chunk` (examples start, start + 1, ...) whose inputs are new, in order."""
    self.chunks[start] = chunk
    h = input_hashes(chunk)
    hl = h.tolist()
    seen = self.seen
    known = np.fromiter(map(seen.__contains__, hl), bool, len(hl))
    repeat = np.ones(len(h), bool)
    repeat[np.unique(h, return_index=True)[1]] = False  # not the chunk's first
    fresh = np.flatnonzero(~known & ~repeat)
    seen.update(zip(h[fresh].tolist(), (start + fresh).tolist()))
    keep = ~known & ~repeat
    for row in np.flatnonzero(known | repeat).tolist():  # rare: compare the ids
      inputs = chunk.example(row)[0]
      earlier = [seen[hl[row]]] + self.more.get(hl[row], [])
      if not any(np.array_equal(inputs, self._inputs(i)) for i in earlier):
        keep[row] = True  # a hash collision of different inputs
        self.more.setdefault(hl[row], []).append(start + row)
    return np.flatnonzero(keep)


def _write_split(tmp: pathlib.Path, split: str, data: Batch, index: np.ndarray,
                 num_files: int, dtype: str) -> list[dict]:
  """Writes `split`, the examples `index` of `data` (its kept examples j = 0.., in
  order), round robin into num_files files of `records.RECORD_EXAMPLES`-example records;
  returns
  the manifest's file entries."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  entries = []
  for f in range(num_files):
    name = f"{split}.tfrecord-{f:05d}-of-{num_files:05d}"
    mine_index = index[f::num_files]
    mine = data.take(mine_index)  # one gather per file
    with tf.io.TFRecordWriter(str(tmp / name)) as writer:
      for s in range(0, len(mine_index), records.RECORD_EXAMPLES):
        e = min(s + records.RECORD_EXAMPLES, len(mine_index))
        writer.write(records.serialize_block(mine_index[s:e], mine.slice(s, e), dtype))
    entries.append({"name": name, "num_examples": len(mine_index),
                    "bytes": (tmp / name).stat().st_size,
                    "sha256": fixed_cache.sha256(tmp / name)})
  return entries


def _write_splits(tmp: pathlib.Path, params: Mapping[str, Any], fn, batch: bool,
                  cfg: Any, num_workers: int, label: str) -> dict[str, Any]:
  """Generates, deduplicates and writes both splits into `tmp`; returns manifest info."""
  wanted = {"train": params["num_train"], "validation": params["num_validation"]}
  needed = wanted["train"] + wanted["validation"]
  dedup = _Dedup(CHUNK)
  parts: list[Batch] = []  # every chunk generated, cut after the last example needed
  kept_index: list[np.ndarray] = []  # = rows of the concatenated parts
  generated = kept = 0
  start = time.time()
  next_log = PROGRESS_EVERY
  chunks = _chunks(fn, batch, params["task"], cfg, params["seed"],
                   params["num_generated"], num_workers)
  try:
    for first, chunk in chunks:
      rows = dedup.keep(first, chunk)
      if kept + len(rows) >= needed:  # full: stop at the last example needed
        rows = rows[:needed - kept]
        generated = first + int(rows[-1]) + 1
      else:
        generated = first + len(chunk)
      kept += len(rows)
      kept_index.append(first + rows)
      parts.append(chunk.slice(0, generated - first))
      if generated >= next_log:
        log.info("%s: %d/%d generated, %d kept, %.0f examples/s", label, generated,
                 params["num_generated"], kept, generated / max(time.time() - start, 1e-9))
        (tmp / fixed_cache.OWNER).touch()  # heartbeat for clean_stale_temp_dirs
        next_log += PROGRESS_EVERY
      if kept == needed:
        break
  finally:
    chunks.close()  # stops the worker pool, if any
  dropped = generated - kept
  if kept < needed:
    raise ValueError(
        f"{label}: deduplication left {kept} unique examples of the {generated} "
        f"generated ({dropped} duplicate inputs dropped), but num_train + num_validation "
        f"= {wanted['train']} + {wanted['validation']} = {needed}. Raise num_generated "
        f"or lower the split sizes.")
  generate_seconds = time.time() - start
  dedup.chunks.clear()
  data = Batch.concatenate(parts)  # example i of the stream = row i; gathered per file
  index = np.concatenate(kept_index)
  if data.inputs.size and records.token_dtype(cfg) == "uint16" and max(
      int(data.inputs.max()), int(data.targets.max() if data.targets.size else 0)) >= 1 << 16:
    raise ValueError(f"{label}: an id >= 65536 with a vocabulary of <= 65536 ids")
  splits, at = {}, 0
  for s in records.SPLITS:
    splits[s] = {"num_examples": wanted[s], "files": _write_split(
        tmp, s, data, index[at:at + wanted[s]], params["num_files"],
        params["token_dtype"])}
    at += wanted[s]
  seconds = time.time() - start
  return {"num_examples_generated": generated, "num_duplicates_dropped": dropped,
          "build_seconds": round(seconds, 3), "generate_seconds": round(generate_seconds, 3),
          "examples_per_second": round(generated / max(seconds, 1e-9), 1),
          "token_dtype": params["token_dtype"], "splits": splits}


def can_write() -> bool:
  """Whether this host can build caches: the TFRecord writer needs TensorFlow."""
  try:
    return importlib.util.find_spec("tensorflow") is not None
  except (ImportError, ValueError):
    return False


def _check_args(task, name, num_generated, num_train, num_validation, num_files, seed):
  for arg, v, lo in (("num_generated", num_generated, 1), ("num_train", num_train, 1),
                     ("num_validation", num_validation, 0), ("num_files", num_files, 1),
                     ("seed", seed, 0)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
      raise ValueError(f"{arg} must be an int >= {lo}, got {v!r}")
  if num_train + num_validation > num_generated:
    raise ValueError(f"num_train + num_validation ({num_train} + {num_validation}) must "
                     f"be <= num_generated ({num_generated})")
  if not isinstance(task, str) or not task:
    raise ValueError(f"task must be a non-empty string, got {task!r}")
  if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
    raise ValueError(f"name {name!r} must be usable as a directory name ([A-Za-z0-9_.-])")


def build_fixed_splits(task: str, cfg: Any, *, generate_fn: Optional[GenerateFn] = None,
                       batch_fn: Optional[BatchFn] = None,
                       num_generated: int = 1_050_000, num_train: int = 1_000_000,
                       num_validation: int = 10_000, seed: int = 0,
                       cache_dir: "str | os.PathLike", num_files: int = 64,
                       num_workers: Optional[int] = None,
                       name: Optional[str] = None) -> fixed_cache.FixedSplits:
  """The fixed train/validation splits of `task`, from the cache or built into it.

  Example i is example i of (task, cfg, "fixed", seed) from exactly one of
  `batch_fn(task, cfg, split, seed, indices) -> ragged.Batch` or the per-example
  `generate_fn(task, cfg, split, seed, index) -> (inputs, targets)` (int ids, no
  EOS); examples whose inputs equal an earlier one's are dropped; the first
  `num_train` kept are train, the next `num_validation` validation. The cache lives
  in `<cache_dir>/<name or task>-<key>/` (key: a hash of every parameter). A valid
  cache is reused; an invalid one (missing manifest, changed or truncated file, ...)
  is rebuilt with a warning. `num_workers` (default: 1 for a batch_fn; the usable
  cores for a generate_fn and >= 100k examples) spawns generator processes; the data
  does not depend on it. Raises ValueError for bad arguments or too few unique
  examples, RuntimeError where the cache is unusable and TensorFlow is missing.
  """
  if (generate_fn is None) == (batch_fn is None):
    raise ValueError("Pass exactly one of generate_fn (per example) and batch_fn.")
  batch = batch_fn is not None
  fn = batch_fn if batch else generate_fn
  as_batch: BatchFn = fn if batch else functools.partial(per_example_batch, fn)
  name = name or task
  _check_args(task, name, num_generated, num_train, num_validation, num_files, seed)
  params = fixed_cache.cache_params(
      task, cfg, generate_fn=fn, seed=int(seed), num_generated=int(num_generated),
      num_train=int(num_train), num_validation=int(num_validation),
      num_files=int(num_files), batch=batch)
  key = fixed_cache.cache_key(params)
  cache_dir = pathlib.Path(cache_dir).expanduser()
  final = cache_dir / f"{name}-{key[:16]}"

  problem = "not built yet"
  if final.exists():
    manifest, problem = fixed_cache.verify(final, params, as_batch, cfg)
    if manifest is not None:
      log.info("%s: reusing the fixed splits cached in %s", name, final)
      return fixed_cache.FixedSplits(final, manifest, reused=True)
  if not can_write():
    raise RuntimeError(
        f"{name}: the fixed splits in {final} are not usable ({problem}), and building "
        f"them needs TensorFlow (the TFRecord writer), which is not installed here. "
        f"Build them where it is: `python -m tasks.build_fixed_splits {name} "
        f"--cache_dir DIR` (DIR defaults to ${fixed_cache.ENV_DATA_DIR}), then copy "
        f"DIR/{final.name} into {cache_dir} (this host's ${fixed_cache.ENV_DATA_DIR}, "
        f"else {fixed_cache.DEFAULT_DATA_DIR}).")
  if final.exists():
    log.warning("%s: the cache in %s is invalid (%s); rebuilding it.", name, final, problem)
  else:
    log.info("%s: no cached fixed splits in %s; building them.", name, final)

  cache_dir.mkdir(parents=True, exist_ok=True)
  fixed_cache.clean_stale_temp_dirs(cache_dir)
  tmp = cache_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
  tmp.mkdir()
  try:
    (tmp / fixed_cache.OWNER).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}))
    workers = (_default_workers(num_generated, batch) if num_workers is None
               else num_workers)
    info = _write_splits(tmp, params, fn, batch, cfg, workers, name)
    manifest = {"params": params, "key": key, "name": name, "num_workers": workers,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    (tmp / fixed_cache.OWNER).unlink()
    # The manifest last: a directory without one is never reused.
    (tmp / fixed_cache.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if final.exists():  # the invalid old cache: move it aside, then swap in the new one
      trash = cache_dir / f".tmp-{final.name}-old-{uuid.uuid4().hex[:8]}"
      try:
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
      except FileNotFoundError:
        pass
    try:
      os.rename(tmp, final)
    except OSError:  # another process renamed its build into place first
      theirs, problem = fixed_cache.verify(final, params, as_batch, cfg)
      if theirs is None:
        raise RuntimeError(f"{name}: could not move the new cache into {final}, which "
                           f"holds an invalid one ({problem}); remove it and retry.")
      log.info("%s: another process built %s meanwhile; using it.", name, final)
      return fixed_cache.FixedSplits(final, theirs, reused=True)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  log.info("%s: built %d train + %d validation examples (%d generated, %d duplicates "
           "dropped) in %.1f s (%.0f examples/s) into %s", name, num_train, num_validation,
           manifest["num_examples_generated"], manifest["num_duplicates_dropped"],
           manifest["build_seconds"], manifest["examples_per_second"], final)
  return fixed_cache.FixedSplits(final, manifest, reused=False)
