"""SeqIO registration of the nonsense-summarization task `nonsense_summary` (text).

The (document, summary) pairs come from the TF-free generator
`tasks/synthetic/nonsense_summary.py` (rules and sizes in its docstring): example i of a
split is `generate(split, DATA_SEED, i)`, so a host's shard is the residue class of
indices i % num_shards == shard index (the `IndexedSource` of tasks/registry.py). Splits
are finite (train 100,000 / validation 5,000 / test 5,000); the training pipeline
repeats the train split (`get_batches(num_epochs=None)` -> seqio `ds.repeat`).

Features go through the project's text vocabulary, `tasks.text_vocab.get_vocabulary()`
(the shipped 8k SentencePiece model unless $SYNTHPRE_VOCAB_PATH says otherwise): raw
text features `inputs` ("summarize: " + document) and `targets` (the summary) are
tokenized, EOS appended. Metrics: exact match and ROUGE-1/2/L/Lsum
(synthpre_jax/metrics.py) of the decoded summaries.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax import metrics
from tasks import text_vocab
from tasks.registry import TASK_MAX_LENGTHS, IndexedSource
from tasks.synthetic import nonsense_summary as ns

TASK_NAME = ns.TASK_NAME
DATA_SEED = ns.DATA_SEED

# Longest inputs / targets (EOS included) over ALL 110,000 examples of the three
# splits with the shipped vocabulary (tasks/vocab/synthpre_en_8k.model), measured once
# by tokenizing every example (means: inputs 313, targets 133 tokens; 99th percentile
# 455 / 317). Registered for check_feature_lengths only when that vocabulary is in use
# (other vocabularies tokenize differently). Re-measure if the generator changes (the
# test pinning the data fails then). TASK_FEATURE_LENGTHS {"inputs": 576,
# "targets": 512} holds every example.
MAX_LENGTHS_SHIPPED_VOCAB = {"inputs": 520, "targets": 476}


def _dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
  """This shard's examples of `split` as {inputs, targets} text, in index order."""
  del shuffle_files, seed  # the data is a pure function of (split, index)
  if split not in ns.SPLIT_SIZES:
    raise ValueError(f"Unknown split {split!r} for {TASK_NAME}; "
                     f"known: {sorted(ns.SPLIT_SIZES)}")
  index, num_shards = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)

  def gen(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inputs, targets = ns.generate(split, DATA_SEED, int(i))
    return np.array(inputs.encode("utf-8")), np.array(targets.encode("utf-8"))

  def to_features(i: tf.Tensor) -> Mapping[str, tf.Tensor]:
    inputs, targets = tf.numpy_function(gen, [i], [tf.string, tf.string], stateful=False)
    inputs.set_shape([])
    targets.set_shape([])
    return {"inputs": inputs, "targets": targets}

  ds = tf.data.Dataset.range(index, ns.SPLIT_SIZES[split], num_shards)
  return ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def register_nonsense_summary(name: str = TASK_NAME,
                              vocabulary: Optional[seqio.Vocabulary] = None
                              ) -> seqio.Task:
  """Registers the task as `name` with `vocabulary` (default: the text vocabulary)."""
  uses_shipped = vocabulary is None and (
      text_vocab.resolve_vocab_path() == text_vocab.DEFAULT_VOCAB_PATH)
  vocab = vocabulary if vocabulary is not None else text_vocab.get_vocabulary()
  features = {k: seqio.Feature(vocab, add_eos=True, dtype=tf.int32)
              for k in ("inputs", "targets")}
  if uses_shipped and all(MAX_LENGTHS_SHIPPED_VOCAB.values()):
    TASK_MAX_LENGTHS[name] = dict(MAX_LENGTHS_SHIPPED_VOCAB)
  return seqio.TaskRegistry.add(
      name,
      source=IndexedSource(_dataset_fn, splits=tuple(ns.SPLIT_SIZES),
                           num_input_examples=dict(ns.SPLIT_SIZES)),
      output_features=features,
      preprocessors=[seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      metric_fns=[metrics.exact_match, metrics.rouge],
  )


register_nonsense_summary()
