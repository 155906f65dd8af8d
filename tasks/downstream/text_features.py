"""What the downstream text tasks share: vocabulary, output features, postprocessing,
metrics, and the list of downstream task names.

Every downstream task (the text-file tasks, squad, SCAN, WordNet, classification, and
their training subsets) tokenizes with `TEXT_VOCABULARY` unless given another, decodes
with `postprocess_text` (a target is scored as its full untruncated text) and adds its
name to `DOWNSTREAM_TASK_NAMES` (`tasks/downstream/length_report.py` counts overlong
examples of those tasks only).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional, Sequence

import seqio
import tensorflow as tf

from synthpre_jax.evaluation import metrics
from tasks import text_vocab

def _as_text(value: Any) -> Any:
  """bytes (also inside lists and numpy values) as str."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalar / array
    return _as_text(value.tolist())
  if isinstance(value, list):
    return [_as_text(v) for v in value]
  return value


def postprocess_text(output: Any, example: Optional[Mapping[str, Any]] = None,
                     is_target: bool = False) -> Any:
  """Decoded text as str; a target is the example's full `targets_pretokenized` text."""
  if is_target and example is not None and "targets_pretokenized" in example:
    return _as_text(example["targets_pretokenized"])
  return _as_text(output)


def _metric(name: str) -> Callable[[Sequence[Any], Sequence[Any]], dict]:
  """`synthpre_jax.evaluation.metrics.<name>`, named `name` (SeqIO reports metrics by
  their function's name)."""

  def metric_fn(targets: Sequence[Any], predictions: Sequence[Any]) -> dict:
    return getattr(metrics, name)(targets, predictions)

  metric_fn.__name__ = name
  metric_fn.__qualname__ = name
  return metric_fn


METRIC_FNS: dict[str, Callable] = {
    "exact_match": _metric("exact_match"),
    "token_f1": _metric("token_f1"),
    "squad": _metric("squad"),
    "rouge": _metric("rouge"),
}


def default_vocabulary() -> seqio.Vocabulary:
  """The project's text vocabulary (`tasks.text_vocab.get_vocabulary()`)."""
  return text_vocab.get_vocabulary()


class LazyVocabulary(seqio.Vocabulary):
  """A vocabulary that calls `factory()` on first use and delegates everything to it.

  Tasks are registered at import, but the SentencePiece model path may be configured
  later (Gin edge, environment); the downstream tasks share this one proxy, so they
  see the vocabulary configured when their data is first tokenized.
  """

  def __init__(self, factory: Callable[[], seqio.Vocabulary]):
    self._factory = factory
    self._target: Optional[seqio.Vocabulary] = None
    self._lock = threading.Lock()
    super().__init__(extra_ids=0)

  @property
  def target(self) -> seqio.Vocabulary:
    if self._target is None:
      with self._lock:
        if self._target is None:
          self._target = self._factory()
    return self._target

  # Public interface: straight to the target (its own extra-id and EOS handling).
  bos_id = property(lambda self: self.target.bos_id)
  eos_id = property(lambda self: self.target.eos_id)
  pad_id = property(lambda self: self.target.pad_id)
  unk_id = property(lambda self: self.target.unk_id)
  extra_ids = property(lambda self: self.target.extra_ids)
  vocab_size = property(lambda self: self.target.vocab_size)
  _base_vocab_size = property(lambda self: self.target._base_vocab_size)  # pylint: disable=protected-access

  def encode(self, s):
    return self.target.encode(s)

  def decode(self, ids):
    return self.target.decode(ids)

  def encode_tf(self, s):
    return self.target.encode_tf(s)

  def decode_tf(self, ids):
    return self.target.decode_tf(ids)

  def _encode(self, s):
    return self.target._encode(s)  # pylint: disable=protected-access

  def _decode(self, ids):
    return self.target._decode(ids)  # pylint: disable=protected-access

  def _encode_tf(self, s):
    return self.target._encode_tf(s)  # pylint: disable=protected-access

  def _decode_tf(self, ids):
    return self.target._decode_tf(ids)  # pylint: disable=protected-access

  def __getattr__(self, name: str) -> Any:  # e.g. sp_model, sentencepiece_model_file
    if name.startswith("_"):
      raise AttributeError(name)
    return getattr(self.target, name)

  def __eq__(self, other: Any) -> bool:
    if self is other:
      return True
    if isinstance(other, LazyVocabulary):
      other = other.target
    return isinstance(other, seqio.Vocabulary) and self.target == other

  def __hash__(self) -> int:
    return id(self)

  def __repr__(self) -> str:
    state = repr(self._target) if self._target is not None else "not loaded yet"
    return f"LazyVocabulary({state})"


# The text vocabulary of every downstream task (resolved on first use).
TEXT_VOCABULARY = LazyVocabulary(default_vocabulary)


def text_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
  """`inputs` and `targets` features of `vocabulary`, EOS appended."""
  return {k: seqio.Feature(vocabulary, add_eos=True, dtype=tf.int32)
          for k in ("inputs", "targets")}


# Names of the registered downstream tasks (for `length_report.overlong_warnings`).
DOWNSTREAM_TASK_NAMES: set[str] = set()
