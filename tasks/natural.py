"""Natural pre-training on C4 (TFDS) and on the embedded corpus: T5 span corruption, and
plain language modelling for decoder-only models.

Tasks (registered at import):
  c4_span_corruption       TFDS `c4/en:3.*.*`, splits train / validation (T5's C4; any
                           prepared 3.x version: T5's 3.0.1, or 3.1.0 built by tfds 4.9).
  corpus_span_corruption   the embedded English corpus (`tasks.corpus`, prose of the
                           Python docs), splits train / validation; offline.
  c4_lm, corpus_lm         the same documents as language modelling: empty inputs (EOS
                           only, which a decoder-only model reads as its first token) and
                           targets = consecutive chunks of `targets length - 1` tokens of
                           the concatenated stream (step 2 below), EOS appended.

Both use the project's text vocabulary (`text_features.TEXT_VOCABULARY`, the 8k SentencePiece
model + 100 sentinels unless SYNTHPRE_VOCAB_PATH says otherwise).

Pipeline of one split (T5's `span_corruption` preprocessor, made deterministic):
1. Each document's text is tokenized (no EOS).
2. Chunking (T5's `reduce_concat_tokens` + `split_tokens`): the tokens of DOCS_PER_GROUP
   (128) consecutive documents of the stream are concatenated, without separators, into
   one sequence, which is cut into consecutive chunks of `chunk_length(inputs_length)`
   tokens; only the last chunk of a group can be shorter (never empty). inputs_length is
   `sequence_length["inputs"]`, or DEFAULT_INPUTS_LENGTH (512) when no sequence_length is
   given. chunk_length is T5's `random_spans_helper`: the longest chunk whose corrupted
   inputs plus EOS fit inputs_length (512 -> 568-token chunks, targets 114 with EOS).
   T5's `select_random_chunk` (cap each document at a random 65,536-token window) is not
   applied: documents are used whole, so no randomness enters here.
3. Span corruption (`tasks/synthetic/span_corruption.py`, T5's segmentation and format):
   noise density 0.15, mean noise span length 3, sentinel j = vocab_size - 1 - j (the
   vocabulary's `<extra_id_j>`, as seqio.SentencePieceVocabulary(extra_ids=100) numbers
   them: extra_id_0 is the last id, 8099 with the shipped model, 32099 with T5's).
4. EOS is appended to inputs and targets.

Determinism: the noise mask of a chunk is drawn from a numpy Generator seeded with
(DATA_SEED, BLAKE2b of the chunk's int32 tokens), so it is a pure function of the chunk:
independent of its position in the stream, of sharding, of the run seed and of
threading. Given the document order (fixed by the split, the shard and the shuffle seed),
every example is therefore reproduced bit-for-bit on resume. The same chunk always gets
the same corruption; with the embedded corpus each epoch's training documents are
reshuffled (seeded), so chunks, and thus corruptions, differ between epochs.

Chunk sizes and the feature lengths: a `sequence_length["targets"]` shorter than the
chunks' corrupted targets (114 for inputs 512) is an error, not a silent truncation; so
is a chunk needing more sentinels than the vocabulary has extra ids.

C4 never downloads: prepare it once (`tfds build c4/en`, needs Apache Beam and ~1 TB
of scratch space) or point $TFDS_DATA_DIR at a prepared copy (e.g. T5's); until then
asking for data raises a FileNotFoundError that says so.
"""
from __future__ import annotations

import functools
import hashlib
from typing import Any, Mapping, Optional

import numpy as np
import seqio
import tensorflow as tf

from tasks import corpus
from tasks.downstream import text_features
from tasks.registry import IndexedSource
from tasks.synthetic import span_corruption
from tasks.tfds_source import ReadOnlyTfdsSource

# Fixed seed of every span-corruption mask. Changing it changes all the data.
DATA_SEED = 0
NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0
# Documents concatenated before splitting into chunks (T5's reduce_concat_tokens).
DOCS_PER_GROUP = 128
# inputs length assumed when a dataset is requested without sequence_length.
DEFAULT_INPUTS_LENGTH = 512

C4_TFDS_NAME = "c4/en:3.*.*"
C4_SPLITS = {"train": "train", "validation": "validation"}
C4_TASK = "c4_span_corruption"
CORPUS_TASK = "corpus_span_corruption"
C4_LM_TASK = "c4_lm"
CORPUS_LM_TASK = "corpus_lm"


# --- chunk sizes -----------------------------------------------------------------------

