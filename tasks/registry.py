"""SeqIO registrations of the synthetic tasks: `<task>` (paper ids) and `<task>_tiny`.

Each task is an infinite, deterministic stream: example i of a split is
`generate(task, cfg, split, DATA_SEED, i)`, independent of SeqIO's shuffle seed, so the
data is a pure function of the index and a shard is just a residue class of indices.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import numpy as np
import seqio
import tensorflow as tf

from tasks.synthetic import catalog, generators, lime
from tasks.synthetic.config import EOS_ID, SyntheticConfig

# The fixed seed of every synthetic stream. Changing it changes all the data.
DATA_SEED = 0
SPLITS = ("train", "validation")

# (suffix of the task name, token layout) of each registered variant.
CONFIGS: dict[str, SyntheticConfig] = catalog.SIMPLE_CONFIGS

# Longest possible inputs/targets (EOS included) per registered task, for
# `synthpre_jax.data.pipeline.check_feature_lengths`.
TASK_MAX_LENGTHS: dict[str, dict[str, int]] = {}


class IndexedSource(seqio.FunctionDataSource):
  """A FunctionDataSource that shards itself: `dataset_fn` also takes `shard_info`.

  seqio 0.0.20's FunctionDataSource refuses a `shard_info` and reports no arbitrary
  sharding, so a Task would generate every example on every host and keep 1/n of them
  (`ds.shard`). Here each host generates only its own indices i % n == shard index.
  """

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None,
                  shard_info: Optional[seqio.ShardInfo] = None, *,
                  sequence_length: Optional[Mapping[str, int]] = None,
                  use_cached: bool = False, num_epochs: Optional[int] = 1
                  ) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # unused, as in FunctionDataSource
    return self._dataset_fn(split=split, shuffle_files=shuffle, seed=seed,
                            shard_info=shard_info)


def make_dataset_fn(task: str, cfg: SyntheticConfig,
                    generate: Callable[..., tuple] = generators.generate
                    ) -> Callable[..., tf.data.Dataset]:
  """The dataset_fn of one synthetic task: an infinite stream of {inputs, targets}."""

  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                 shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
    del shuffle_files, seed  # the data is a pure function of (split, index)
    index, num_shards = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)

    def gen(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
      return generate(task, cfg, split, DATA_SEED, int(i))

    def to_features(i: tf.Tensor) -> dict[str, tf.Tensor]:
      inputs, targets = tf.numpy_function(gen, [i], [tf.int32, tf.int32], stateful=False)
      inputs.set_shape([None])
      targets.set_shape([None])
      return {"inputs": inputs, "targets": targets}

    ds = tf.data.Dataset.counter(start=index, step=num_shards, dtype=tf.int64)
    return ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  return dataset_fn


def register_synthetic(task: str, name: str, cfg: Any, *,
                       generate: Callable[..., tuple] = generators.generate,
                       max_lengths: Callable[..., dict] = generators.max_lengths
                       ) -> seqio.Task:
  """Registers `generate(task, cfg, ...)` as SeqIO task `name` (EOS appended)."""
  vocab = seqio.PassThroughVocabulary(size=cfg.vocab_size, eos_id=EOS_ID)
  features = {k: seqio.Feature(vocab, add_eos=True, dtype=tf.int32)
              for k in ("inputs", "targets")}
  TASK_MAX_LENGTHS[name] = max_lengths(task, cfg)
  return seqio.TaskRegistry.add(
      name,
      source=IndexedSource(make_dataset_fn(task, cfg, generate), splits=SPLITS),
      output_features=features,
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      metric_fns=[],
  )


# Every generator x id layout, from the TF-free catalog (the one list of them).
for _entry in catalog.synthetic_tasks().values():
  register_synthetic(_entry.task, _entry.name, _entry.cfg, generate=_entry.generate,
                     max_lengths=lambda task, cfg, e=_entry: e.max_lengths())

# The paper's 18 "simple" tasks in equal parts (spec order), for each registered layout.
SIMPLE_TASKS = (
    "identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
    "last_token", "length", "longest_word", "count", "search", "delete", "sort",
    "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1")
seqio.MixtureRegistry.add("simple_tasks", list(SIMPLE_TASKS), default_rate=1.0)
seqio.MixtureRegistry.add("simple_tasks_tiny", [t + "_tiny" for t in SIMPLE_TASKS],
                          default_rate=1.0)

# LIME (Wu et al. 2021): the mixture lime[_tiny] of lime_{deduct,abduct,induct}.
LIME_CONFIGS: dict[str, SyntheticConfig] = catalog.LIME_CONFIGS
for _suffix in LIME_CONFIGS:
  seqio.MixtureRegistry.add(
      "lime" + _suffix, [lime.lime_task_name(m) + _suffix for m in lime.LIME_MODES],
      default_rate=1.0)
