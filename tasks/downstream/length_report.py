"""How many examples of a task's split exceed the feature lengths, and lossy targets.

Training truncates overlong examples (SeqIO trims each feature, EOS kept last) and
evaluation scores the full target text; `overlong_warnings` counts them for the
training entry point (registered with `task_metadata.add_length_warnings`), for
downstream tasks only (`text_features.DOWNSTREAM_TASK_NAMES`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import task_metadata
from tasks import subsets
from tasks.downstream import text_features

@dataclasses.dataclass(frozen=True)
class LengthReport:
  """How many examples of a split exceed the feature lengths (token counts with EOS).

  `lossy_targets` counts targets whose text does not come back from tokenize -> decode
  (characters outside the vocabulary, whitespace the tokenizer normalizes): exact match
  cannot credit them even for a perfect model. None when the task keeps no target text.
  """
  task: str
  split: str
  examples: int
  feature_lengths: Mapping[str, int]
  too_long: Mapping[str, int]   # feature -> examples longer than its length
  longest: Mapping[str, int]    # feature -> longest example, in tokens
  lossy_targets: Optional[int] = None

  def message(self) -> str:
    """One line per problem found (overlong feature, lossy targets); '' if none."""
    where = f"Task {self.task!r}, split {self.split!r}"
    lines = []
    for feature, count in self.too_long.items():
      if count:
        lines.append(
            f"{where}: {count} of {self.examples} examples have {feature} longer than "
            f"{self.feature_lengths[feature]} tokens (EOS included; longest "
            f"{self.longest[feature]}). Training truncates them to that length; "
            f"evaluation scores the full target text.")
    if self.lossy_targets:
      lines.append(
          f"{where}: {self.lossy_targets} of {self.examples} targets do not decode back "
          f"to their text after tokenization (characters outside the vocabulary or "
          f"normalized whitespace); exact match cannot credit them.")
    return "\n".join(lines)


# (task, split, features) -> per-example token counts and lossy flags (one per process).
_EXAMPLE_LENGTHS: dict[tuple[str, str, tuple[str, ...]], dict[str, np.ndarray]] = {}


def _example_lengths(task_name: str, split: str, features: Sequence[str]
                     ) -> dict[str, np.ndarray]:
  """Per example of `split`, in order: token count of each feature (EOS included, no
  trimming) and, when the task keeps target text, `_lossy` (1 where tokenize -> decode
  does not give the text back). Computed once per process."""
  key = (task_name, split, tuple(features))
  if key in _EXAMPLE_LENGTHS:
    return _EXAMPLE_LENGTHS[key]
  task = seqio.get_mixture_or_task(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; report its tasks one by one.")
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, num_epochs=1,
                        trim_output_features=False, use_cached=False)
  check_text = "targets_pretokenized" in ds.element_spec and "targets" in task.output_features
  target_vocab = task.output_features["targets"].vocabulary if check_text else None

  def measure(ex):
    out = {f: tf.size(ex[f]) for f in features}
    if check_text:
      decoded = target_vocab.decode_tf(ex["targets"])
      out["_lossy"] = tf.cast(tf.not_equal(decoded, ex["targets_pretokenized"]), tf.int32)
    return out

  parts: dict[str, list[np.ndarray]] = {}
  for batch in ds.map(measure, num_parallel_calls=tf.data.AUTOTUNE).batch(
      4096).as_numpy_iterator():
    for k, v in batch.items():
      parts.setdefault(k, []).append(v)
  out = {k: np.concatenate(parts.get(k, [np.zeros(0, np.int32)]))
         for k in list(features) + (["_lossy"] if check_text else [])}
  _EXAMPLE_LENGTHS[key] = out
  return out


def length_report(task_name: str, split: str, feature_lengths: Mapping[str, int]
                  ) -> LengthReport:
  """Counts the examples of `split` whose tokenized features exceed `feature_lengths`.

  Works for any registered seqio Task: it runs the task's own preprocessing (and so
  its vocabulary and EOS rule) without trimming over the whole split, so it costs one
  pass of tokenization and of decoding the targets (seconds for 10K-100K examples). The
  counts are kept per process, and a seeded train subset (`<task>_train<N>_seed<S>`) of
  an in-memory task (one example per record) reads its rows of its base task's counts,
  so a study measures each split once.
  """
  task = seqio.get_mixture_or_task(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; report its tasks one by one.")
  features = [f for f in feature_lengths if f in task.output_features]
  parsed = subsets.parse_subset_name(task_name)
  source = task.source
  # Only where the base keeps one example per record (immutable in-memory tasks): a
  # preprocessor that drops records (e.g. amazon_books_polarity's 3-star reviews) would
  # shift the subset's record positions against the base's example counts.
  if (split == "train" and parsed is not None and
      isinstance(source, subsets.TrainSubsetSource) and source.indices is not None and
      getattr(source.base, "immutable_examples", False)):
    rows = source.indices
    lengths = {k: v[rows] for k, v in _example_lengths(parsed.base, split,
                                                        features).items()}
  else:
    lengths = _example_lengths(task_name, split, features)
  total = len(lengths[features[0]]) if features else 0
  too_long = {f: int((lengths[f] > feature_lengths[f]).sum()) for f in features}
  longest = {f: int(lengths[f].max()) if len(lengths[f]) else 0 for f in features}
  lossy = int(lengths["_lossy"].sum()) if "_lossy" in lengths else None
  return LengthReport(task_name, split, total, dict(feature_lengths), too_long, longest,
                      lossy)


def overlong_warnings(task_name: str, feature_lengths: Mapping[str, int],
                      splits: Sequence[str] = ("train",)) -> list[str]:
  """Warnings counting overlong examples (and lossy targets) of a downstream task's
  splits; [] for other tasks.

  For the training entry point: call it for any task name and log what comes back.
  Non-downstream tasks (synthetic ones have exact maximum lengths, checked elsewhere)
  return [] at no cost.
  """
  if task_name not in text_features.DOWNSTREAM_TASK_NAMES:
    return []
  found = []
  for split in splits:
    message = length_report(task_name, split, feature_lengths).message()
    if message:
      found.append(message)
  return found


# The training entry point's count of overlong downstream examples.
task_metadata.add_length_warnings(overlong_warnings)