def corrupted_lengths_with_eos(length: int,
                               noise_density: float = NOISE_DENSITY,
                               mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH
                               ) -> tuple[int, int]:
  """(inputs, targets) lengths, EOS included, of the corruption of a `length` chunk."""
  inputs, targets = span_corruption.corrupted_lengths(length, noise_density,
                                                      mean_noise_span_length)
  return inputs + 1, targets + 1


@functools.lru_cache(maxsize=256)
def chunk_length(inputs_length: int, noise_density: float = NOISE_DENSITY,
                 mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH) -> int:
  """The longest chunk whose corrupted inputs + EOS fit `inputs_length` tokens (T5's
  `random_spans_helper`; the corrupted length never decreases with the chunk length)."""
  if isinstance(inputs_length, bool) or not isinstance(inputs_length, (int, np.integer)):
    raise TypeError(f"inputs_length must be an int, got {inputs_length!r}")
  if inputs_length < 2:
    raise ValueError(f"span corruption needs an inputs length >= 2 (one token + EOS), "
                     f"got {inputs_length}")
  span_corruption.check_params(noise_density, mean_noise_span_length)
  length = int(inputs_length) - 1
  while corrupted_lengths_with_eos(length + 1, noise_density,
                                   mean_noise_span_length)[0] <= inputs_length:
    length += 1
  return length


def feature_lengths(inputs_length: int, noise_density: float = NOISE_DENSITY,
                    mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH
                    ) -> dict[str, int]:
  """The TASK_FEATURE_LENGTHS that hold every example for this inputs length (EOS
  included): {'inputs': <= inputs_length, 'targets': the longest chunk's targets}."""
  n = chunk_length(inputs_length, noise_density, mean_noise_span_length)
  inputs, targets = corrupted_lengths_with_eos(n, noise_density, mean_noise_span_length)
  return {"inputs": inputs, "targets": targets}


# --- deterministic span corruption of one chunk ----------------------------------------

def chunk_rng(tokens: np.ndarray, seed: int = DATA_SEED) -> np.random.Generator:
  """The Generator of a chunk's noise mask: a pure function of (seed, the tokens)."""
  data = np.ascontiguousarray(np.asarray(tokens), dtype="<i4").tobytes()
  digest = hashlib.blake2b(data, digest_size=16, person=b"synthpre-spans").digest()
  return np.random.default_rng([int(seed), *np.frombuffer(digest, "<u4").tolist()])


