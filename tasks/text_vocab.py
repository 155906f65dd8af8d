"""The text vocabulary of the natural and downstream tasks: a SentencePiece model + sentinels.

Which SentencePiece model is used, first match wins:
  1. the `path` argument of `get_vocabulary` (from a Gin-bound task option, say);
  2. the environment variable SYNTHPRE_VOCAB_PATH (e.g. `T5_VOCAB_PATH` below, the
     paper's 32k model, for full-scale runs with GCS access);
  3. the model shipped with the project, `tasks/vocab/synthpre_en_8k.model` (8,000
     pieces trained on the embedded corpus by `tasks/vocab/train_vocab.py`), so nothing
     is downloaded by default.
Like T5, 100 sentinel ids (`<extra_id_0>` = the last id) are appended; pad 0, EOS 1,
unk 2. Model embedding tables must have at least `vocab_size` rows: use
`TEXT_MODEL_VOCAB_SIZE` (8,100 padded to a multiple of 128) with the shipped model, 32,128
with T5's.
"""
from __future__ import annotations

import functools
import os

import seqio

# The paper's vocabulary (T5's): 32,000 pieces + 100 extra ids = 32,100 -> 32,128.
T5_VOCAB_PATH = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
T5_MODEL_VOCAB_SIZE = 32128

DEFAULT_VOCAB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocab",
                                  "synthpre_en_8k.model")
VOCAB_PATH_ENV = "SYNTHPRE_VOCAB_PATH"
DEFAULT_EXTRA_IDS = 100
# Pieces in the shipped model; with the 100 sentinels 8,100 ids, padded to 64 x 128.
DEFAULT_SPM_SIZE = 8000
TEXT_MODEL_VOCAB_SIZE = 8192


def padded_vocab_size(vocab_size: int, multiple: int = 128) -> int:
  """The smallest multiple of `multiple` >= vocab_size (embedding rows to allocate)."""
  return -(-vocab_size // multiple) * multiple


def resolve_vocab_path(path: str | None = None) -> str:
  """The SentencePiece model path: the argument, else $SYNTHPRE_VOCAB_PATH, else shipped."""
  return path or os.environ.get(VOCAB_PATH_ENV) or DEFAULT_VOCAB_PATH


def _exists(path: str) -> bool:
  if "://" in path:  # gs:// etc.: only tf.io.gfile can tell (imported by seqio anyway)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


@functools.lru_cache(maxsize=None)
def _load(path: str, extra_ids: int) -> seqio.SentencePieceVocabulary:
  if not _exists(path):
    raise FileNotFoundError(
        f"SentencePiece model not found: {path!r}. Pass an existing path, set "
        f"${VOCAB_PATH_ENV} to one (e.g. {T5_VOCAB_PATH} with GCS access), or unset it "
        f"to use the shipped {DEFAULT_VOCAB_PATH}")
  vocab = seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
  # Load now, so that a corrupt file fails here and not in the middle of a pipeline.
  vocab.tokenizer  # pylint: disable=pointless-statement
  return vocab


def get_vocabulary(path: str | None = None,
                   extra_ids: int = DEFAULT_EXTRA_IDS) -> seqio.SentencePieceVocabulary:
  """The text vocabulary (cached per resolved path and extra_ids); see module docstring."""
  if extra_ids < 0:
    raise ValueError(f"extra_ids must be >= 0, got {extra_ids}")
  return _load(resolve_vocab_path(path), extra_ids)
