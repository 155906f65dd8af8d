"""The paper's fixed, deduplicated splits of the synthetic tasks, cached as TFRecords.

The spec (shared/spec/synthetic_tasks.md, "Shared encoding"): generate 1,050,000
examples, drop duplicate inputs, keep 1,000,000 train and 10,000 validation examples.
`build_fixed_splits` does that once per parameter set and caches the result;
`<task>_fixed` SeqIO tasks (registered at the bottom, one per synthetic task of
`tasks.registry`) read the cache, building it on their first `get_dataset`.

Decisions:

- One generator stream feeds both splits: example i is
  `generate_fn(task, cfg, GENERATOR_SPLIT, seed, i)` with `GENERATOR_SPLIT = "fixed"`,
  a stream of its own, independent of the on-the-fly tasks' "train" and "validation"
  streams (so neither a model trained on the infinite stream has seen the fixed
  validation examples, nor the reverse, except by chance collisions).
- Dedup keeps the FIRST occurrence of each input (compared exactly, through a 128-bit
  BLAKE2b digest of the int64 ids; a false collision among 1e6 inputs has probability
  ~1e-27). It runs across the whole stream, so no validation input is a train input.
  The first `num_train` kept examples are train, the next `num_validation` validation.
  Generation stops as soon as both are full: the examples after that would be
  discarded anyway, so the data is identical to generating all `num_generated` and
  slicing. `num_generated` is the cap; a ValueError says so if deduplication leaves
  too few. The manifest records how many were generated and how many dropped.
- Files: each split is `num_files` TFRecord files of `tf.train.Example`s with int64
  lists `inputs`, `targets` (no EOS; the SeqIO task appends it) and `index` (the
  example's generator index: provenance, and what the reuse spot check regenerates).
  Kept example j of a split goes to file j % num_files (round robin), so process p of
  n reads exactly the examples j % n == p (index-residue sharding, as the on-the-fly
  tasks): when n divides num_files it opens only files f % n == p (file-level
  sharding), otherwise it reads every file and keeps every n-th record; either way
  shards are disjoint, cover the split, and keep the order j. Defaults: 64 files
  (1, 2, 4, ..., 64 processes shard at file level).
- Cache key: every parameter that shapes the data (format, task, the full config, the
  generator function's qualified name, `GENERATOR_VERSION`, generator split, seed,
  counts, num_files) is hashed (SHA-256 of sorted JSON); the directory is
  `<cache_dir>/<name>-<first 16 hex digits>`. Different parameters => a different
  directory, so a stale cache is never reused; old directories are left as they are
  (delete them by hand).
- Reuse check, every time (about 0.4 s per 1M-example task: ~500 MB hashed at
  ~1.4 GB/s; worth it, since the alternative is training on silently damaged data):
  manifest.json present and parseable, its parameters equal to the request, every
  file present with the recorded size and SHA-256, and the first record of every file
  equal to what the generator produces for its index now (catches a generator change
  without a `GENERATOR_VERSION` bump). Any failure logs a warning saying what was
  wrong and rebuilds; the bad directory is replaced, never read.
- Atomic build: everything goes into `<cache_dir>/.tmp-<dir>-<random>/` (with an
  `owner.json` naming host and pid), manifest.json last, then the directory is renamed
  into place. A killed build leaves only its temp directory; the next build in that
  cache dir removes temp directories whose owner process is gone (same host) or that
  have not been written to for `STALE_TEMP_SECONDS` (other hosts). Two processes
  building the same key concurrently both finish; the second rename finds the first
  one's valid directory and discards its own. Files are not fsync'ed: a power loss
  may leave a renamed but damaged directory, which the reuse check then rebuilds.
- Speed: serial generation is ~4-5k examples/s for the paper's tasks (the
  generator's ~0.2 ms an example dominates; serialization ~20 us): `set_fixed` took
  218 s on a shared 2-core box (495 MB; reuse with all checks 0.6 s). `num_workers > 1`
  generates chunks in spawned (not forked: TensorFlow threads) worker processes, each
  importing `tasks`, so a script that builds with workers needs the usual
  `if __name__ == "__main__":` guard. Results come back in order and records are
  serialized deterministically (sorted protobuf map keys), so the files are the same
  bytes for any worker count and any process. Progress is logged every
  `PROGRESS_EVERY` examples.
- Registered sizes (`FIXED_SIZES`, read when a task first builds, so tests can shrink
  them): the paper's 1.05M / 1M / 10k (64 files) for the paper-layout tasks;
  21,000 / 20,000 / 1,000 (8 files) for `_tiny` ones (CPU-scale: builds in seconds).
  Cache directory: `$SYNTHPRE_DATA_DIR`, else `~/.cache/synthpre_jax/synthetic`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import re
import shutil
import socket
import struct
import time
import uuid
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import seqio
import tensorflow as tf
from tensorflow.core.example import example_pb2

from tasks import registry
from tasks.synthetic import generators, lime

log = logging.getLogger("synthpre_jax.fixed_splits")

# Bump when any generator's output changes: it is part of the cache key, so every
# cache built by older code is then rebuilt instead of reused.
GENERATOR_VERSION = "1"
# Bump when the file layout or record format changes.
FORMAT_VERSION = 1
# The generator split the fixed splits are drawn from (see the module docstring).
GENERATOR_SPLIT = "fixed"
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"
OWNER = "owner.json"
PROGRESS_EVERY = 100_000
CHUNK = 1_000  # examples per generation chunk (one worker task)
STALE_TEMP_SECONDS = 3600
ENV_DATA_DIR = "SYNTHPRE_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/synthpre_jax/synthetic"

GenerateFn = Callable[..., "tuple[np.ndarray, np.ndarray]"]


@dataclasses.dataclass(frozen=True)
class FixedSizes:
  """How many examples to generate (at most) and keep, and files per split."""

  num_generated: int
  num_train: int
  num_validation: int
  num_files: int = 64


# Sizes of the registered `_fixed` tasks by registry suffix ("" = paper layout).
FIXED_SIZES: dict[str, FixedSizes] = {
    "": FixedSizes(1_050_000, 1_000_000, 10_000, num_files=64),
    "_tiny": FixedSizes(21_000, 20_000, 1_000, num_files=8),
}


@dataclasses.dataclass(frozen=True)
class FixedSplits:
  """A built (or reused) cache directory and its manifest."""

  directory: pathlib.Path
  manifest: Mapping[str, Any]
  reused: bool

  @property
  def num_examples(self) -> dict[str, int]:
    return {s: self.manifest["splits"][s]["num_examples"] for s in SPLITS}

  def files(self, split: str) -> list[str]:
    """The split's TFRecord files, in file-number order."""
    _check_split(split)
    return [str(self.directory / f["name"]) for f in self.manifest["splits"][split]["files"]]

  def dataset(self, split: str, *, shard_index: int = 0, num_shards: int = 1,
              with_index: bool = False) -> tf.data.Dataset:
    """Examples j % num_shards == shard_index of `split`, in order, as int32 dicts
    {inputs, targets} (+ int64 `index`, the generator index, if `with_index`)."""
    return read_split(self.files(split), shard_index=shard_index, num_shards=num_shards,
                      with_index=with_index)


