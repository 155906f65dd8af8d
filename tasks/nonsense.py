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
(synthpre_jax/evaluation/metrics.py) of the decoded summaries.

Maximum lengths (`task_metadata.max_lengths(name)`, which
`synthpre_jax.data.pipeline.check_feature_lengths` reads to refuse or warn about
truncation) are registered for every vocabulary:
- the shipped one (recognized by its model bytes): the pinned
  `MAX_LENGTHS_SHIPPED_VOCAB`;
- any other (T5's, a user's): a `MeasuredMaxLengths`, which tokenizes all 110,000
  examples on its first read (under a minute, then kept for the process) and caches
  the result in `<cache dir>/nonsense_max_lengths/<vocabulary>-<data>.json` (the
  fixed splits' `tasks.fixed_splits.cache.data_dir()`), keyed by the SHA-256 of the SentencePiece model and `data_fingerprint` (split sizes
  and sample examples), so another vocabulary, or a generator change that shows in the
  sample, is measured anew (bump CACHE_VERSION for any other change). Registration (at
  import) measures nothing; copying the entry (a subset task) is a first read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from typing import Iterator, Mapping, Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import task_metadata
from synthpre_jax.evaluation import metrics
from tasks import text_vocab
from tasks.fixed_splits import cache as fixed_cache
from tasks.registry import IndexedSource
from tasks.synthetic import nonsense_summary as ns

TASK_NAME = ns.TASK_NAME
DATA_SEED = ns.DATA_SEED

log = logging.getLogger(__name__)

# Longest inputs / targets (EOS included) over ALL 110,000 examples of the three
# splits with the shipped vocabulary (tasks/vocab/synthpre_en_8k.model);
# `measure_max_lengths` reproduces them (docs/tasks.md has the length distribution).
# Other vocabularies are measured (module docstring). Re-measure if the generator
# changes (the test pinning the data fails then).
MAX_LENGTHS_SHIPPED_VOCAB = {"inputs": 520, "targets": 476}
FEATURES = ("inputs", "targets")
# Folder of the measured lengths, under tasks.fixed_splits.cache.data_dir().
CACHE_FOLDER = "nonsense_max_lengths"
# Bump when the measurement or the cache file's format changes.
CACHE_VERSION = 1


# --- maximum lengths for any vocabulary ----------------------------------------------

def vocabulary_fingerprint(vocabulary: seqio.Vocabulary) -> Optional[str]:
  """SHA-256 (hex) of a SentencePiece vocabulary's model bytes; None for others."""
  model = getattr(vocabulary, "sp_model", None)
  return hashlib.sha256(model).hexdigest() if isinstance(model, bytes) else None


def data_fingerprint() -> str:
  """SHA-256 (hex) of CACHE_VERSION, the split sizes and the first and last examples
  of each split: part of the cache key."""
  h = hashlib.sha256(repr((CACHE_VERSION, DATA_SEED, sorted(ns.SPLIT_SIZES.items())))
                     .encode())
  for split in ns.SPLIT_SIZES:
    for i in (0, 1, 2, ns.SPLIT_SIZES[split] - 1):
      h.update(repr(ns.generate(split, DATA_SEED, i)).encode())
  return h.hexdigest()


def measure_max_lengths(vocabulary: seqio.Vocabulary) -> dict[str, int]:
  """Longest tokenized inputs / targets, EOS included, over every example of every split.

  Tokenizes `ns.SPLIT_SIZES` examples with `vocabulary.encode` (under a minute for the
  110,000, on one core).
  """
  longest = dict.fromkeys(FEATURES, 0)
  for split, size in ns.SPLIT_SIZES.items():
    for i in range(size):
      for feature, text in zip(FEATURES, ns.generate(split, DATA_SEED, i)):
        longest[feature] = max(longest[feature], len(vocabulary.encode(text)) + 1)
  return longest


