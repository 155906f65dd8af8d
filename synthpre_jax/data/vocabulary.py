"""Vocabulary identity: which token ids a checkpoint's embedding rows belong to.

Every checkpoint's `meta` records the identity of the vocabulary it was trained with,
and restoring into a run with another vocabulary is refused unless the embedding is
re-learned (see `check_transfer`). An identity is a small JSON-able dict:

  {'kind': 'sentencepiece', 'name': 't5' | <file name>, 'sha256': <model file hash>,
   'extra_ids': 100, 'vocab_size': <ids>}
  {'kind': 'synthetic', 'name': 'synthetic:<hash>', 'layout': {...}, 'vocab_size': n}
  {'kind': 'passthrough', 'name': 'ids:<n>', 'vocab_size': n}

Two identities match when their `name`s are equal (the name carries the content hash).
TensorFlow-free: the data layer passes vocabulary objects, which are duck-typed here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping, Optional

from etils import epath

# T5's SentencePiece model (gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model,
# shipped by Hugging Face as t5-small's spiece.model: 791,656 bytes), as used by the paper.
T5_SPM_SHA256 = "d60acb128cf7b7f2536e8f38a5b18a05535c9e14c7a355904270e15b0945ea86"
T5_EXTRA_IDS = 100
T5_VOCAB_PATH = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
# The project's shipped model, tasks/vocab/synthpre_en_8k.model (a test checks the hash).
SHIPPED_SPM_SHA256 = "9c0fec1cc8f437e807f6db9f4a0778997aaeb472daa31884f9573c3c72748070"

# Names a recipe may require (REQUIRED_TEXT_VOCABULARY): name -> SentencePiece sha256.
KNOWN_TEXT_VOCABULARIES = {"t5": T5_SPM_SHA256, "synthpre_en_8k": SHIPPED_SPM_SHA256}


def t5_identity() -> dict[str, Any]:
  """The identity of T5's vocabulary (32,000 pieces + 100 sentinels)."""
  return {"kind": "sentencepiece", "name": "t5", "sha256": T5_SPM_SHA256,
          "extra_ids": T5_EXTRA_IDS, "vocab_size": 32100}


def sentencepiece_identity(model_bytes: bytes, extra_ids: int, vocab_size: int,
                           file_name: str = "") -> dict[str, Any]:
  """The identity of a SentencePiece model file's bytes plus its sentinel count."""
  sha = hashlib.sha256(model_bytes).hexdigest()
  if sha == T5_SPM_SHA256 and extra_ids == T5_EXTRA_IDS:
    return t5_identity()
  stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "sentencepiece"
  return {"kind": "sentencepiece", "name": f"{stem}:{sha[:12]}+{extra_ids}",
          "sha256": sha, "extra_ids": int(extra_ids), "vocab_size": int(vocab_size)}


def identity_of(vocab: Any) -> dict[str, Any]:
  """The identity of a seqio vocabulary (SentencePiece, synthetic layout or plain ids).

  Raises ValueError for a vocabulary kind it cannot identify."""
  model_file = getattr(vocab, "sentencepiece_model_file", None)
  if model_file:
    return sentencepiece_identity(epath.Path(model_file).read_bytes(),
                                  int(getattr(vocab, "extra_ids", 0) or 0),
                                  int(vocab.vocab_size), model_file)
  layout = getattr(vocab, "layout", None)
  if layout is not None:
    layout = dataclasses.asdict(layout) if dataclasses.is_dataclass(layout) else dict(layout)
    digest = hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()
    return {"kind": "synthetic", "name": f"synthetic:{digest[:12]}", "layout": layout,
            "vocab_size": int(vocab.vocab_size)}
  if type(vocab).__name__ == "PassThroughVocabulary":
    return {"kind": "passthrough", "name": f"ids:{int(vocab.vocab_size)}",
            "vocab_size": int(vocab.vocab_size)}
  raise ValueError(f"Cannot identify the vocabulary {vocab!r}: give it a "
                   "`sentencepiece_model_file` or a `layout`.")