# ------------------------------------------------------------------ records


def _serialize(index: int, inputs: np.ndarray, targets: np.ndarray) -> bytes:
  ex = example_pb2.Example()
  feature = ex.features.feature
  feature["inputs"].int64_list.value.extend(inputs.tolist())
  feature["targets"].int64_list.value.extend(targets.tolist())
  feature["index"].int64_list.value.append(index)
  return ex.SerializeToString(deterministic=True)  # map keys sorted: same bytes anywhere


def _as_ids(x: Any, what: str, index: int) -> np.ndarray:
  a = np.asarray(x)
  if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
    raise ValueError(f"generate_fn returned {what} of shape {a.shape} and dtype {a.dtype} "
                     f"for example {index}; expected a 1-D integer array.")
  return a.astype(np.int64, copy=False)


def _generate_chunk(generate_fn: GenerateFn, task: str, cfg: Any, seed: int, start: int,
                    stop: int) -> list[tuple[bytes, bytes]]:
  """(digest of inputs, serialized record) of examples start..stop-1. Top-level so that
  spawned workers can run it."""
  out = []
  for i in range(start, stop):
    inputs, targets = generate_fn(task, cfg, GENERATOR_SPLIT, seed, i)
    inputs, targets = _as_ids(inputs, "inputs", i), _as_ids(targets, "targets", i)
    digest = hashlib.blake2b(inputs.tobytes(), digest_size=16).digest()
    out.append((digest, _serialize(i, inputs, targets)))
  return out


