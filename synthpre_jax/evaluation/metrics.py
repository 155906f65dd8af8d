"""Downstream metrics with SeqIO's signature `fn(targets, predictions) -> {name: value}`.

Values are percentages in 0..100, as T5's seqio metrics report them. Every function
takes two equally long sequences (one target and one prediction per example) and
raises ValueError otherwise; text may be `str` or UTF-8 `bytes`. TF-free.

* `exact_match`: raw string equality, no normalization (the paper's metric for code
  translation, MTOP, WebQSP and retrosynthesis). A target that is a list of strings
  matches when the prediction equals any of them.
* `token_f1`: per-example F1 of whitespace tokens (multiset overlap), averaged; no
  normalization beyond splitting on whitespace.
* `squad`: the official SQuAD v1.1 EM and F1: answers are lower-cased, punctuation
  and the articles a/an/the removed, whitespace collapsed; each example takes the max
  over its gold answers (a target may be one string or a list of them).
* `rouge`: ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures from Google's
  `rouge_score` package with its default tokenizer and stemming off; " . " starts a new
  line so ROUGE-Lsum sees sentences; the value is the exact mean over examples (how
  this compares with T5's metric: docs/metrics.md).
* `token_accuracy`: over id arrays, the share of non-padding target positions
  predicted exactly, and the share of sequences predicted exactly.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any, Sequence, Union

import numpy as np

Text = Union[str, bytes]


def _as_text(value: Any) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.ndim == 0:
    return _as_text(value.item())
  if not isinstance(value, str):
    raise ValueError(f"Expected text (str or bytes), got {type(value).__name__}: {value!r}.")
  return value


def _alternatives(target: Any) -> list[str]:
  """A target as its list of acceptable answers (one string, or a list of strings)."""
  if isinstance(target, (str, bytes)) or (isinstance(target, np.ndarray) and target.ndim == 0):
    return [_as_text(target)]
  answers = [_as_text(t) for t in target]
  if not answers:
    raise ValueError("A target holds an empty list of answers.")
  return answers


def _check_lengths(targets: Sequence[Any], predictions: Sequence[Any]) -> None:
  if len(targets) != len(predictions):
    raise ValueError(f"Got {len(targets)} targets and {len(predictions)} predictions; "
                     "pass one prediction per target.")
  if not len(targets):
    raise ValueError("No examples to score (targets and predictions are empty).")


def exact_match(targets: Sequence[Any], predictions: Sequence[Text]) -> dict[str, float]:
  """{"exact_match": % of predictions string-equal to their target (no normalization)}."""
  _check_lengths(targets, predictions)
  hits = [_as_text(p) in _alternatives(t) for t, p in zip(targets, predictions)]
  return {"exact_match": 100.0 * float(np.mean(hits))}


def _f1(target_tokens: Sequence[str], prediction_tokens: Sequence[str]) -> float:
  """Multiset-overlap F1 (SQuAD's definition: 0 when nothing overlaps)."""
  common = collections.Counter(target_tokens) & collections.Counter(prediction_tokens)
  overlap = sum(common.values())
  if overlap == 0:
    return 0.0
  precision = overlap / len(prediction_tokens)
  recall = overlap / len(target_tokens)
  return 2 * precision * recall / (precision + recall)


def token_f1(targets: Sequence[Any], predictions: Sequence[Text]) -> dict[str, float]:
  """{"token_f1": mean per-example F1 of whitespace tokens}. Two empty strings score
  100; a list target takes the best of its answers."""

  def one(target: str, prediction: str) -> float:
    t, p = target.split(), prediction.split()
    if not t or not p:
      return float(t == p)
    return _f1(t, p)

  _check_lengths(targets, predictions)
  scores = [max(one(t, _as_text(p)) for t in _alternatives(target))
            for target, p in zip(targets, predictions)]
  return {"token_f1": 100.0 * float(np.mean(scores))}


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_squad_answer(text: Text) -> str:
  """SQuAD v1.1 normalization: lower-case, drop punctuation, drop a/an/the, collapse
  whitespace."""
  text = _as_text(text).lower()
  text = "".join(ch for ch in text if ch not in _PUNCTUATION)
  text = _ARTICLES.sub(" ", text)
  return " ".join(text.split())


def squad(targets: Sequence[Any], predictions: Sequence[Text]) -> dict[str, float]:
  """{"em", "f1"}: SQuAD v1.1 exact match and token F1 after normalization, each the
  max over the example's gold answers (targets: answer lists or single strings)."""
  _check_lengths(targets, predictions)
  em, f1 = [], []
  for target, prediction in zip(targets, predictions):
    pred = normalize_squad_answer(prediction)
    golds = [normalize_squad_answer(t) for t in _alternatives(target)]
    em.append(max(float(pred == g) for g in golds))
    f1.append(max(_f1(g.split(), pred.split()) for g in golds))
  return {"em": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge(targets: Sequence[Text], predictions: Sequence[Text], *,
          score_keys: Sequence[str] = ROUGE_KEYS,
          use_stemmer: bool = False) -> dict[str, float]:
  """{"rouge1", "rouge2", "rougeL", "rougeLsum"}: mean F-measure x 100 (see the module
  docstring for the tokenizer and stemming choices)."""
  from rouge_score import rouge_scorer  # pylint: disable=g-import-not-at-top

  _check_lengths(targets, predictions)
  scorer = rouge_scorer.RougeScorer(rouge_types=list(score_keys), use_stemmer=use_stemmer)

  def prepare(text: Text) -> str:  # T5: sentence breaks for ROUGE-Lsum
    return _as_text(text).replace(" . ", " .\n")

  totals = collections.defaultdict(float)
  for target, prediction in zip(targets, predictions):
    scores = scorer.score(target=prepare(target), prediction=prepare(prediction))
    for key in score_keys:
      totals[key] += scores[key].fmeasure
  return {key: 100.0 * totals[key] / len(targets) for key in score_keys}


def _pad_to(rows: Sequence[Sequence[int]], length: int, pad_id: int) -> np.ndarray:
  out = np.full((len(rows), length), pad_id, np.int64)
  for i, row in enumerate(rows):
    row = np.asarray(row).reshape(-1)
    out[i, :len(row)] = row
  return out


def token_accuracy(targets: Any, predictions: Any, *,
                   pad_id: int = 0) -> dict[str, float]:
  """{"token_accuracy", "sequence_accuracy"} over token ids.

  `targets` and `predictions` are [batch, length] arrays or lists of id sequences
  (shorter rows are padded with `pad_id`). Token accuracy counts the target's
  non-padding positions the prediction matches; a sequence is correct when all those
  match and the prediction has no extra non-padding tokens where the target is padding.
  """
  _check_lengths(targets, predictions)
  length = max(max(np.asarray(r).size for r in targets),
               max(np.asarray(r).size for r in predictions))
  t = _pad_to(targets, length, pad_id)
  p = _pad_to(predictions, length, pad_id)
  real = t != pad_id
  correct = (t == p) & real
  num_real = int(real.sum())
  token = 100.0 * correct.sum() / num_real if num_real else 0.0
  extra = (p != pad_id) & ~real
  sequence = np.all(correct == real, axis=1) & ~np.any(extra, axis=1)
  return {"token_accuracy": float(token), "sequence_accuracy": 100.0 * float(sequence.mean())}
