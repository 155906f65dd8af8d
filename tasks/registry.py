"""SeqIO registrations of the synthetic tasks: `<task>` (paper ids) and `<task>_tiny`.

Each task is an infinite, deterministic stream: example i of a split is
`generate(task, cfg, split, DATA_SEED, i)`, independent of SeqIO's shuffle seed, so the
data is a pure function of the index and a shard is just a residue class of indices.
The simple tasks are drawn in blocks by their compiled `generate_batch` (the same
examples), in parallel tf.data map calls ahead of the consumer. Order, shuffle and
vocabulary layout are defined TF-free in `tasks/synthetic_streams.py`, which the native
(TensorFlow-free) input path reads too: shuffling permutes the indices inside each
block (numpy, seeded), not a tf.data shuffle buffer, so both paths give the same
batches bit for bit.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import task_metadata
from tasks import synthetic_streams
from tasks.synthetic import catalog, families, generators
from tasks.synthetic.family import per_example_batch_fn
from tasks.synthetic.config import EOS_ID, SyntheticConfig
from tasks.synthetic.ragged import Batch

# The fixed seed of every synthetic stream (changing it changes all the data), splits.
DATA_SEED = synthetic_streams.DATA_SEED
SPLITS = synthetic_streams.SPLITS

# (suffix of the task name, token layout) of each registered variant.
CONFIGS: dict[str, SyntheticConfig] = catalog.SIMPLE_CONFIGS

class IndexedSource(seqio.FunctionDataSource):
  """A FunctionDataSource that shards itself: `dataset_fn` also takes `shard_info`.

  seqio 0.0.20's FunctionDataSource refuses a `shard_info` and reports no arbitrary
  sharding, so a Task would generate every example on every host and keep 1/n of them
  (`ds.shard`). Here each host generates only its own indices i % n == shard index.
  `shuffles_internally=True`: `dataset_fn` shuffles itself (given `shuffle_files` and
  `seed`), so the Task may be registered with `shuffle_buffer_size=None`.
  `native_twin`: the name of the native (TF-free) source that yields the same batches;
  the input path's 'auto' uses that source only for a Task that names it.
  """

  def __init__(self, dataset_fn: Callable[..., tf.data.Dataset], splits: Any, *,
               shuffles_internally: bool = False, native_twin: Optional[str] = None,
               **kwargs: Any):
    super().__init__(dataset_fn, splits=splits, **kwargs)
    self._shuffles_internally = shuffles_internally
    self.native_twin = native_twin

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  @property
  def performs_internal_shuffling(self) -> bool:
    return self._shuffles_internally

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None,
                  shard_info: Optional[seqio.ShardInfo] = None, *,
                  sequence_length: Optional[Mapping[str, int]] = None,
                  use_cached: bool = False, num_epochs: Optional[int] = 1
                  ) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # unused, as in FunctionDataSource
    return self._dataset_fn(split=split, shuffle_files=shuffle, seed=seed,
                            shard_info=shard_info)




@tf.autograph.experimental.do_not_convert
def _dense_features(ex: dict) -> dict:
  """Unbatched rows of ragged blocks have a ragged (rank-0) spec: make them Tensors."""
  return {k: v.flat_values if isinstance(v, tf.RaggedTensor) else v for k, v in ex.items()}


def make_dataset_fn(task: str, cfg: SyntheticConfig,
                    generate: Callable[..., tuple] = generators.generate,
                    generate_batch: Optional[Callable[..., Batch]] = None
                    ) -> Callable[..., tf.data.Dataset]:
  """The dataset_fn of one synthetic task: an infinite stream of {inputs, targets}.

  Example i is `generate(task, cfg, split, DATA_SEED, i)`; shard p of n holds the
  indices i % n == p, in order, or (shuffle_files with a seed) permuted inside each
  block (`synthetic_streams.block_indices`). They are drawn a block at a time
  with `generate_batch` (default: `generate` per example) inside tf.numpy_function,
  several blocks in parallel and ahead of the consumer, then unbatched.
  """
  batch_fn = generate_batch or per_example_batch_fn(generate)

  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                 shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
    index, num_shards = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
    shuffle_seed = seed if shuffle_files else None

    def gen(block: np.ndarray):
      indices = synthetic_streams.block_indices(int(block), index, num_shards,
                                                shuffle_seed,
                                                synthetic_streams.STREAM_BLOCK)
      b = batch_fn(task, cfg, split, DATA_SEED, indices)
      return (b.inputs.astype(np.int32), b.input_lengths.astype(np.int64),
              b.targets.astype(np.int32), b.target_lengths.astype(np.int64))

    @tf.autograph.experimental.do_not_convert
    def to_block(block: tf.Tensor) -> dict[str, tf.RaggedTensor]:
      inputs, in_len, targets, tg_len = tf.numpy_function(
          gen, [block], [tf.int32, tf.int64, tf.int32, tf.int64], stateful=False)
      for t in (inputs, in_len, targets, tg_len):
        t.set_shape([None])
      return {"inputs": tf.RaggedTensor.from_row_lengths(inputs, in_len),
              "targets": tf.RaggedTensor.from_row_lengths(targets, tg_len)}

    ds = tf.data.Dataset.counter(start=0, dtype=tf.int64)
    ds = ds.map(to_block, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(2).unbatch().map(_dense_features)

  return dataset_fn


class SyntheticVocabulary(seqio.PassThroughVocabulary):
  """Token ids used as they are, carrying the synthetic id layout they follow, so a
  checkpoint can record which layout its embedding rows belong to."""

  def __init__(self, cfg: Any):
    super().__init__(size=cfg.vocab_size, eos_id=EOS_ID)
    self.layout = synthetic_streams.vocab_layout(cfg)


def register_synthetic(task: str, name: str, cfg: Any, *,
                       generate: Callable[..., tuple] = generators.generate,
                       max_lengths: Callable[..., dict] = generators.max_lengths,
                       generate_batch: Optional[Callable[..., Batch]] = None
                       ) -> seqio.Task:
  """Registers `generate(task, cfg, ...)` as SeqIO task `name` (EOS appended), drawn
  in blocks with `generate_batch` when given (see `make_dataset_fn`). The source
  shuffles itself (no tf.data shuffle buffer), as the native path does."""
  vocab = SyntheticVocabulary(cfg)
  features = {k: seqio.Feature(vocab, add_eos=True, dtype=tf.int32)
              for k in ("inputs", "targets")}
  task_metadata.set_max_lengths(name, max_lengths(task, cfg))
  return seqio.TaskRegistry.add(
      name,
      source=IndexedSource(make_dataset_fn(task, cfg, generate, generate_batch),
                           splits=SPLITS, shuffles_internally=True, native_twin=name),
      output_features=features,
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      metric_fns=[],
      shuffle_buffer_size=None,
  )


def register_catalog() -> list[str]:
  """Registers every catalog task not yet in SeqIO's registry (idempotent); returns the
  names registered. Raises ValueError, registering nothing, if one cannot be sampled."""
  entries = [e for e in catalog.synthetic_tasks().values()
             if e.name not in seqio.TaskRegistry.names()]
  for entry in entries:
    entry.max_lengths()  # checks every config before anything is registered
  for entry in entries:
    register_synthetic(entry.task, entry.name, entry.cfg, generate=entry.generate,
                       max_lengths=lambda task, cfg, e=entry: e.max_lengths(),
                       generate_batch=entry.generate_batch)
  return [e.name for e in entries]


# Every generator x id layout, from the TF-free catalog (the one list of them), now
# and whenever a generator is registered later (from a user's module).
register_catalog()
generators.on_register(lambda name: register_catalog())

# Every family's mixtures (the paper's 18 simple tasks, LIME's three modes; equal parts).
SIMPLE_TASKS = families.SIMPLE_TASKS
LIME_CONFIGS: dict[str, SyntheticConfig] = catalog.LIME_CONFIGS
for _name, _tasks in catalog.mixtures().items():
  seqio.MixtureRegistry.add(_name, _tasks, default_rate=1.0)