def _parse(record: tf.Tensor, with_index: bool) -> dict[str, tf.Tensor]:
  spec = {k: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True)
          for k in ("inputs", "targets")}
  spec["index"] = tf.io.FixedLenFeature([], tf.int64)
  ex = tf.io.parse_single_example(record, spec)
  out = {"inputs": tf.cast(ex["inputs"], tf.int32),
         "targets": tf.cast(ex["targets"], tf.int32)}
  if with_index:
    out["index"] = ex["index"]
  return out


def read_split(files: Sequence[str], *, shard_index: int = 0, num_shards: int = 1,
               with_index: bool = False) -> tf.data.Dataset:
  """Records j % num_shards == shard_index of round-robin `files`, in order j.

  File-level when num_shards divides len(files) (opens only this shard's files),
  else every file is read and every num_shards-th record kept.
  """
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(f"Need 0 <= shard_index < num_shards, got shard_index={shard_index}, "
                     f"num_shards={num_shards}")
  files = list(files)
  file_level = len(files) % num_shards == 0
  mine = files[shard_index::num_shards] if file_level else files
  ds = tf.data.Dataset.from_tensor_slices(mine).interleave(
      tf.data.TFRecordDataset, cycle_length=len(mine), block_length=1,
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if not file_level:
    ds = ds.shard(num_shards, shard_index)
  return ds.map(lambda r: _parse(r, with_index), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)


def _first_record(path: pathlib.Path) -> Optional[bytes]:
  """The first record of a TFRecord file (framing only; the file's SHA-256 has already
  been checked), or None if the file is empty."""
  with open(path, "rb") as f:
    head = f.read(12)
    if not head:
      return None
    (length,) = struct.unpack("<Q", head[:8])
    data = f.read(length)
  if len(data) != length:
    raise ValueError(f"{path.name}: truncated first record")
  return data


# ------------------------------------------------------------------ cache keys


def _fn_name(fn: Callable) -> str:
  """A process-independent name of a generator function (part of the cache key)."""
  if isinstance(fn, functools.partial):
    return f"partial({_fn_name(fn.func)}, {fn.args!r}, {sorted(fn.keywords.items())!r})"
  qualname = getattr(fn, "__qualname__", None)
  if qualname is None:  # a callable object: its class
    return f"{type(fn).__module__}.{type(fn).__qualname__}"
  return f"{getattr(fn, '__module__', '?')}.{qualname}"


def _config_dict(cfg: Any) -> dict:
  if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
    raise TypeError(f"cfg must be a dataclass instance (a SyntheticConfig), got {cfg!r}")
  return dataclasses.asdict(cfg)


def cache_params(task: str, cfg: Any, *, generate_fn: GenerateFn, seed: int,
                 num_generated: int, num_train: int, num_validation: int,
                 num_files: int) -> dict[str, Any]:
  """Every parameter that shapes the data: the manifest's `params` and the cache key."""
  return {
      "format_version": FORMAT_VERSION,
      "task": task,
      "config": _config_dict(cfg),
      "generate_fn": _fn_name(generate_fn),
      "generator_version": GENERATOR_VERSION,
      "generator_split": GENERATOR_SPLIT,
      "seed": seed,
      "num_generated": num_generated,
      "num_train": num_train,
      "num_validation": num_validation,
      "num_files": num_files,
  }


def cache_key(params: Mapping[str, Any]) -> str:
  return hashlib.sha256(json.dumps(params, sort_keys=True).encode("utf-8")).hexdigest()


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      h.update(block)
  return h.hexdigest()


# ------------------------------------------------------------------ verification


def _verify(directory: pathlib.Path, params: Mapping[str, Any],
            generate_fn: GenerateFn, cfg: Any) -> tuple[Optional[dict], str]:
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
    for split in SPLITS:
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
        if _sha256(f) != entry["sha256"]:
          return None, f"{split} file {entry['name']} fails its SHA-256 check (corrupt)"
        if (problem := _spot_check(f, params, generate_fn, cfg)):
          return None, f"{split} file {entry['name']}: {problem}"
  except (KeyError, TypeError, ValueError, IndexError, struct.error) as e:
    return None, f"{MANIFEST} or a file is malformed ({type(e).__name__}: {e})"
  return manifest, ""


def _spot_check(path: pathlib.Path, params: Mapping[str, Any], generate_fn: GenerateFn,
                cfg: Any) -> str:
  data = _first_record(path)
  if data is None:
    return ""
  feature = example_pb2.Example.FromString(data).features.feature
  index = feature["index"].int64_list.value[0]
  inputs, targets = generate_fn(params["task"], cfg, GENERATOR_SPLIT, params["seed"], index)
  if (list(feature["inputs"].int64_list.value) != np.asarray(inputs).tolist()
      or list(feature["targets"].int64_list.value) != np.asarray(targets).tolist()):
    return (f"the cached example {index} differs from what the generator produces now: "
            f"the generator changed without a GENERATOR_VERSION bump")
  return ""


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


# ------------------------------------------------------------------ building


def _default_workers(num_generated: int) -> int:
  if num_generated < 100_000:
    return 1
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count() or 1
  return max(1, min(cores, 32))


def _chunks(generate_fn: GenerateFn, task: str, cfg: Any, seed: int, num_generated: int,
            num_workers: int) -> Iterator[list[tuple[bytes, bytes]]]:
  starts = range(0, num_generated, CHUNK)
  args = [(generate_fn, task, cfg, seed, s, min(s + CHUNK, num_generated)) for s in starts]
  if num_workers <= 1:
    for a in args:
      yield _generate_chunk(*a)
    return
  # spawn, not fork: this process runs TensorFlow threads.
  with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
    yield from pool.imap(_star_generate_chunk, args, chunksize=1)
    # leaving the block (also on an early stop) terminates the workers


def _star_generate_chunk(args: tuple) -> list[tuple[bytes, bytes]]:
  return _generate_chunk(*args)


def _write_splits(tmp: pathlib.Path, params: Mapping[str, Any], generate_fn: GenerateFn,
                  cfg: Any, num_workers: int, label: str) -> dict[str, Any]:
  """Generates, deduplicates and writes both splits into `tmp`; returns manifest info."""
  num_files = params["num_files"]
  wanted = {"train": params["num_train"], "validation": params["num_validation"]}
  names = {s: [f"{s}.tfrecord-{f:05d}-of-{num_files:05d}" for f in range(num_files)]
           for s in SPLITS}
  writers = {s: [tf.io.TFRecordWriter(str(tmp / n)) for n in names[s]] for s in SPLITS}
  counts = {s: [0] * num_files for s in SPLITS}
  seen: set[bytes] = set()
  generated = dropped = 0
  needed = wanted["train"] + wanted["validation"]
  kept = 0
  start = time.time()
  next_log = PROGRESS_EVERY
  chunks = _chunks(generate_fn, params["task"], cfg, params["seed"],
                   params["num_generated"], num_workers)
  try:
    for chunk in chunks:
      for digest, record in chunk:
        generated += 1
        if digest in seen:
          dropped += 1
          continue
        seen.add(digest)
        split, j = ("train", kept) if kept < wanted["train"] else (
            "validation", kept - wanted["train"])
        writers[split][j % num_files].write(record)
        counts[split][j % num_files] += 1
        kept += 1
        if kept == needed:
          break
      if generated >= next_log:
        now = time.time()
        log.info("%s: %d/%d generated, %d kept, %d duplicates dropped, %.0f examples/s",
                 label, generated, params["num_generated"], kept, dropped,
                 generated / max(now - start, 1e-9))
        (tmp / OWNER).touch()  # heartbeat for clean_stale_temp_dirs
        next_log += PROGRESS_EVERY
      if kept == needed:
        break
  finally:
    chunks.close()  # stops the worker pool, if any
    for ws in writers.values():
      for w in ws:
        w.close()
  if kept < needed:
    raise ValueError(
        f"{label}: deduplication left {kept} unique examples of the {generated} "
        f"generated ({dropped} duplicate inputs dropped), but num_train + num_validation "
        f"= {wanted['train']} + {wanted['validation']} = {needed}. Raise num_generated "
        f"or lower the split sizes.")
  seconds = time.time() - start
  splits = {}
  for s in SPLITS:
    splits[s] = {"num_examples": wanted[s], "files": [
        {"name": n, "num_examples": c, "bytes": (tmp / n).stat().st_size,
         "sha256": _sha256(tmp / n)} for n, c in zip(names[s], counts[s])]}
  return {"num_examples_generated": generated, "num_duplicates_dropped": dropped,
          "build_seconds": round(seconds, 3),
          "examples_per_second": round(generated / max(seconds, 1e-9), 1),
          "splits": splits}


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


def build_fixed_splits(task: str, cfg: Any, *, generate_fn: GenerateFn,
                       num_generated: int = 1_050_000, num_train: int = 1_000_000,
                       num_validation: int = 10_000, seed: int = 0,
                       cache_dir: "str | os.PathLike", num_files: int = 64,
                       num_workers: Optional[int] = None,
                       name: Optional[str] = None) -> FixedSplits:
  """The fixed train/validation splits of `task`, from the cache or built into it.

  Example i is `generate_fn(task, cfg, "fixed", seed, i)` (int (inputs, targets), no
  EOS); examples whose inputs equal an earlier one's are dropped; the first
  `num_train` kept are train, the next `num_validation` validation. The cache lives
  in `<cache_dir>/<name or task>-<key>/` (key: a hash of every parameter). A valid
  cache is reused; an invalid one (missing manifest, changed or truncated file, ...)
  is rebuilt with a warning. `num_workers` (default: the usable cores for builds of
  >= 100k examples, else 1) spawns generator processes; the data does not depend on
  it. See the module docstring for the decisions.
  """
  name = name or task
  _check_args(task, name, num_generated, num_train, num_validation, num_files, seed)
  params = cache_params(task, cfg, generate_fn=generate_fn, seed=int(seed),
                        num_generated=int(num_generated), num_train=int(num_train),
                        num_validation=int(num_validation), num_files=int(num_files))
  key = cache_key(params)
  cache_dir = pathlib.Path(cache_dir).expanduser()
  final = cache_dir / f"{name}-{key[:16]}"

  if final.exists():
    manifest, problem = _verify(final, params, generate_fn, cfg)
    if manifest is not None:
      log.info("%s: reusing the fixed splits cached in %s", name, final)
      return FixedSplits(final, manifest, reused=True)
    log.warning("%s: the cache in %s is invalid (%s); rebuilding it.", name, final, problem)
  else:
    log.info("%s: no cached fixed splits in %s; building them.", name, final)

  cache_dir.mkdir(parents=True, exist_ok=True)
  clean_stale_temp_dirs(cache_dir)
  tmp = cache_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
  tmp.mkdir()
  try:
    (tmp / OWNER).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}))
    workers = _default_workers(num_generated) if num_workers is None else num_workers
    info = _write_splits(tmp, params, generate_fn, cfg, workers, name)
    manifest = {"params": params, "key": key, "name": name, "num_workers": workers,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    (tmp / OWNER).unlink()
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))  # last
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
      theirs, problem = _verify(final, params, generate_fn, cfg)
      if theirs is None:
        raise RuntimeError(f"{name}: could not move the new cache into {final}, which "
                           f"holds an invalid one ({problem}); remove it and retry.")
      log.info("%s: another process built %s meanwhile; using it.", name, final)
      return FixedSplits(final, theirs, reused=True)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  log.info("%s: built %d train + %d validation examples (%d generated, %d duplicates "
           "dropped) in %.1f s (%.0f examples/s) into %s", name, num_train, num_validation,
           manifest["num_examples_generated"], manifest["num_duplicates_dropped"],
           manifest["build_seconds"], manifest["examples_per_second"], final)
  return FixedSplits(final, manifest, reused=False)


