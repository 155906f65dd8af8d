"""Examples of any registered SeqIO task or mixture, as `tasks.inspect` shows them.

Needs seqio (and so TensorFlow). Examples are read unshuffled, after the task's
preprocessing and before trimming (what training sees before TASK_FEATURE_LENGTHS), with
the final EOS removed; text vocabularies decode them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
import seqio

from synthpre_jax.data import pipeline, task_metadata


@dataclasses.dataclass(frozen=True)
class Example:
  """One example's ids (EOS removed) and their decoded text (None: not a text vocabulary)."""
  inputs: np.ndarray
  targets: np.ndarray
  inputs_text: Optional[str]
  targets_text: Optional[str]


def resolve(name: str) -> list[seqio.Task]:
  """The task `name`, or a mixture's tasks. Raises ValueError for an unknown name
  (listing the registered ones, closest first)."""
  provider = pipeline.resolve_task(name)
  return list(getattr(provider, "tasks", None) or [provider])


def is_text(vocab: seqio.Vocabulary) -> bool:
  """True for a vocabulary whose ids decode to text (not seqio's pass-through ids)."""
  target = getattr(vocab, "target", vocab)  # tasks.downstream.text_features.LazyVocabulary
  return not isinstance(target, seqio.PassThroughVocabulary)


def describe(task: seqio.Task) -> str:
  """One line naming each feature's vocabulary."""
  parts = []
  for name, feature in task.output_features.items():
    vocab = feature.vocabulary
    target = getattr(vocab, "target", vocab)
    kind = type(target).__name__
    path = getattr(target, "sentencepiece_model_file", None)
    parts.append(f"{name}: {kind} ({vocab.vocab_size} ids{', ' + path if path else ''})")
  return "SeqIO task; " + "; ".join(parts)


def _feature(task: seqio.Task, ex: dict, key: str) -> tuple[np.ndarray, Optional[str]]:
  ids = np.asarray(ex.get(key, []), np.int32).reshape(-1)
  spec = task.output_features.get(key)
  if spec is None:
    return ids, None
  if spec.add_eos and len(ids) and ids[-1] == spec.vocabulary.eos_id:
    ids = ids[:-1]
  if not is_text(spec.vocabulary):
    return ids, None
  text = spec.vocabulary.decode(ids.tolist())
  return ids, text.decode("utf-8") if isinstance(text, bytes) else str(text)


def draw(task: seqio.Task, split: str, seed: int, start: int, num: int) -> list[Example]:
  """Examples start..start+num-1 of `split`, unshuffled (`seed` seeds stochastic
  preprocessors such as span corruption). Fewer if the split ends first."""
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, seed=seed,
                        num_epochs=1, trim_output_features=False, use_cached=False)
  out = []
  for ex in ds.skip(start).take(num).as_numpy_iterator():
    (inputs, in_text), (targets, tg_text) = (_feature(task, ex, k)
                                             for k in ("inputs", "targets"))
    out.append(Example(inputs, targets, in_text, tg_text))
  return out


def max_lengths(name: str) -> Optional[dict[str, int]]:
  """The task's registered max lengths (EOS included), if it has them."""
  found: Any = task_metadata.max_lengths(name)
  return dict(found) if found else None
