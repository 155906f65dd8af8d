"""The paper's fixed, deduplicated splits of the synthetic tasks, cached as TFRecords.

The spec (shared/spec/synthetic_tasks.md, "Shared encoding"): generate 1,050,000
examples, drop duplicate inputs, keep 1,000,000 train and 10,000 validation examples.
`build_fixed_splits` does that once per parameter set and caches the result;
`<task>_fixed` SeqIO tasks (registered at the bottom where seqio is importable, one per
synthetic task of `tasks.registry`) read the cache, building it on their first
`get_dataset`; their TensorFlow-free twins (tasks/fixed_split_source.py) read the same
cache for the native input path. This module imports without tensorflow and seqio:
finding and verifying a cache need neither; building it (the TFRecord writer) and the
tf.data reader (`read_split`) need TensorFlow.

Decisions:

- One generator stream feeds both splits: example i is example i of
  (task, GENERATOR_SPLIT = "fixed", seed), a stream of its own, independent of the
  on-the-fly tasks' "train" and "validation" streams (so neither a model trained on the
  infinite stream has seen the fixed validation examples, nor the reverse, except by
  chance collisions). Generators come as a batch function
  `batch_fn(task, cfg, split, seed, indices) -> ragged.Batch` (the compiled simple
  tasks) or a per-example `generate_fn(task, cfg, split, seed, index) -> (inputs,
  targets)` (LIME), drawn in chunks of `CHUNK` indices.
- Dedup keeps the FIRST occurrence of each input, compared EXACTLY: a 64-bit hash of
  each input row (`kernels.row_hashes`) finds candidates, and a hash match counts as a duplicate only
  if the ids are equal. It runs across the whole stream, so no validation input is a
  train input. The first `num_train` kept examples are train, the next
  `num_validation` validation. Generation stops as soon as both are full (the data is
  identical to generating all `num_generated` and slicing). `num_generated` is the cap;
  a ValueError says so if deduplication leaves too few. The manifest records how many
  were generated and how many dropped.
- Files (format 2): each split is `num_files` TFRecord files. Kept example j of a split
  belongs to file j % num_files (round robin); a file's examples, in order, are packed
  `RECORD_EXAMPLES` to a record: a `tf.train.Example` of five bytes features (little
  endian) `index` (int64 generator indices), `input_lengths`, `target_lengths`
  (int32), `inputs`, `targets` (all ids of the block concatenated, no EOS; uint16 when
  the vocabulary has <= 65,536 ids, else int32: the manifest's `token_dtype`). A
  tf.data pipeline decodes a record into a block and unbatches it, so the reader does
  per-record, not per-example, protobuf work, and the writer serializes ~1k records
  instead of 1M. Process p of n reads exactly the examples j % n == p (index-residue
  sharding, as the on-the-fly tasks): when n divides num_files it opens only files
  f % n == p (file-level sharding), otherwise it reads every file and keeps every n-th
  example; either way shards are disjoint, cover the split, and keep the order j.
  Defaults: 64 files (1, 2, 4, ..., 64 processes shard at file level). Without
  TensorFlow, records are read by synthpre_jax/data/tfrecord.py (framing checked; CRCs
  only where a CRC-32C package is installed, none is by default: the reuse check's
  SHA-256 of every file covers integrity).
- Order and shuffle, the same on both input paths: a shard's examples in order j,
  and when shuffling (training) the positions inside each block of
  `synthetic_streams.STREAM_BLOCK` (512) shard positions permuted by
  `synthetic_streams.block_permutation`, seeded by (seed, shard, shard count, block),
  as the on-the-fly streams do (`shuffle_blocks` here, the native source there); every
  epoch repeats that order. The SeqIO Tasks have no shuffle buffer
  (shuffle_buffer_size=None). This replaced SeqIO's default 1,000-example buffer, which
  numpy cannot reproduce: shuffled `_fixed` runs see the same examples as before in a
  different order.
- Cache key: every parameter that shapes the data (format, task, the full config, the
  generator function's qualified name and kind, `GENERATOR_VERSION`, generator split,
  seed, counts, num_files, records' size) is hashed (SHA-256 of sorted JSON); the
  directory is `<cache_dir>/<name>-<first 16 hex digits>`. Different parameters => a
  different directory, so a stale cache is never reused; old directories are left as
  they are (delete them by hand). `GENERATOR_VERSION` 3 is the compiled (numba)
  kernels with Fisher-Yates shuffles; versions 1 (one numpy Generator per example) and
  2 (whole-array numpy, sort-based shuffles) made other data.
- Reuse check, every time (~0.35 s per 1M-example task: the files' SHA-256): manifest.json
  present and parseable, its parameters equal to the request, every file present with
  the recorded size and SHA-256, and the first example of every file equal to what the
  generator produces for its index now (catches a generator change without a
  `GENERATOR_VERSION` bump). Any failure logs a warning saying what was wrong and
  rebuilds; the bad directory is replaced, never read. Where TensorFlow is missing,
  a missing or invalid cache is a RuntimeError saying to build it with
  `python -m tasks.build_fixed_splits` where TensorFlow is installed and copy it over.
- Atomic build: everything goes into `<cache_dir>/.tmp-<dir>-<random>/` (with an
  `owner.json` naming host and pid), manifest.json last, then the directory is renamed
  into place. A killed build leaves only its temp directory; the next build in that
  cache dir removes temp directories whose owner process is gone (same host) or that
  have not been written to for `STALE_TEMP_SECONDS` (other hosts). Two processes
  building the same key concurrently both finish; the second rename finds the first
  one's valid directory and discards its own. Files are not fsync'ed: a power loss
  may leave a renamed but damaged directory, which the reuse check then rebuilds.
- Speed: the paper-size Set split (1.01M generated until 1M + 10k unique, 372 MB)
  builds in about 8 s on one quiet core (generation and dedup ~55% of it; the reuse
  check ~0.35 s); `python benchmarks/generate.py` prints the figure (the goal is < 30 s).
  `num_workers > 1` generates chunks in spawned (not forked: TensorFlow threads) worker
  processes, each importing `tasks`, so a script that builds with
  workers needs the usual `if __name__ == "__main__":` guard; it helps the per-example
  generators (LIME), whose default is the usable cores for >= 100k examples. Results
  come back in order and records are serialized deterministically, so the files are
  the same bytes for any worker count and any process. Progress is logged every
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
import importlib.util
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

from synthpre_jax.data import task_metadata, tfrecord
from tasks import synthetic_streams
from tasks.synthetic import catalog, generators, kernels, lime
from tasks.synthetic.ragged import Batch

log = logging.getLogger("synthpre_jax.fixed_splits")

# Bump when any generator's output changes: it is part of the cache key, so every
# cache built by older code is then rebuilt instead of reused. "3": the compiled
# kernels (tasks/synthetic/kernels.py).
GENERATOR_VERSION = "3"
# Bump when the file layout or record format changes. 2: blocks of examples per record.
FORMAT_VERSION = 2
# The generator split the fixed splits are drawn from (see the module docstring).
GENERATOR_SPLIT = "fixed"
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"
OWNER = "owner.json"
PROGRESS_EVERY = 100_000
CHUNK = 8_192  # examples per generation chunk (one generate_batch call / worker task)
RECORD_EXAMPLES = 1_024  # examples per TFRecord record (a block)
STALE_TEMP_SECONDS = 3600
ENV_DATA_DIR = "SYNTHPRE_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/synthpre_jax/synthetic"
FEATURES = ("index", "input_lengths", "target_lengths", "inputs", "targets")

GenerateFn = Callable[..., "tuple[np.ndarray, np.ndarray]"]
BatchFn = Callable[..., Batch]


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
    return read_split(self.files(split), token_dtype=self.manifest["token_dtype"],
                      shard_index=shard_index, num_shards=num_shards,
                      with_index=with_index)


# ------------------------------------------------------------------ records

_TOKEN_DTYPES = {"uint16": np.dtype("<u2"), "int32": np.dtype("<i4")}


def token_dtype(cfg: Any) -> str:
  """"uint16" if every id of cfg's vocabulary fits in 16 bits, else "int32"."""
  vocab = getattr(cfg, "vocab_size", None)
  return "uint16" if isinstance(vocab, int) and 0 < vocab <= 1 << 16 else "int32"


