"""SeqIO tasks over (inputs, targets) text pairs held in memory, tokenized once per process.

A generator-defined or shipped task (SCAN, WordNet) has its text in Python lists. Its
source tokenizes each split once per process (as seqio's `tokenize` would, with the
text kept as `*_pretokenized`), so epochs after the first cost no tokenization
(benchmarks/input_pipeline.py measured the per-epoch re-tokenization as the cost).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from tasks.downstream import text_features

# text_fn(split) -> (inputs texts, targets texts)
TextFn = Callable[[str], tuple[Sequence[str], Sequence[str]]]

# (task name, split, id(vocabulary)) -> (vocabulary, columns); holding the vocabulary
# keeps its id unique for as long as the entry lives.
_TOKENIZED: dict[tuple[str, str, int], tuple[Any, dict]] = {}
_TOKENIZED_LOCK = threading.Lock()


def tokenized_split(name: str, split: str, text_fn: TextFn, vocabulary: Any) -> dict:
  """Columns of `split`: inputs / targets text (`*_pretokenized`) and their ids without
  EOS (ragged int32), tokenized by `vocabulary.encode_tf`; cached per process."""
  key = (name, split, id(vocabulary))
  with _TOKENIZED_LOCK:
    if key not in _TOKENIZED:
      inputs, targets = text_fn(split)
      columns = {"inputs_pretokenized": tf.constant(list(inputs), tf.string),
                 "targets_pretokenized": tf.constant(list(targets), tf.string)}
      for k in ("inputs", "targets"):
        columns[k] = tf.cast(vocabulary.encode_tf(columns[f"{k}_pretokenized"]), tf.int32)
      _TOKENIZED[key] = (vocabulary, columns)
    return _TOKENIZED[key][1]


def make_dataset_fn(name: str, text_fn: TextFn, vocabulary: Any):
  """A seqio.FunctionDataSource dataset_fn over the cached columns of `name`."""
  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None):
    del shuffle_files, seed  # one in-memory "file"; Task.get_dataset shuffles examples

    @tf.autograph.experimental.do_not_convert
    def dense(ex: dict) -> dict:  # a ragged column's rows come as rank-0 ragged specs
      return {k: v.flat_values if isinstance(v, tf.RaggedTensor) else v
              for k, v in ex.items()}

    columns = tokenized_split(name, split, text_fn, vocabulary)
    return tf.data.Dataset.from_tensor_slices(columns).map(dense)
  return dataset_fn


def register_task(name: str, text_fn: TextFn, *, num_examples: Mapping[str, int],
                  metric_fns: Sequence[Callable], vocabulary: Any = None) -> None:
  """Registers SeqIO task `name` (idempotent): text tokenized with the project's text
  vocabulary (default) plus EOS, splits = the keys of `num_examples`, `metric_fns` on
  postprocessed text."""
  if name in seqio.TaskRegistry.names():
    return
  vocabulary = vocabulary if vocabulary is not None else text_features.TEXT_VOCABULARY
  text_features.DOWNSTREAM_TASK_NAMES.add(name)
  source = seqio.FunctionDataSource(
      make_dataset_fn(name, text_fn, vocabulary), splits=tuple(num_examples),
      num_input_examples=dict(num_examples))
  # The text is fixed for the process and gives one example per record: evaluation may
  # keep the examples it read (synthpre_jax.data.examples) and a subset's length report
  # may read its rows of the base split's (length_report.length_report).
  source.immutable_examples = True
  seqio.TaskRegistry.add(
      name,
      source=source,
      output_features=text_features.text_features(vocabulary),
      preprocessors=[seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=text_features.postprocess_text,
      metric_fns=list(metric_fns),
  )