def corrupt_chunk(tokens: np.ndarray, first_sentinel: int, *,
                  noise_density: float = NOISE_DENSITY,
                  mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
                  seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:
  """Span-corrupted int32 (inputs, targets) of one chunk, without EOS."""
  tokens = np.asarray(tokens, np.int32)
  mask = span_corruption.random_spans_noise_mask(
      chunk_rng(tokens, seed), len(tokens), noise_density, mean_noise_span_length)
  return span_corruption.span_corrupt(tokens, mask, first_sentinel)


def reconstruct(inputs: np.ndarray, targets: np.ndarray, first_sentinel: int,
                num_sentinels: int = 100) -> np.ndarray:
  """The original chunk from its (inputs, targets): each sentinel of the inputs is
  replaced by the tokens after the same sentinel in the targets. EOS (1) is dropped."""
  inputs = [int(t) for t in np.asarray(inputs) if t != 1]
  targets = [int(t) for t in np.asarray(targets) if t != 1]
  lowest = first_sentinel - num_sentinels + 1
  spans: dict[int, list[int]] = {}
  current = None
  for t in targets:
    if lowest <= t <= first_sentinel:
      current = spans.setdefault(t, [])
    elif current is None:
      raise ValueError(f"targets do not start with a sentinel: {targets[:8]}")
    else:
      current.append(t)
  out = []
  for t in inputs:
    out.extend(spans.pop(t) if lowest <= t <= first_sentinel else [t])
  return np.asarray(out, np.int32)


# --- SeqIO preprocessors ---------------------------------------------------------------

def text_to_targets(ds: tf.data.Dataset, text_key: str = "text") -> tf.data.Dataset:
  """{text_key: document} -> {'targets': document}, dropping every other feature."""
  return ds.map(lambda x: {"targets": x[text_key]}, num_parallel_calls=tf.data.AUTOTUNE)


def _inputs_length(sequence_length: Optional[Mapping[str, int]]) -> int:
  if sequence_length and sequence_length.get("inputs") is not None:
    return int(sequence_length["inputs"])
  return DEFAULT_INPUTS_LENGTH


def _chunks(ds: tf.data.Dataset, length: int, docs_per_group: int) -> tf.data.Dataset:
  """Tokenized documents -> {'targets': chunk}: the tokens of `docs_per_group`
  consecutive documents concatenated, cut into consecutive `length`-token chunks."""
  ds = ds.map(lambda x: x["targets"], num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.ragged_batch(docs_per_group).map(lambda r: r.flat_values)

  def split(tokens: tf.Tensor) -> tf.data.Dataset:
    num_chunks = (tf.size(tokens, out_type=tf.int64) + length - 1) // length
    return tf.data.Dataset.range(num_chunks).map(
        lambda i: {"targets": tokens[i * length:(i + 1) * length]})

  return ds.flat_map(split)


def concat_and_split(ds: tf.data.Dataset,
                     sequence_length: Optional[Mapping[str, int]] = None, *,
                     docs_per_group: int = DOCS_PER_GROUP,
                     noise_density: float = NOISE_DENSITY,
                     mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH
                     ) -> tf.data.Dataset:
  """Step 2 of the module docstring: tokenized documents -> {'targets': chunk}."""
  length = chunk_length(_inputs_length(sequence_length), noise_density,
                        mean_noise_span_length)
  return _chunks(ds, length, docs_per_group)


def lm_chunks(ds: tf.data.Dataset, sequence_length: Optional[Mapping[str, int]] = None,
              *, docs_per_group: int = DOCS_PER_GROUP) -> tf.data.Dataset:
  """Language modelling: tokenized documents -> {'inputs': [], 'targets': chunk} with
  chunks of `sequence_length['targets'] - 1` tokens (DEFAULT_INPUTS_LENGTH - 1 without
  one), so that EOS still fits."""
  targets = (sequence_length or {}).get("targets") or DEFAULT_INPUTS_LENGTH
  if targets < 2:
    raise ValueError(f"A language-modelling task needs a targets length >= 2 (a token "
                     f"and EOS), got {targets}.")
  empty = tf.zeros([0], tf.int32)
  return _chunks(ds, int(targets) - 1, docs_per_group).map(
      lambda x: {"inputs": empty, "targets": x["targets"]})


def span_corrupt(ds: tf.data.Dataset, output_features: Mapping[str, seqio.Feature],
                 sequence_length: Optional[Mapping[str, int]] = None, *,
                 noise_density: float = NOISE_DENSITY,
                 mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
                 seed: int = DATA_SEED, task_name: str = "span corruption"
                 ) -> tf.data.Dataset:
  """Step 3: {'targets': chunk} -> {'inputs', 'targets'} (no EOS yet).

  Checks up front that the longest chunk's targets fit sequence_length['targets'] and
  that the vocabulary has a sentinel for every noise span.
  """
  inputs_length = _inputs_length(sequence_length)
  length = chunk_length(inputs_length, noise_density, mean_noise_span_length)
  _, need_targets = corrupted_lengths_with_eos(length, noise_density,
                                               mean_noise_span_length)
  have_targets = (sequence_length or {}).get("targets")
  if have_targets is not None and have_targets < need_targets:
    raise ValueError(
        f"Task {task_name!r}: inputs length {inputs_length} gives {length}-token chunks "
        f"whose span-corrupted targets are {need_targets} tokens long (EOS included), "
        f"but the targets length is {have_targets}; they would be truncated. Set "
        f"TASK_FEATURE_LENGTHS['targets'] >= {need_targets} (natural.feature_lengths("
        f"{inputs_length}) gives both).")
  vocab = output_features["targets"].vocabulary
  extra_ids = vocab.extra_ids
  _, num_spans = span_corruption.noise_counts(length, noise_density,
                                              mean_noise_span_length)
  if num_spans > extra_ids:
    raise ValueError(
        f"Task {task_name!r}: {length}-token chunks have {num_spans} noise spans but the "
        f"vocabulary has only {extra_ids} sentinel (extra) ids; use a shorter inputs "
        f"length or a vocabulary with more extra ids.")
  first_sentinel = int(vocab.vocab_size) - 1

  def corrupt(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return corrupt_chunk(tokens, first_sentinel, noise_density=noise_density,
                         mean_noise_span_length=mean_noise_span_length, seed=seed)

  def to_features(x: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    inputs, targets = tf.numpy_function(corrupt, [x["targets"]], [tf.int32, tf.int32],
                                        stateful=False)
    inputs.set_shape([None])
    targets.set_shape([None])
    return {"inputs": inputs, "targets": targets}

  return ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- the corpus source -----------------------------------------------------------------

def corpus_dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None,
                      shard_info: Optional[seqio.ShardInfo] = None) -> tf.data.Dataset:
  """{'text': paragraph} of the embedded corpus: shard i of n holds paragraphs
  i, i + n, ...; with `shuffle_files` they are reshuffled (seeded) every epoch."""
  paragraphs = corpus.paragraphs(split)
  ds = tf.data.Dataset.from_tensor_slices({"text": paragraphs})
  if shard_info is not None:
    ds = ds.shard(shard_info.num_shards, shard_info.index)
  if shuffle_files:
    ds = ds.shuffle(len(paragraphs), seed=seed, reshuffle_each_iteration=True)
  return ds


# --- registration ----------------------------------------------------------------------

def span_corruption_preprocessors(name: str, *, text_key: str = "text",
                                  noise_density: float = NOISE_DENSITY,
                                  mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
                                  docs_per_group: int = DOCS_PER_GROUP) -> list[Any]:
  """The preprocessors of a span-corruption task on documents under `text_key`."""
  span_corruption.check_params(noise_density, mean_noise_span_length)
  if docs_per_group < 1:
    raise ValueError(f"docs_per_group must be >= 1, got {docs_per_group}")
  return [
      functools.partial(text_to_targets, text_key=text_key),
      functools.partial(seqio.preprocessors.tokenize, copy_pretokenized=False),
      seqio.CacheDatasetPlaceholder(),
      functools.partial(concat_and_split, docs_per_group=docs_per_group,
                        noise_density=noise_density,
                        mean_noise_span_length=mean_noise_span_length),
      functools.partial(span_corrupt, noise_density=noise_density,
                        mean_noise_span_length=mean_noise_span_length, task_name=name),
      seqio.preprocessors.append_eos_after_trim,
  ]


def lm_preprocessors(*, text_key: str = "text",
                     docs_per_group: int = DOCS_PER_GROUP) -> list[Any]:
  """The preprocessors of a language-modelling task on documents under `text_key`."""
  if docs_per_group < 1:
    raise ValueError(f"docs_per_group must be >= 1, got {docs_per_group}")
  return [
      functools.partial(text_to_targets, text_key=text_key),
      functools.partial(seqio.preprocessors.tokenize, copy_pretokenized=False),
      seqio.CacheDatasetPlaceholder(),
      functools.partial(lm_chunks, docs_per_group=docs_per_group),
      seqio.preprocessors.append_eos_after_trim,
  ]


def _register_text_task(name: str, source: seqio.DataSource,
                        vocabulary: Optional[seqio.Vocabulary],
                        preprocessors: list[Any]) -> seqio.Task:
  """Registers `name` on `source` with the text features of `vocabulary` (default: the
  project's text vocabulary) and `preprocessors`."""
  vocabulary = vocabulary if vocabulary is not None else text_features.TEXT_VOCABULARY
  return seqio.TaskRegistry.add(
      name, source=source, output_features=text_features.text_features(vocabulary),
      preprocessors=preprocessors, metric_fns=[])


def register_lm_task(name: str, source: seqio.DataSource, *,
                     vocabulary: Optional[seqio.Vocabulary] = None,
                     text_key: str = "text", **kwargs) -> seqio.Task:
  """Registers language modelling of `source`'s documents (`text_key`) as `name`;
  `kwargs` go to `lm_preprocessors`."""
  return _register_text_task(name, source, vocabulary,
                             lm_preprocessors(text_key=text_key, **kwargs))


def register_span_corruption_task(name: str, source: seqio.DataSource, *,
                                  vocabulary: Optional[seqio.Vocabulary] = None,
                                  text_key: str = "text", **kwargs) -> seqio.Task:
  """Registers T5 span corruption of `source`'s documents (`text_key`) as `name`;
  `kwargs` go to `span_corruption_preprocessors`."""
  return _register_text_task(
      name, source, vocabulary,
      span_corruption_preprocessors(name, text_key=text_key, **kwargs))


def _c4_source() -> seqio.DataSource:
  return ReadOnlyTfdsSource(
      C4_TFDS_NAME, C4_SPLITS,
      prepare_note=(" (C4 needs Apache Beam and about 1 TB of scratch space: see "
                    "https://www.tensorflow.org/datasets/catalog/c4)"))


def register_all() -> None:
  """Registers the span-corruption and language-modelling tasks of C4 and the corpus
  (idempotent)."""
  names = seqio.TaskRegistry.names()
  if C4_TASK not in names:
    register_span_corruption_task(C4_TASK, _c4_source())
  if CORPUS_TASK not in names:
    register_span_corruption_task(
        CORPUS_TASK, IndexedSource(corpus_dataset_fn, splits=corpus.SPLITS))
  if C4_LM_TASK not in names:
    register_lm_task(C4_LM_TASK, _c4_source())
  if CORPUS_LM_TASK not in names:
    register_lm_task(CORPUS_LM_TASK, IndexedSource(corpus_dataset_fn, splits=corpus.SPLITS))


register_all()
