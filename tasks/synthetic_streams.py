"""The on-the-fly synthetic streams as TensorFlow-free sources: order, shuffle, vocabulary.

One definition serves both input paths: `tasks/registry.py` (SeqIO) and the native
path (`synthpre_jax.data.native`, registered here for every catalog task). Example i
of a split is `generate(task, cfg, split, DATA_SEED, i)`; shard p of n holds the
indices i % n == p. Its examples are drawn in blocks of `STREAM_BLOCK` shard positions;
shuffling (training) permutes the positions inside each block with a numpy
permutation seeded by (seed, shard, shards, block), so it is exact without tf.data.
numpy only (no seqio, no TensorFlow).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterator, Optional

import numpy as np

from synthpre_jax.data import native
from tasks.synthetic import catalog
from tasks.synthetic.config import EOS_ID

# The fixed seed of every synthetic stream. Changing it changes all the data.
DATA_SEED = 0
SPLITS = ("train", "validation")
# Shard positions per generator call (and per shuffle window): large enough that the
# compiled generators run at full speed, small enough to start quickly.
STREAM_BLOCK = 512


def block_indices(block: int, shard_index: int, num_shards: int, seed: Optional[int],
                  size: int) -> np.ndarray:
  """The example indices (int64) of block `block` (of `size`, normally STREAM_BLOCK)
  of a shard, in stream order: positions block*size .. (block+1)*size - 1 of shard `shard_index` of `num_shards`,
  permuted by `np.random.default_rng([seed, shard_index, num_shards, block])` unless
  `seed` is None; position j is example index shard_index + num_shards * j."""
  offsets = block_permutation(block, shard_index, num_shards, seed, size)
  return shard_index + num_shards * (int(block) * size + offsets)


def block_permutation(block: int, shard_index: int, num_shards: int,
                      seed: Optional[int], size: int) -> np.ndarray:
  """The shuffle of one block of a shard (the streams' and the fixed splits'): int64
  offsets 0..size-1 in the order read, `np.random.default_rng([seed, shard_index,
  num_shards, block]).permutation(size)`, or in order when `seed` is None."""
  if seed is None:
    return np.arange(size, dtype=np.int64)
  rng = np.random.default_rng([int(seed), int(shard_index), int(num_shards), int(block)])
  return rng.permutation(size).astype(np.int64)


def vocab_layout(cfg: Any) -> dict[str, Any]:
  """The id layout a synthetic vocabulary records (the config minus what only restricts
  which examples are drawn: the sampled lengths and the ECA gzip band)."""
  return {k: v for k, v in dataclasses.asdict(cfg).items()
          if k not in ("min_len", "max_len", "gzip_min_ratio", "gzip_max_ratio")}


class SyntheticLayout:
  """A synthetic task's vocabulary without seqio: the same identity as the SeqIO
  task's `registry.SyntheticVocabulary` (`vocabulary.identity_of` reads `layout`)."""

  def __init__(self, cfg: Any):
    self.vocab_size = int(cfg.vocab_size)
    self.eos_id = EOS_ID
    self.layout = vocab_layout(cfg)


@dataclasses.dataclass(frozen=True)
class SyntheticStream:
  """A catalog task (`tasks.synthetic.catalog.SyntheticTask`) as a `NativeSource`."""

  entry: catalog.SyntheticTask
  splits: tuple[str, ...] = SPLITS

  @property
  def vocabulary(self) -> SyntheticLayout:
    return SyntheticLayout(self.entry.cfg)

  def max_lengths(self) -> dict[str, int]:
    return self.entry.max_lengths()

  def blocks(self, split: str, *, shard_index: int, num_shards: int,
             seed: Optional[int], start: int) -> Iterator[Any]:
    """Endless ragged blocks (`ragged.Batch`) of the shard from position `start`."""
    if split not in self.splits:
      raise ValueError(f"Synthetic task {self.entry.name!r} has splits {self.splits}, "
                       f"not {split!r}")
    first, skip = divmod(int(start), STREAM_BLOCK)
    e = self.entry
    for block in itertools.count(first):
      indices = block_indices(block, shard_index, num_shards, seed, STREAM_BLOCK)
      batch = e.generate_batch(e.task, e.cfg, split, DATA_SEED, indices)
      yield batch.slice(skip, len(batch)) if skip else batch
      skip = 0


def lookup(name: str) -> Optional[SyntheticStream]:
  """The native source of synthetic task `name`, None if it is not one."""
  entry = catalog.synthetic_tasks().get(name)
  return None if entry is None else SyntheticStream(entry)


native.register_lookup(lookup)