# ------------------------------------------------------------------ SeqIO tasks


def data_dir() -> pathlib.Path:
  """Where the registered `_fixed` tasks cache: $SYNTHPRE_DATA_DIR or the default."""
  return pathlib.Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR).expanduser()


@dataclasses.dataclass(frozen=True)
class FixedTaskSpec:
  """What a registered `<name>_fixed` task builds: generator task id, config, function,
  and the `FIXED_SIZES` key of its sizes."""

  task: str
  cfg: Any
  generate_fn: GenerateFn
  sizes_key: str


# name -> spec of every registered `_fixed` task.
FIXED_TASKS: dict[str, FixedTaskSpec] = {}
_BUILT: dict[str, FixedSplits] = {}  # per-process memo: cache directory -> FixedSplits


def ensure_built(name: str, *, cache_dir: "Optional[str | os.PathLike]" = None,
                 num_workers: Optional[int] = None) -> FixedSplits:
  """The cache of registered `_fixed` task `name`, built if needed (memoized)."""
  if name not in FIXED_TASKS:
    raise ValueError(f"Unknown fixed-split task {name!r}; registered: "
                     f"{', '.join(sorted(FIXED_TASKS))}")
  spec = FIXED_TASKS[name]
  sizes = FIXED_SIZES[spec.sizes_key]
  kwargs = dict(generate_fn=spec.generate_fn, num_generated=sizes.num_generated,
                num_train=sizes.num_train, num_validation=sizes.num_validation,
                num_files=sizes.num_files, seed=registry.DATA_SEED,
                cache_dir=pathlib.Path(cache_dir) if cache_dir else data_dir(),
                num_workers=num_workers, name=name)
  memo = json.dumps({k: str(v) for k, v in kwargs.items()}, sort_keys=True)
  if memo not in _BUILT:
    _BUILT[memo] = build_fixed_splits(spec.task, spec.cfg, **kwargs)
  return _BUILT[memo]