def task_identity(output_features: Mapping[str, Any]) -> dict[str, Any]:
  """The identity of a task's vocabulary: its targets' (inputs must be the same)."""
  ids = {k: identity_of(f.vocabulary) for k, f in output_features.items()
         if k in ("inputs", "targets")}
  names = {v["name"] for v in ids.values()}
  if len(names) > 1:
    raise ValueError(f"The task's inputs and targets use different vocabularies "
                     f"({ids['inputs']['name']} and {ids['targets']['name']}); the model "
                     "shares one embedding, so they must be the same.")
  return ids.get("targets") or next(iter(ids.values()))


def describe(identity: Optional[Mapping[str, Any]]) -> str:
  """A short human-readable name, e.g. "t5 (sentencepiece, 32100 ids)"."""
  if not identity:
    return "unknown (not recorded)"
  return f"{identity['name']} ({identity['kind']}, {identity.get('vocab_size', '?')} ids)"


def same(a: Optional[Mapping[str, Any]], b: Optional[Mapping[str, Any]]) -> bool:
  return bool(a) and bool(b) and a["name"] == b["name"]


def check_required(required: Optional[str], identity: Mapping[str, Any],
                   fix: str) -> None:
  """Refuses a SentencePiece vocabulary other than the recipe's `required` one ('t5',
  or None for any); synthetic and plain-id vocabularies are not text and pass."""
  if required is None or identity["kind"] != "sentencepiece":
    return
  if required not in KNOWN_TEXT_VOCABULARIES:
    raise ValueError(f"REQUIRED_TEXT_VOCABULARY {required!r} is unknown; use one of "
                     f"{sorted(KNOWN_TEXT_VOCABULARIES)} or None.")
  if identity.get("sha256") != KNOWN_TEXT_VOCABULARIES[required]:
    raise ValueError(
        f"This recipe requires the {required!r} text vocabulary, but the task uses "
        f"{describe(identity)}. {fix} To run the recipe with this vocabulary on purpose "
        "(an offline experiment that is not the paper's), set "
        "--gin.REQUIRED_TEXT_VOCABULARY=None.")


def check_transfer(source: Optional[Mapping[str, Any]], target: Optional[Mapping[str, Any]],
                   *, source_path: str, copies_embedding: bool,
                   allow_mismatch: bool) -> list[str]:
  """Checks that a checkpoint's vocabulary fits the run; returns restore-log lines.

  A mismatch is refused (ValueError naming both vocabularies and the settings that fix
  it) unless `allow_mismatch` and the embedding is not copied (`all_but_embeddings`).
  A source that records no vocabulary (older checkpoints) is logged as unchecked."""
  if not source or not target:
    return [f"vocabulary NOT checked: {source_path} records "
            f"{describe(source)}, the run {describe(target)}"]
  if same(source, target):
    return [f"vocabulary: {describe(target)}, the same as the checkpoint's"]
  if allow_mismatch and not copies_embedding:
    return [f"vocabulary MISMATCH ALLOWED (ALLOW_VOCAB_MISMATCH=True): checkpoint "
            f"{describe(source)}, run {describe(target)}; the token embedding is fresh "
            "and re-learned"]
  how = ("copying its embedding pairs token ids with vectors of other tokens"
         if copies_embedding else "the run would silently use other token ids")
  raise ValueError(
      f"Vocabulary mismatch: the checkpoint {source_path} was trained with "
      f"{describe(source)}, but this run's task uses {describe(target)}; {how}. Fix: "
      f"select the checkpoint's vocabulary (for T5's: SYNTHPRE_VOCAB_PATH={T5_VOCAB_PATH}), "
      "or, to re-learn the embedding on purpose, set TRANSFER_MODE='all_but_embeddings' "
      "and ALLOW_VOCAB_MISMATCH=True.")
