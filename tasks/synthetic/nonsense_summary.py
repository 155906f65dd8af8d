"""Nonsense summarization (Krishna, Bigham & Lipton 2021), as pure-Python text.

"Does pretraining for summarization require knowledge transfer?" pre-trains on documents
of random pseudo-words whose "summaries" are produced by 16 elementary transformations
(copy the sentence with a keyword, copy the quoted span, classify a keyword, ...). This
module generates those (document, summary) pairs (the transformations:
`tasks/synthetic/nonsense_transforms.py`; words and planting helpers:
`tasks/synthetic/nonsense_words.py`). No TensorFlow or seqio here; `tasks/nonsense.py`
registers the SeqIO task. docs/tasks.md lists where this follows the reference code and
where it deviates.

Every example is a pure function of (split, seed, index): all draws come from
`seeding.example_rng("nonsense_summary", split, seed, index)`, so any host can make its
own shard and a resumed run sees the same data.

One example, in this order of draws:

1. Transformations: 3 distinct ones of the 16 in `TRANSFORMATIONS`
   (`rng.permutation(16)[:3]`), then put in CANONICAL order (the order of
   `TRANSFORMATIONS`, which is the paper's list order). They plant into the document in
   that order, and their outputs are concatenated in that order, so the summary is a
   function of the document alone.
2. Document: n ~ U{7..13} sentences (10 +- 3), sentence k has m_k ~ U{5..15} words
   (10 +- 5), each word uniform over the 5,000 pseudo-words of `WORDS`.
3. Each chosen transformation plants its tokens (see each class's docstring).
4. Each chosen transformation reads the FINAL document and writes its summary lines.

Text format:
- A sentence is its tokens joined by single spaces followed by " ."; the document is
  its sentences joined by single spaces ("abc dfe qxz . kwo ... ."). Summary lines have
  the same form; the summary is all lines of all three outputs joined by single spaces.
- Inputs = `INPUT_PREFIX` ("summarize: ", T5's summarization prefix, so a model
  fine-tuned later on a summarization task with that prefix sees a familiar task cue)
  + the document. Targets = the summary. No EOS here (SeqIO appends it).

Pseudo-words and planted tokens:
- `WORDS`: 5,000 distinct 3-letter lowercase strings, a fixed list: all 26**3 strings
  ranked by SHA-256 of "nonsense_summary_words:" + word, the first 5,000 kept (sorted).
  It depends on no library's random stream.
- Planted tokens are never 3 lowercase letters (each has digits or another length), so
  every token of a document is either a pseudo-word ("free" word) or a planted token,
  and each transformation's planted tokens are its own (the sets are disjoint, checked
  at import). Planting replaces a FREE word (so planted tokens are never overwritten)
  except CopyQuoted and CopyBulleted, which INSERT marker tokens. So a sentence holds
  its 5..15 words (pseudo-words and replacement-planted tokens) plus at most 3 inserted
  markers (bullet, bquote, equote).
- Planted tokens use only lowercase letters and digits, so that any natural-text
  SentencePiece model encodes and decodes them exactly.

Transformation tokens (all in the class docstrings): onekw0-9, multikw0-9, shufkw0-9,
sortkw0-9, bquote/equote, bullet, clskw0-9, repkw0-8 (-> repclass0-2), majkw1/majkw2,
topkw0-8 (-> topic0-2), thr0-99, num0-99, srcw0-19 (-> tgtw0-19), join0-4, brk0-4,
cut0-9. Tokens after "->" appear only in summaries.

Planting never runs out of room: at most 14 words are replaced per document (Majority 5
+ TopicSegregation 5 + Largest 4) among >= 35 words in >= 7 sentences of >= 5 words, so
at most 2 sentences can be full, leaving >= 5 eligible ones for a 5-sentence plant; a
RuntimeError guards the invariant anyway.

Splits: train 100,000 / validation 5,000 / test 5,000 examples (the paper's sizes).
An index at or beyond the split size raises IndexError (the data is finite; the
training pipeline repeats a finite split, seqio `num_epochs=None`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from tasks.synthetic.nonsense_transforms import (BY_NAME, TRANSFORMATION_NAMES,
                                                 TRANSFORMATIONS)
from tasks.synthetic.nonsense_words import NUM_WORDS, WORDS, Document, distinct, render
from tasks.synthetic.seeding import example_rng

TASK_NAME = "nonsense_summary"
INPUT_PREFIX = "summarize: "
SPLIT_SIZES = {"train": 100_000, "validation": 5_000, "test": 5_000}
DATA_SEED = 0
NUM_SENTENCES = (7, 13)  # 10 +- 3, inclusive
SENTENCE_WORDS = (5, 15)  # 10 +- 5, inclusive
NUM_TRANSFORMS = 3


# ------------------------------------------------------------------ examples


@dataclasses.dataclass(frozen=True)
class NonsenseExample:
  """One example. `parts[k]` is the output text of `transformations[k]`."""

  document: str
  summary: str
  transformations: tuple[str, ...]
  parts: tuple[str, ...]

  @property
  def inputs(self) -> str:
    return INPUT_PREFIX + self.document

  @property
  def targets(self) -> str:
    return self.summary


def build_example(rng: np.random.Generator,
                  transformations: Optional[Sequence[str]] = None) -> NonsenseExample:
  """Draws one example from `rng` (steps 1-4 of the module docstring).

  `transformations`: names to apply instead of drawing 3 (any number of distinct
  ones; for tests and inspection). They are applied in canonical order.
  """
  if transformations is None:
    chosen = sorted(distinct(rng, len(TRANSFORMATIONS), NUM_TRANSFORMS))
  else:
    unknown = [n for n in transformations if n not in BY_NAME]
    if unknown or len(set(transformations)) != len(transformations):
      raise ValueError(f"transformations must be distinct names of "
                       f"{TRANSFORMATION_NAMES}; got {list(transformations)}")
    chosen = sorted(TRANSFORMATION_NAMES.index(n) for n in transformations)
  lo, hi = NUM_SENTENCES
  lengths = rng.integers(SENTENCE_WORDS[0], SENTENCE_WORDS[1] + 1,
                         size=int(rng.integers(lo, hi + 1)))
  ids = rng.integers(0, NUM_WORDS, size=int(lengths.sum())).tolist()
  bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
  doc: Document = [[WORDS[w] for w in ids[a:b]] for a, b in zip(bounds, bounds[1:])]
  steps = [TRANSFORMATIONS[k] for k in chosen]
  for t in steps:
    t.plant(doc, rng)
  parts = tuple(" ".join(render(line) for line in t.output(doc)) for t in steps)
  return NonsenseExample(document=" ".join(render(s) for s in doc),
                         summary=" ".join(parts),
                         transformations=tuple(t.name for t in steps), parts=parts)


def _check_split_index(split: str, index: int) -> None:
  if split not in SPLIT_SIZES:
    raise ValueError(f"Unknown split {split!r}; nonsense_summary has "
                     f"{sorted(SPLIT_SIZES)}")
  if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
    raise ValueError(f"index must be an int, got {index!r}")
  if not 0 <= index < SPLIT_SIZES[split]:
    raise IndexError(f"index {index} is outside the {split!r} split of "
                     f"{SPLIT_SIZES[split]} examples (0..{SPLIT_SIZES[split] - 1})")


def generate_example(split: str, seed: int, index: int) -> NonsenseExample:
  """Example `index` of `split`: a pure function of (split, seed, index)."""
  _check_split_index(split, index)
  return build_example(example_rng(TASK_NAME, split, seed, int(index)))


def generate(split: str, seed: int, index: int) -> tuple[str, str]:
  """(inputs, targets) text of example `index` of `split`."""
  ex = generate_example(split, seed, index)
  return ex.inputs, ex.targets