def _make_dataset_fn(name: str) -> Callable[..., tf.data.Dataset]:
  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                 shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
    # Fixed file order; SeqIO's shuffle buffer (with `seed`) shuffles examples.
    del shuffle_files, seed
    _check_split(split)
    fixed = ensure_built(name)
    index, num = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
    return fixed.dataset(split, shard_index=index, num_shards=num)
  return dataset_fn


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r} of a fixed-split task; expected one of "
                     f"{SPLITS}")


def register_fixed(base: str, spec: FixedTaskSpec) -> seqio.Task:
  """Registers `<base>_fixed`: the fixed splits of registered synthetic task `base`,
  with its output features and maximum lengths."""
  name = base + "_fixed"
  FIXED_TASKS[name] = spec
  registry.TASK_MAX_LENGTHS[name] = dict(registry.TASK_MAX_LENGTHS[base])
  base_task = seqio.get_mixture_or_task(base)
  return seqio.TaskRegistry.add(
      name,
      source=registry.IndexedSource(_make_dataset_fn(name), splits=SPLITS),
      output_features=base_task.output_features,
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      metric_fns=[],
  )


def _synthetic_specs() -> dict[str, FixedTaskSpec]:
  """(registered name -> spec) of the synthetic tasks `tasks.registry` registers, from
  its loops (generators x CONFIGS, LIME modes x LIME_CONFIGS); variants whose suffix
  has no `FIXED_SIZES` entry are skipped."""
  specs = {}
  for suffix, cfg in registry.CONFIGS.items():
    for task in generators.GENERATORS:
      specs[task + suffix] = FixedTaskSpec(task, cfg, generators.generate, suffix)
  for suffix, cfg in registry.LIME_CONFIGS.items():
    for mode in lime.LIME_MODES:
      specs[lime.lime_task_name(mode) + suffix] = FixedTaskSpec(
          mode, cfg, lime.generate_lime, suffix)
  registered = set(seqio.TaskRegistry.names())
  return {n: s for n, s in specs.items()
          if s.sizes_key in FIXED_SIZES and n in registry.TASK_MAX_LENGTHS
          and n in registered}


def _register_all() -> None:
  for base, spec in _synthetic_specs().items():
    register_fixed(base, spec)
  # `<mixture>_fixed` for each mixture all of whose tasks now have a fixed twin.
  for mix_name in sorted(seqio.MixtureRegistry.names()):
    mix = seqio.get_mixture_or_task(mix_name)
    if mix_name.endswith("_fixed") or mix_name + "_fixed" in seqio.MixtureRegistry.names():
      continue
    if mix.tasks and all(t.name + "_fixed" in FIXED_TASKS for t in mix.tasks):
      seqio.MixtureRegistry.add(
          mix_name + "_fixed", [(t.name + "_fixed", mix.get_rate(t)) for t in mix.tasks])


_register_all()