def cache_path(vocabulary: seqio.Vocabulary) -> Optional[str]:
  """The cache file of `vocabulary`'s lengths; None if it has no fingerprint."""
  vocab_sha = vocabulary_fingerprint(vocabulary)
  if vocab_sha is None:
    return None
  name = f"{vocab_sha[:16]}-{data_fingerprint()[:16]}.json"
  return str(fixed_cache.data_dir() / CACHE_FOLDER / name)


def _read_cache(path: str) -> Optional[dict[str, int]]:
  try:
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
    return {k: int(stored[k]) for k in FEATURES}
  except (OSError, ValueError, KeyError, TypeError):
    return None  # absent or unreadable: measure again


def _write_cache(path: str, lengths: Mapping[str, int]) -> None:
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(dict(lengths), f)
    os.replace(tmp, path)  # atomic: concurrent writers leave one whole file
  except OSError as e:
    log.warning("Could not cache %s's maximum lengths in %s (%s); they will be "
                "measured again in the next process.", TASK_NAME, path, e)


def cached_max_lengths(vocabulary: seqio.Vocabulary) -> dict[str, int]:
  """`measure_max_lengths(vocabulary)`, read from its cache file or measured and cached."""
  path = cache_path(vocabulary)
  lengths = _read_cache(path) if path else None
  if lengths is not None:
    return lengths
  log.info("%s: measuring the longest inputs/targets over all %d examples with a "
           "vocabulary other than the shipped one (under a minute, once%s).", TASK_NAME,
           sum(ns.SPLIT_SIZES.values()), f"; cached in {path}" if path else "")
  lengths = measure_max_lengths(vocabulary)
  if path:
    _write_cache(path, lengths)
  return lengths


class MeasuredMaxLengths(Mapping[str, int]):
  """{'inputs', 'targets'} maximum lengths for `vocabulary`, measured on first read.

  A task's maximum lengths (`task_metadata`): `check_feature_lengths` reading it triggers
  `cached_max_lengths` once per process; `repr` does not.
  """

  def __init__(self, vocabulary: seqio.Vocabulary):
    self._vocabulary = vocabulary
    self._lengths: Optional[dict[str, int]] = None
    self._lock = threading.Lock()

  @property
  def measured(self) -> bool:
    return self._lengths is not None

  def _get(self) -> dict[str, int]:
    with self._lock:
      if self._lengths is None:
        self._lengths = cached_max_lengths(self._vocabulary)
      return self._lengths

  def __getitem__(self, feature: str) -> int:
    return self._get()[feature]

  def __iter__(self) -> Iterator[str]:
    return iter(FEATURES)

  def __len__(self) -> int:
    return len(FEATURES)

  def __repr__(self) -> str:
    return (f"MeasuredMaxLengths({self._lengths})" if self.measured else
            "MeasuredMaxLengths(measured on first read)")


def max_lengths_for(vocabulary: seqio.Vocabulary) -> Mapping[str, int]:
  """The maximum lengths for `vocabulary`: pinned if it is the shipped model
  (same model bytes, wherever it lies), else a MeasuredMaxLengths."""
  fingerprint = vocabulary_fingerprint(vocabulary)
  if fingerprint is not None and os.path.exists(text_vocab.DEFAULT_VOCAB_PATH):
    shipped = text_vocab.get_vocabulary(text_vocab.DEFAULT_VOCAB_PATH)
    if fingerprint == vocabulary_fingerprint(shipped):
      return dict(MAX_LENGTHS_SHIPPED_VOCAB)
  return MeasuredMaxLengths(vocabulary)


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
  """Registers the task as `name` with `vocabulary` (default: the text vocabulary),
  and its maximum lengths for that vocabulary (`max_lengths_for`)."""
  vocab = vocabulary if vocabulary is not None else text_vocab.get_vocabulary()
  features = {k: seqio.Feature(vocab, add_eos=True, dtype=tf.int32) for k in FEATURES}
  task_metadata.set_max_lengths(name, max_lengths_for(vocab))
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
