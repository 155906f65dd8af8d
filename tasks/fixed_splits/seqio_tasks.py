"""The `<task>_fixed` SeqIO tasks and `<mixture>_fixed` mixtures (needs seqio).

`register_all` registers the twin of every synthetic task registered with SeqIO
(`tasks/registry.py`) that has a fixed-split spec (`tasks/fixed_splits/specs.py`), and
of every mixture all of whose tasks have one; it runs on import and again whenever a
generator is registered later. Each task reads its cache (`specs.ensure_built`),
index-residue sharded and, when shuffling, permuted inside blocks exactly as the native
source (`tasks/fixed_split_source.py`) does.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import task_metadata
from tasks import registry, synthetic_streams
from tasks.fixed_splits import records
from tasks.fixed_splits import specs
from tasks.synthetic import generators


def _make_dataset_fn(name: str) -> Callable[..., tf.data.Dataset]:
  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                 shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
    # The shard in order j, shuffled inside blocks as the native source does.
    records.check_split(split)
    fixed = specs.ensure_built(name)
    index, num = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
    return shuffle_blocks(fixed.dataset(split, shard_index=index, num_shards=num),
                          shard_index=index, num_shards=num,
                          seed=seed if shuffle_files else None)
  return dataset_fn


def shuffle_blocks(ds: tf.data.Dataset, *, shard_index: int, num_shards: int,
                   seed: Optional[int]) -> tf.data.Dataset:
  """A shard's {inputs, targets} examples `ds`, in order, with the positions inside each
  block of `synthetic_streams.STREAM_BLOCK` permuted by
  `synthetic_streams.block_permutation` (the native source's order,
  tasks/fixed_split_source.py); `ds` unchanged when `seed` is None."""
  if seed is None:
    return ds

  def permutation(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return synthetic_streams.block_permutation(int(block), shard_index, num_shards,
                                               seed, int(rows))

  @tf.autograph.experimental.do_not_convert
  def shuffle(block: tf.Tensor, examples: dict) -> dict:
    order = tf.numpy_function(permutation, [block, examples["inputs"].nrows()],
                              tf.int64, stateful=False)
    order.set_shape([None])
    return {k: tf.gather(v, order) for k, v in examples.items()}

  ds = ds.ragged_batch(synthetic_streams.STREAM_BLOCK).enumerate()
  ds = ds.map(shuffle, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.unbatch().map(tf.autograph.experimental.do_not_convert(records.dense))


def register_fixed(base: str, spec: specs.FixedTaskSpec) -> seqio.Task:
  """Registers `<base>_fixed`: the fixed splits of registered synthetic task `base`,
  with its output features and maximum lengths. Its source shuffles itself
  (`shuffle_blocks`; no SeqIO shuffle buffer), as the native source does."""
  name = base + specs.SUFFIX
  specs.FIXED_TASKS[name] = spec
  task_metadata.set_max_lengths(name, dict(task_metadata.max_lengths(base)))
  base_task = seqio.get_mixture_or_task(base)
  return seqio.TaskRegistry.add(
      name,
      source=registry.IndexedSource(_make_dataset_fn(name), splits=records.SPLITS,
                                    shuffles_internally=True, native_twin=name),
      output_features=base_task.output_features,
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      metric_fns=[],
      shuffle_buffer_size=None,
  )


def _synthetic_specs() -> dict[str, specs.FixedTaskSpec]:
  """`specs.fixed_specs` of the synthetic tasks registered with SeqIO."""
  registered = set(seqio.TaskRegistry.names())
  return {n: s for n, s in specs.fixed_specs().items()
          if task_metadata.has_max_lengths(n) and n in registered}


def register_all() -> None:
  """Registers the `_fixed` twin of every registered synthetic task and mixture that
  has none yet (idempotent: also run for generators registered later)."""
  for base, spec in _synthetic_specs().items():
    if base + specs.SUFFIX not in specs.FIXED_TASKS:
      register_fixed(base, spec)
  # `<mixture>_fixed` for each mixture all of whose tasks now have a fixed twin.
  for mix_name in sorted(seqio.MixtureRegistry.names()):
    mix = seqio.get_mixture_or_task(mix_name)
    if mix_name.endswith("_fixed") or mix_name + "_fixed" in seqio.MixtureRegistry.names():
      continue
    if mix.tasks and all(t.name + "_fixed" in specs.FIXED_TASKS for t in mix.tasks):
      seqio.MixtureRegistry.add(
          mix_name + "_fixed", [(t.name + "_fixed", mix.get_rate(t)) for t in mix.tasks])


register_all()
generators.on_register(lambda name: register_all())