def _serialize_block(index: np.ndarray, block: Batch, dtype: str) -> bytes:
  """One record: a block of examples (see the module docstring)."""
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  np_dtype = _TOKEN_DTYPES[dtype]
  ex = example_pb2.Example()
  feature = ex.features.feature
  feature["index"].bytes_list.value.append(np.asarray(index, "<i8").tobytes())
  feature["input_lengths"].bytes_list.value.append(block.input_lengths.astype("<i4").tobytes())
  feature["target_lengths"].bytes_list.value.append(
      block.target_lengths.astype("<i4").tobytes())
  feature["inputs"].bytes_list.value.append(block.inputs.astype(np_dtype).tobytes())
  feature["targets"].bytes_list.value.append(block.targets.astype(np_dtype).tobytes())
  return ex.SerializeToString(deterministic=True)  # map keys sorted: same bytes anywhere


def _deserialize_block(data: bytes, dtype: str) -> tuple[np.ndarray, Batch]:
  """(generator indices, Batch) of one record, in numpy without TensorFlow (the spot
  check's and the native source's reader). Raises ValueError on a malformed record."""
  feature = tfrecord.example_bytes_features(data)
  if any(len(feature.get(k, ())) != 1 for k in FEATURES):
    raise ValueError(f"a record without one bytes value for each of {FEATURES}")
  raw = {k: feature[k][0] for k in FEATURES}
  np_dtype = _TOKEN_DTYPES[dtype]
  return np.frombuffer(raw["index"], "<i8"), Batch(
      np.frombuffer(raw["inputs"], np_dtype).astype(np.int32),
      np.frombuffer(raw["input_lengths"], "<i4").astype(np.int64),
      np.frombuffer(raw["targets"], np_dtype).astype(np.int32),
      np.frombuffer(raw["target_lengths"], "<i4").astype(np.int64))


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


