"""The cached fixed splits (`<task>_fixed`) as TensorFlow-free sources.

Registered for every `_fixed` task (`tasks.fixed_splits.specs.fixed_spec`) with
`synthpre_jax.data.native`, so `train.input_pipeline='auto'` reads them without
tensorflow or seqio. The cache is found, verified and (where TensorFlow is installed)
built by `specs.ensure_built`; its records are read with `synthpre_jax.data.tfrecord`.
Shard p of n is the split's examples j % n == p in order j (index-residue sharding, as
the SeqIO task's); shuffling permutes the positions inside each block of
`synthetic_streams.STREAM_BLOCK` shard positions with
`synthetic_streams.block_permutation`, the order the SeqIO task gives
(`tasks.fixed_splits.seqio_tasks.shuffle_blocks`), so both paths make the same
batches. A split is finite: `blocks` yields one epoch, and `shard_size` tells the
native pipeline where it ends.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterator, Optional

import numpy as np

from synthpre_jax.data import native, tfrecord
from tasks import synthetic_streams
from tasks.fixed_splits import records, specs
from tasks.synthetic.ragged import Batch

SUFFIX = specs.SUFFIX


class _FileCursor:
  """The examples of one round-robin file, read forward a record at a time."""

  def __init__(self, path: str, dtype: str, record_examples: int):
    self.path, self.dtype, self.record_examples = path, dtype, record_examples
    self.records: Optional[Iterator[bytes]] = None
    self.first = 0  # in-file position of buffer row 0
    self.buffer: Optional[Batch] = None

  def take(self, positions: np.ndarray) -> Batch:
    """The examples at in-file `positions` (increasing, each call past the last)."""
    if self.records is None:  # seek: skip whole records without reading them
      skip = int(positions[0]) // self.record_examples
      self.records = tfrecord.read_records(self.path, skip=skip)
      self.first = skip * self.record_examples
    need = int(positions[-1]) + 1
    parts = [] if self.buffer is None else [self.buffer]
    have = self.first + sum(len(p) for p in parts)
    while have < need:
      data = next(self.records, None)
      if data is None:
        raise ValueError(f"{self.path}: ends after {have} examples, but its manifest "
                         f"lists at least {need}; rebuild the cache")
      block = records.deserialize_block(data, self.dtype)[1]
      parts.append(block)
      have += len(block)
    buffer = parts[0] if len(parts) == 1 else Batch.concatenate(parts)
    out = buffer.take(positions - self.first)
    self.buffer = buffer.slice(need - self.first, len(buffer))
    self.first = need
    return out


@dataclasses.dataclass(frozen=True)
class FixedSplitSource:
  """A registered `_fixed` task as a `native.NativeSource`."""

  name: str
  base: synthetic_streams.SyntheticStream  # the on-the-fly task it was drawn from
  splits: tuple[str, ...] = ("train", "validation")

  @property
  def vocabulary(self) -> Any:
    return self.base.vocabulary

  def max_lengths(self) -> dict[str, int]:
    return self.base.max_lengths()

  def _fixed(self) -> Any:
    return specs.ensure_built(self.name)

  def shard_size(self, split: str, *, shard_index: int, num_shards: int) -> int:
    """Examples in shard `shard_index` of `num_shards` of `split` (one epoch)."""
    return len(range(shard_index, self._fixed().num_examples[split], num_shards))

  def blocks(self, split: str, *, shard_index: int, num_shards: int,
             seed: Optional[int], start: int) -> Iterator[Batch]:
    """One epoch of the shard from position `start`, in blocks of STREAM_BLOCK
    positions (each permuted unless `seed` is None)."""
    fixed = self._fixed()  # ValueError on an unknown split
    files = fixed.files(split)
    size = self.shard_size(split, shard_index=shard_index, num_shards=num_shards)
    params = fixed.manifest["params"]
    cursors = [_FileCursor(f, params["token_dtype"], params["record_examples"])
               for f in files]
    step = synthetic_streams.STREAM_BLOCK
    first, skip = divmod(int(start), step)
    for block in itertools.count(first):
      lo, hi = block * step, min((block + 1) * step, size)
      if lo >= hi:
        return
      order = synthetic_streams.block_permutation(block, shard_index, num_shards, seed,
                                                  hi - lo)
      if skip:
        order = order[skip:]
        skip = 0
      j = shard_index + num_shards * (lo + np.sort(order))  # split example indices
      file_of, position = j % len(files), j // len(files)
      parts, rows = [], []
      for f in np.unique(file_of).tolist():
        mine = np.flatnonzero(file_of == f)
        parts.append(cursors[f].take(position[mine]))
        rows.append(mine)
      got = parts[0] if len(parts) == 1 else Batch.concatenate(parts)
      # got row k is sorted row rows[k]; sorted row r is shard position lo + sorted[r]
      at = np.empty(len(j), np.int64)
      at[np.concatenate(rows)] = np.arange(len(j))
      yield got.take(at[np.searchsorted(np.sort(order), order)])


def lookup(name: str) -> Optional[FixedSplitSource]:
  """The native source of `_fixed` task `name`, None if it is not one."""
  if not name.endswith(SUFFIX):
    return None
  base = synthetic_streams.lookup(name[:-len(SUFFIX)])
  if base is None:
    return None
  return None if specs.fixed_spec(name) is None else FixedSplitSource(name, base)


native.register_lookup(lookup)
