"""The fixed splits' files: record format, the tf.data reader and the TF-free decoder.

A split is `num_files` TFRecord files; kept example j belongs to file j % num_files
(round robin), and a file's examples, in order, are packed `RECORD_EXAMPLES` to a
record: a `tf.train.Example` of five little-endian bytes features (`FEATURES`):
`index` (int64 generator indices), `input_lengths`, `target_lengths` (int32),
`inputs`, `targets` (the block's ids concatenated, no EOS; uint16 when the vocabulary
has <= 65,536 ids, else int32: the manifest's `token_dtype`). docs/tasks.md explains
the choice.
"""
from __future__ import annotations

import pathlib
import struct
from typing import Any, Optional, Sequence

import numpy as np

from synthpre_jax.data import tfrecord
from tasks.synthetic.ragged import Batch

# Bump when the file layout or record format changes. 2: blocks of examples per record.
FORMAT_VERSION = 2
SPLITS = ("train", "validation")
RECORD_EXAMPLES = 1_024  # examples per TFRecord record (a block)
FEATURES = ("index", "input_lengths", "target_lengths", "inputs", "targets")

_TOKEN_DTYPES = {"uint16": np.dtype("<u2"), "int32": np.dtype("<i4")}


def token_dtype(cfg: Any) -> str:
  """"uint16" if every id of cfg's vocabulary fits in 16 bits, else "int32"."""
  vocab = getattr(cfg, "vocab_size", None)
  return "uint16" if isinstance(vocab, int) and 0 < vocab <= 1 << 16 else "int32"


def serialize_block(index: np.ndarray, block: Batch, dtype: str) -> bytes:
  """One record: a block of examples (see the module docstring). Needs TensorFlow."""
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


def deserialize_block(data: bytes, dtype: str) -> tuple[np.ndarray, Batch]:
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


def dense(example: dict) -> dict:
  """An example whose ragged rows (one record's block, unbatched) are made dense."""
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
  return ds.map(tf.autograph.experimental.do_not_convert(dense))


def first_record(path: pathlib.Path) -> Optional[bytes]:
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


def check_split(split: str) -> None:
  """Raises ValueError unless `split` is one of `SPLITS`."""
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r} of a fixed-split task; expected one of "
                     f"{SPLITS}")