def _parse_block(record: "tf.Tensor", tf_dtype: "tf.DType", with_index: bool):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ex = tf.io.parse_single_example(
      record, {k: tf.io.FixedLenFeature([], tf.string) for k in FEATURES})
  out = {}
  for key, lengths in (("inputs", "input_lengths"), ("targets", "target_lengths")):
    values = tf.cast(tf.io.decode_raw(ex[key], tf_dtype), tf.int32)
    out[key] = tf.RaggedTensor.from_row_lengths(
        values, tf.cast(tf.io.decode_raw(ex[lengths], tf.int32), tf.int64))
  if with_index:
    out["index"] = tf.io.decode_raw(ex["index"], tf.int64)
  return out


def _dense(example: dict) -> dict:
  return {k: v.flat_values if hasattr(v, "flat_values") else v  # a RaggedTensor row
          for k, v in example.items()}


def read_split(files: Sequence[str], *, token_dtype: str = "int32", shard_index: int = 0,
               num_shards: int = 1, with_index: bool = False) -> tf.data.Dataset:
  """Examples j % num_shards == shard_index of round-robin `files`, in order j.

  File-level when num_shards divides len(files) (opens only this shard's files),
  else every file is read and every num_shards-th example kept.
  """
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(f"Need 0 <= shard_index < num_shards, got shard_index={shard_index}, "
                     f"num_shards={num_shards}")
  if token_dtype not in _TOKEN_DTYPES:
    raise ValueError(f"token_dtype must be one of {sorted(_TOKEN_DTYPES)}, got "
                     f"{token_dtype!r}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf_dtype = tf.as_dtype(_TOKEN_DTYPES[token_dtype])
  files = list(files)
  file_level = len(files) % num_shards == 0
  mine = files[shard_index::num_shards] if file_level else files

  def examples_of(path: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path).map(
        lambda r: _parse_block(r, tf_dtype, with_index)).unbatch()

  ds = tf.data.Dataset.from_tensor_slices(mine).interleave(
      examples_of, cycle_length=len(mine), block_length=1,
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if not file_level:
    ds = ds.shard(num_shards, shard_index)
  return ds.map(tf.autograph.experimental.do_not_convert(_dense))


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


def cache_params(task: str, cfg: Any, *, generate_fn: "GenerateFn | BatchFn", seed: int,
                 num_generated: int, num_train: int, num_validation: int,
                 num_files: int, batch: bool = False) -> dict[str, Any]:
  """Every parameter that shapes the data: the manifest's `params` and the cache key.
  `batch`: whether `generate_fn` is a batch function."""
  return {
      "format_version": FORMAT_VERSION,
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
      "record_examples": RECORD_EXAMPLES,
      "token_dtype": token_dtype(cfg),
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
        data = _first_record(f)
        if data is not None:
          index, block = _deserialize_block(data, params["token_dtype"])
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


# ------------------------------------------------------------------ building


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
    return per_example_batch(fn, task, cfg, GENERATOR_SPLIT, seed, indices)
  out = fn(task, cfg, GENERATOR_SPLIT, seed, indices)
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
  order), round robin into num_files files of RECORD_EXAMPLES-example records; returns
  the manifest's file entries."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  entries = []
  for f in range(num_files):
    name = f"{split}.tfrecord-{f:05d}-of-{num_files:05d}"
    mine_index = index[f::num_files]
    mine = data.take(mine_index)  # one gather per file
    with tf.io.TFRecordWriter(str(tmp / name)) as writer:
      for s in range(0, len(mine_index), RECORD_EXAMPLES):
        e = min(s + RECORD_EXAMPLES, len(mine_index))
        writer.write(_serialize_block(mine_index[s:e], mine.slice(s, e), dtype))
    entries.append({"name": name, "num_examples": len(mine_index),
                    "bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)})
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
        (tmp / OWNER).touch()  # heartbeat for clean_stale_temp_dirs
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
  if data.inputs.size and token_dtype(cfg) == "uint16" and max(
      int(data.inputs.max()), int(data.targets.max() if data.targets.size else 0)) >= 1 << 16:
    raise ValueError(f"{label}: an id >= 65536 with a vocabulary of <= 65536 ids")
  splits, at = {}, 0
  for s in SPLITS:
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
                       name: Optional[str] = None) -> FixedSplits:
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
  does not depend on it. See the module docstring for the decisions.
  """
  if (generate_fn is None) == (batch_fn is None):
    raise ValueError("Pass exactly one of generate_fn (per example) and batch_fn.")
  batch = batch_fn is not None
  fn = batch_fn if batch else generate_fn
  as_batch: BatchFn = fn if batch else functools.partial(per_example_batch, fn)
  name = name or task
  _check_args(task, name, num_generated, num_train, num_validation, num_files, seed)
  params = cache_params(task, cfg, generate_fn=fn, seed=int(seed),
                        num_generated=int(num_generated), num_train=int(num_train),
                        num_validation=int(num_validation), num_files=int(num_files),
                        batch=batch)
  key = cache_key(params)
  cache_dir = pathlib.Path(cache_dir).expanduser()
  final = cache_dir / f"{name}-{key[:16]}"

  problem = "not built yet"
  if final.exists():
    manifest, problem = _verify(final, params, as_batch, cfg)
    if manifest is not None:
      log.info("%s: reusing the fixed splits cached in %s", name, final)
      return FixedSplits(final, manifest, reused=True)
  if not can_write():
    raise RuntimeError(
        f"{name}: the fixed splits in {final} are not usable ({problem}), and building "
        f"them needs TensorFlow (the TFRecord writer), which is not installed here. "
        f"Build them where it is: `python -m tasks.build_fixed_splits {name} "
        f"--cache_dir DIR` (DIR defaults to ${ENV_DATA_DIR}), then copy DIR/{final.name} "
        f"into {cache_dir} (this host's ${ENV_DATA_DIR}, else {DEFAULT_DATA_DIR}).")
  if final.exists():
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
    workers = (_default_workers(num_generated, batch) if num_workers is None
               else num_workers)
    info = _write_splits(tmp, params, fn, batch, cfg, workers, name)
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
      theirs, problem = _verify(final, params, as_batch, cfg)
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
  """What a registered `<name>_fixed` task builds: generator task id, config, function
  (per-example or batch), and the `FIXED_SIZES` key of its sizes."""

  task: str
  cfg: Any
  generate_fn: Optional[GenerateFn]  # per example (LIME), or None with a batch_fn
  sizes_key: str
  batch_fn: Optional[BatchFn] = None  # one call per chunk (the simple tasks)


# name -> spec of every registered `_fixed` task.
FIXED_TASKS: dict[str, FixedTaskSpec] = {}
_BUILT: dict[str, FixedSplits] = {}  # per-process memo: cache directory -> FixedSplits


def ensure_built(name: str, *, cache_dir: "Optional[str | os.PathLike]" = None,
                 num_workers: Optional[int] = None) -> FixedSplits:
  """The cache of registered `_fixed` task `name`, built if needed (memoized)."""
  spec = fixed_spec(name)
  if spec is None:
    known = sorted(FIXED_TASKS) or [b + "_fixed" for b in sorted(fixed_specs())]
    raise ValueError(f"Unknown fixed-split task {name!r}; known: {', '.join(known)}")
  sizes = FIXED_SIZES[spec.sizes_key]
  kwargs = dict(generate_fn=spec.generate_fn, batch_fn=spec.batch_fn,
                num_generated=sizes.num_generated,
                num_train=sizes.num_train, num_validation=sizes.num_validation,
                num_files=sizes.num_files, seed=synthetic_streams.DATA_SEED,
                cache_dir=pathlib.Path(cache_dir) if cache_dir else data_dir(),
                num_workers=num_workers, name=name)
  memo = json.dumps({k: str(v) for k, v in kwargs.items()}, sort_keys=True)
  if memo not in _BUILT:
    _BUILT[memo] = build_fixed_splits(spec.task, spec.cfg, **kwargs)
  return _BUILT[memo]


def _make_dataset_fn(name: str) -> Callable[..., "tf.data.Dataset"]:
  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                 shard_info: Optional["seqio.ShardInfo"] = None) -> "tf.data.Dataset":
    # The shard in order j, shuffled inside blocks as the native source does.
    _check_split(split)
    fixed = ensure_built(name)
    index, num = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
    return shuffle_blocks(fixed.dataset(split, shard_index=index, num_shards=num),
                          shard_index=index, num_shards=num,
                          seed=seed if shuffle_files else None)
  return dataset_fn


def shuffle_blocks(ds: "tf.data.Dataset", *, shard_index: int, num_shards: int,
                   seed: Optional[int]) -> "tf.data.Dataset":
  """A shard's {inputs, targets} examples `ds`, in order, with the positions inside each
  block of `synthetic_streams.STREAM_BLOCK` permuted by
  `synthetic_streams.block_permutation` (the native source's order,
  tasks/fixed_split_source.py); `ds` unchanged when `seed` is None."""
  if seed is None:
    return ds
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def permutation(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return synthetic_streams.block_permutation(int(block), shard_index, num_shards,
                                               seed, int(rows))

  @tf.autograph.experimental.do_not_convert
  def shuffle(block: "tf.Tensor", examples: dict) -> dict:
    order = tf.numpy_function(permutation, [block, examples["inputs"].nrows()],
                              tf.int64, stateful=False)
    order.set_shape([None])
    return {k: tf.gather(v, order) for k, v in examples.items()}

  ds = ds.ragged_batch(synthetic_streams.STREAM_BLOCK).enumerate()
  ds = ds.map(shuffle, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.unbatch().map(tf.autograph.experimental.do_not_convert(_dense))


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r} of a fixed-split task; expected one of "
                     f"{SPLITS}")


def register_fixed(base: str, spec: FixedTaskSpec) -> "seqio.Task":
  """Registers `<base>_fixed`: the fixed splits of registered synthetic task `base`,
  with its output features and maximum lengths. Its source shuffles itself
  (`shuffle_blocks`; no SeqIO shuffle buffer), as the native source does."""
  import seqio  # pylint: disable=g-import-not-at-top
  from tasks import registry  # pylint: disable=g-import-not-at-top
  name = base + "_fixed"
  FIXED_TASKS[name] = spec
  task_metadata.set_max_lengths(name, dict(task_metadata.max_lengths(base)))
  base_task = seqio.get_mixture_or_task(base)
  return seqio.TaskRegistry.add(
      name,
      source=registry.IndexedSource(_make_dataset_fn(name), splits=SPLITS,
                                    shuffles_internally=True, native_twin=name),
      output_features=base_task.output_features,
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      metric_fns=[],
      shuffle_buffer_size=None,
  )


def fixed_specs() -> dict[str, FixedTaskSpec]:
  """(synthetic task name -> the spec of its `_fixed` twin), without seqio: every
  generator x simple layout (`catalog.SIMPLE_CONFIGS`) and LIME mode x LIME layout
  whose suffix has a `FIXED_SIZES` entry."""
  specs = {}
  for suffix, cfg in catalog.SIMPLE_CONFIGS.items():
    for task in generators.GENERATORS:
      specs[task + suffix] = FixedTaskSpec(task, cfg, None, suffix,
                                           batch_fn=generators.generate_batch)
  for suffix, cfg in catalog.LIME_CONFIGS.items():
    for mode in lime.LIME_MODES:
      specs[lime.lime_task_name(mode) + suffix] = FixedTaskSpec(
          mode, cfg, lime.generate_lime, suffix)
  return {n: s for n, s in specs.items() if s.sizes_key in FIXED_SIZES}


def fixed_spec(name: str) -> Optional[FixedTaskSpec]:
  """The spec of `_fixed` task `name` (registered, else from `fixed_specs`), or None."""
  if name in FIXED_TASKS:
    return FIXED_TASKS[name]
  return fixed_specs().get(name[:-len("_fixed")]) if name.endswith("_fixed") else None


def _synthetic_specs() -> dict[str, FixedTaskSpec]:
  """`fixed_specs` of the synthetic tasks `tasks.registry` registered with SeqIO."""
  import seqio  # pylint: disable=g-import-not-at-top
  from tasks import registry  # pylint: disable=g-import-not-at-top
  registered = set(seqio.TaskRegistry.names())
  return {n: s for n, s in fixed_specs().items()
          if task_metadata.has_max_lengths(n) and n in registered}


def _register_all() -> None:
  """Registers the `_fixed` twin of every registered synthetic task and mixture that
  has none yet (idempotent: also run for generators registered later)."""
  import seqio  # pylint: disable=g-import-not-at-top
  for base, spec in _synthetic_specs().items():
    if base + "_fixed" not in FIXED_TASKS:
      register_fixed(base, spec)
  # `<mixture>_fixed` for each mixture all of whose tasks now have a fixed twin.
  for mix_name in sorted(seqio.MixtureRegistry.names()):
    mix = seqio.get_mixture_or_task(mix_name)
    if mix_name.endswith("_fixed") or mix_name + "_fixed" in seqio.MixtureRegistry.names():
      continue
    if mix.tasks and all(t.name + "_fixed" in FIXED_TASKS for t in mix.tasks):
      seqio.MixtureRegistry.add(
          mix_name + "_fixed", [(t.name + "_fixed", mix.get_rate(t)) for t in mix.tasks])


def _seqio_importable() -> bool:
  try:
    import seqio  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


# The SeqIO tasks, where seqio is importable; without it this module still builds
# nothing but reads and verifies caches for the native sources (tasks/fixed_split_source.py).
if _seqio_importable():
  _register_all()
  generators.on_register(lambda name: _register_all())
