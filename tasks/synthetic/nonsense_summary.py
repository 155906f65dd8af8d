"""Nonsense summarization (Krishna, Bigham & Lipton 2021), as pure-Python text.

"Does pretraining for summarization require knowledge transfer?" pre-trains on documents
of random pseudo-words whose "summaries" are produced by 16 elementary transformations
(copy the sentence with a keyword, copy the quoted span, classify a keyword, ...). This
module generates those (document, summary) pairs. Contract:
/work/shared/spec/synthetic_tasks.md, section "Nonsense summarization (Krishna et al.
2021)". No TensorFlow or seqio here; `tasks/nonsense.py` registers the SeqIO task.

Every example is a pure function of (split, seed, index): all draws come from
`generators.example_rng("nonsense_summary", split, seed, index)`, so any host can make its
own shard and a resumed run sees the same data.

One example, in this order of draws:

1. Transformations: 3 distinct ones of the 16 in `TRANSFORMATIONS`
   (`rng.permutation(16)[:3]`), then put in CANONICAL order (the order of
   `TRANSFORMATIONS`, which is the paper's list order). They plant into the document in
   that order, and their outputs are concatenated in that order.
   Deviation: the reference code plants and concatenates in the random draw order,
   which the document does not reveal; canonical order makes the summary a function of
   the document alone (the task is learnable).
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
  It depends on no library's random stream. (The reference code used the first 5,000
  strings in base-26 order; the spec asks for random ones.)
- Planted tokens are never 3 lowercase letters (each has digits or another length), so
  every token of a document is either a pseudo-word ("free" word) or a planted token,
  and each transformation's planted tokens are its own (the sets are disjoint, checked
  at import). Planting replaces a FREE word (so planted tokens are never overwritten)
  except CopyQuoted and CopyBulleted, which INSERT marker tokens. So a sentence holds
  its 5..15 words (pseudo-words and replacement-planted tokens) plus at most 3 inserted
  markers (bullet, bquote, equote).
- The reference code marks keywords as `__d3__keyword_0__`; these tokens use only
  lowercase letters and digits so that any natural-text SentencePiece model encodes and
  decodes them exactly.

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
import hashlib
import itertools
import re
import string
from typing import Optional, Sequence

import numpy as np

from tasks.synthetic.generators import example_rng

TASK_NAME = "nonsense_summary"
INPUT_PREFIX = "summarize: "
SPLIT_SIZES = {"train": 100_000, "validation": 5_000, "test": 5_000}
DATA_SEED = 0
NUM_WORDS = 5_000
NUM_SENTENCES = (7, 13)  # 10 +- 3, inclusive
SENTENCE_WORDS = (5, 15)  # 10 +- 5, inclusive
NUM_TRANSFORMS = 3

Sentence = list  # list[str]: a sentence's tokens, without its final "."
Document = list  # list[Sentence]


def _make_words() -> tuple[str, ...]:
  def rank(w: str) -> bytes:
    return hashlib.sha256(f"nonsense_summary_words:{w}".encode()).digest()
  every = ("".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3))
  return tuple(sorted(sorted(every, key=rank)[:NUM_WORDS]))


WORDS: tuple[str, ...] = _make_words()
WORD_SET = frozenset(WORDS)
_PSEUDO_WORD = re.compile(r"[a-z]{3}")


def is_free(token: str) -> bool:
  """True for a pseudo-word (not a planted token)."""
  return token in WORD_SET


def render(tokens: Sequence[str]) -> str:
  """A sentence or summary line: the tokens, then " ."."""
  return " ".join([*tokens, "."])


# ------------------------------------------------------------------ planting helpers


def _free_positions(sent: Sentence, *, first: int = 0, after: int = 0) -> list[int]:
  """Positions i >= first of free words with at least `after` tokens after them."""
  return [i for i in range(first, len(sent) - after) if sent[i] in WORD_SET]


def _num_free(sent: Sentence, first: int, after: int) -> int:
  return sum(map(WORD_SET.__contains__, sent[first:len(sent) - after]))


def _choose_sentences(doc: Document, rng: np.random.Generator, k: int, *,
                      min_free: int = 1, first: int = 0, after: int = 0) -> list[int]:
  """k distinct sentences (document order) with >= min_free eligible free positions."""
  eligible = [s for s, sent in enumerate(doc) if _num_free(sent, first, after) >= min_free]
  if len(eligible) < k:
    raise RuntimeError(f"Only {len(eligible)} sentences can take a planted token, "
                       f"{k} needed; the document-size invariant is broken.")
  return sorted(eligible[j] for j in _distinct(rng, len(eligible), k))


def _replace_one(sent: Sentence, rng: np.random.Generator, token: str, *,
                 first: int = 0, after: int = 0) -> None:
  """Replaces a uniformly chosen eligible free word of `sent` by `token`."""
  positions = _free_positions(sent, first=first, after=after)
  sent[positions[int(rng.integers(len(positions)))]] = token


def _plant_in_sentences(doc: Document, rng: np.random.Generator,
                        tokens: Sequence[str], **where: int) -> None:
  """Plants tokens[j] into the j-th of len(tokens) distinct random sentences."""
  for s, token in zip(_choose_sentences(doc, rng, len(tokens), **where), tokens):
    _replace_one(doc[s], rng, token, **where)


def _distinct(rng: np.random.Generator, n: int, k: int) -> list[int]:
  """k distinct uniform draws from range(n), in random order."""
  return rng.permutation(n)[:k].tolist()


def _pick(rng: np.random.Generator, options: Sequence[str], k: Optional[int] = None,
          replace: bool = True) -> list[str]:
  """One uniform draw from `options` (k=None), or k draws with/without replacement."""
  if k is None:
    return [options[int(rng.integers(len(options)))]]
  idx = rng.integers(len(options), size=k).tolist() if replace else _distinct(
      rng, len(options), k)
  return [options[j] for j in idx]


def _find(doc: Document, tokens: frozenset) -> list[tuple[int, int, str]]:
  """(sentence, position, token) of every occurrence of `tokens`, in document order."""
  return [(s, i, t) for s, sent in enumerate(doc) if not tokens.isdisjoint(sent)
          for i, t in enumerate(sent) if t in tokens]


def _the_one(doc: Document, tokens: frozenset, name: str) -> tuple[int, int, str]:
  hits = _find(doc, tokens)
  if len(hits) != 1:
    raise ValueError(f"{name}: expected exactly one planted token, found {hits}")
  return hits[0]


def _numbered(tag: str, n: int, start: int = 0) -> tuple[str, ...]:
  return tuple(f"{tag}{i}" for i in range(start, start + n))


# ------------------------------------------------------------------ transformations


class Transformation:
  """One transformation: `plant` edits the document in place, `output` reads it.

  `planted`: every token `plant` may put in a document (disjoint across
  transformations). `output(doc)` returns summary lines (token lists, " ." added by
  `render`) computed from the document alone.
  """

  name: str = ""
  planted: tuple[str, ...] = ()

  def __init__(self) -> None:
    self.name = type(self).__name__
    self.planted_set = frozenset(self.planted)

  def plant(self, doc: Document, rng: np.random.Generator) -> None:
    raise NotImplementedError

  def output(self, doc: Document) -> list[list[str]]:
    raise NotImplementedError


class CopyKeywordOneSentence(Transformation):
  """Plants one keyword of onekw0..onekw9 (uniform) in place of a free word of one
  random sentence. Output: that sentence, verbatim."""

  planted = _numbered("onekw", 10)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted))

  def output(self, doc):
    s, _, _ = _the_one(doc, self.planted_set, self.name)
    return [list(doc[s])]


class CopyKeywordMultipleSentences(Transformation):
  """Plants 3 keywords of multikw0..multikw9 (uniform, with replacement) in 3 distinct
  random sentences, one each. Output: those 3 sentences in document order."""

  planted = _numbered("multikw", 10)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, 3, replace=True))

  def keyword_sentences(self, doc: Document) -> list[int]:
    return sorted({s for s, _, _ in _find(doc, self.planted_set)})

  def output(self, doc):
    return [list(doc[s]) for s in self.keyword_sentences(doc)]


class CopyKeywordMultipleSentencesShuffled(CopyKeywordMultipleSentences):
  """Plants 3 keywords of shufkw0..shufkw9 (with replacement) in 3 distinct sentences.
  Output: those 3 sentences in REVERSE document order.

  Deviation: the reference code outputs them in a random order, which no model can
  recover from the document; reverse order is our fixed, learnable "shuffle"."""

  planted = _numbered("shufkw", 10)

  def output(self, doc):
    return [list(doc[s]) for s in reversed(self.keyword_sentences(doc))]


class CopyKeywordMultipleSentencesSorted(CopyKeywordMultipleSentences):
  """Plants 3 DISTINCT keywords of sortkw0..sortkw9 in 3 distinct sentences. Output:
  those 3 sentences ordered by their keyword's number (sortkw0 first), as in the
  reference code (which sorts by keyword)."""

  planted = _numbered("sortkw", 10)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, 3, replace=False))

  def output(self, doc):
    hits = sorted(_find(doc, self.planted_set), key=lambda h: int(h[2][len("sortkw"):]))
    return [list(doc[s]) for s, _, _ in hits]


class CopyQuoted(Transformation):
  """Encloses a random non-empty contiguous span of one random sentence's tokens in
  the INSERTED markers bquote ... equote (the span never includes the final "." and
  never starts before a leading bullet). Output: the tokens between the markers.

  The reference code's span may swallow the sentence's "."; ours stays inside the
  sentence so every sentence still ends in " ."."""

  planted = ("bquote", "equote")

  def plant(self, doc, rng):
    sent = doc[int(rng.integers(len(doc)))]
    first = 1 if sent and sent[0] == "bullet" else 0
    begin = int(rng.integers(first, len(sent)))
    end = int(rng.integers(begin + 1, len(sent) + 1))  # exclusive
    sent[begin:end] = ["bquote", *sent[begin:end], "equote"]

  def output(self, doc):
    s, b, _ = _the_one(doc, frozenset({"bquote"}), self.name)
    return [doc[s][b + 1:doc[s].index("equote")]]


class CopyBulleted(Transformation):
  """INSERTS the marker bullet as the first token of one random sentence. Output: that
  sentence without the marker."""

  planted = ("bullet",)

  def plant(self, doc, rng):
    doc[int(rng.integers(len(doc)))].insert(0, "bullet")

  def output(self, doc):
    s, i, _ = _the_one(doc, self.planted_set, self.name)
    assert i == 0, (doc[s], "the bullet must lead its sentence")
    return [doc[s][1:]]


class ClassifyKeyword(Transformation):
  """Plants one keyword of clskw0..clskw9 in one random sentence. clskw0-4 are
  "positive", clskw5-9 "negative" (a fixed class table the model must learn). Output:
  "the keyword was positive ." or "the keyword was negative ."."""

  planted = _numbered("clskw", 10)
  positive = frozenset(_numbered("clskw", 5))

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted))

  def output(self, doc):
    _, _, kw = _the_one(doc, self.planted_set, self.name)
    label = "positive" if kw in self.positive else "negative"
    return [["the", "keyword", "was", label]]


class ReplaceClassKeyword(Transformation):
  """Plants one keyword of repkw0..repkw8 in one random sentence; repkw{i} belongs to
  class i // 3, named repclass0, repclass1, repclass2 (a fixed table to learn). Output:
  that sentence with the keyword replaced by its class name."""

  planted = _numbered("repkw", 9)
  class_names = _numbered("repclass", 3)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted))

  def output(self, doc):
    s, i, kw = _the_one(doc, self.planted_set, self.name)
    out = list(doc[s])
    out[i] = self.class_names[self.planted.index(kw) // 3]
    return [out]


class MajorityKeyword(Transformation):
  """Plants m keywords, m uniform in {3, 5} (odd, so there is a strict majority), each
  uniformly majkw1 or majkw2, in m distinct sentences. Output: "the majority keyword
  is majkwK ." for the keyword planted more often."""

  planted = ("majkw1", "majkw2")

  def plant(self, doc, rng):
    m = 3 if rng.integers(2) == 0 else 5
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, m, replace=True))

  def output(self, doc):
    kws = [t for _, _, t in _find(doc, self.planted_set)]
    top = max(self.planted, key=kws.count)
    return [["the", "majority", "keyword", "is", top]]


class TopicSegregation(Transformation):
  """Plants m ~ U{2..5} keywords of topkw0..topkw8 (with replacement) in m distinct
  sentences; topkw{i} belongs to topic i // 3, named topic0, topic1, topic2. Output, for
  each topic in order: a heading line "section topicK ." and then the sentences holding
  that topic's keywords, in document order (a topic without sentences keeps its
  heading, as in the reference code)."""

  planted = _numbered("topkw", 9)
  topic_names = _numbered("topic", 3)

  def plant(self, doc, rng):
    m = int(rng.integers(2, 6))
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, m, replace=True))

  def output(self, doc):
    lines = []
    hits = _find(doc, self.planted_set)
    for c, topic in enumerate(self.topic_names):
      lines.append(["section", topic])
      lines += [list(doc[s]) for s, _, t in hits if self.planted.index(t) // 3 == c]
    return lines


class ThresholdNumber(Transformation):
  """Plants one number token thr{n}, n ~ U{0..99}, in one random sentence. Output:
  "the number was above or equal to threshold ." if n >= 50, else "the number was
  below threshold ." (the reference code's threshold and wording)."""

  planted = _numbered("thr", 100)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted))

  def output(self, doc):
    _, _, tok = _the_one(doc, self.planted_set, self.name)
    if int(tok[len("thr"):]) >= 50:
      return [["the", "number", "was", "above", "or", "equal", "to", "threshold"]]
    return [["the", "number", "was", "below", "threshold"]]


class LargestNumber(Transformation):
  """Plants k ~ U{1..4} DISTINCT number tokens num{n}, n in 0..99, in k distinct
  sentences. Output: "the largest number is N ." with N the largest n, written as a
  plain decimal (no "num")."""

  planted = _numbered("num", 100)

  def plant(self, doc, rng):
    k = int(rng.integers(1, 5))
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, k, replace=False))

  def output(self, doc):
    largest = max(int(t[len("num"):]) for _, _, t in _find(doc, self.planted_set))
    return [["the", "largest", "number", "is", str(largest)]]


class ParaphraseWords(Transformation):
  """Plants one source word srcw{k}, k ~ U{0..19}, in one random sentence. Output: that
  sentence with srcw{k} replaced by its paraphrase tgtw{k}.

  Deviation: the reference code has 3 paraphrases per source word and picks one at
  random when writing the summary, which the document cannot predict; we use one fixed
  paraphrase per source word."""

  planted = _numbered("srcw", 20)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted))

  def output(self, doc):
    s, i, tok = _the_one(doc, self.planted_set, self.name)
    out = list(doc[s])
    out[i] = "tgtw" + tok[len("srcw"):]
    return [out]


class JoinClauses(Transformation):
  """Plants 3 DISTINCT joiners of join0..join4 in 3 distinct sentences, each in place
  of a free word that has at least one token after it. Output: one line "the combined
  sentence is" followed, for each joiner sentence in document order, by the joiner and
  every token after it in its sentence (the reference code's rule)."""

  planted = _numbered("join", 5)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted, 3, replace=False), after=1)

  def output(self, doc):
    line = ["the", "combined", "sentence", "is"]
    for s, i, _ in _find(doc, self.planted_set):
      line += doc[s][i:]
    return [line]


class BreakClauses(Transformation):
  """Plants 2 DISTINCT joiners of brk0..brk4 (in random order) at 2 distinct free
  positions i < j of one random sentence with >= 2 free words. Output: two lines, the
  sentence's prefix before i followed by tokens i..j-1, and the same prefix followed by
  tokens j..end (the reference code's rule: each clause keeps the shared prefix)."""

  planted = _numbered("brk", 5)

  def plant(self, doc, rng):
    (s,) = _choose_sentences(doc, rng, 1, min_free=2)
    positions = _free_positions(doc[s])
    i, j = sorted(positions[p] for p in _distinct(rng, len(positions), 2))
    doc[s][i], doc[s][j] = _pick(rng, self.planted, 2, replace=False)

  def output(self, doc):
    hits = _find(doc, self.planted_set)
    if len(hits) != 2 or hits[0][0] != hits[1][0]:
      raise ValueError(f"{self.name}: expected two joiners in one sentence, got {hits}")
    (s, i, _), (_, j, _) = hits
    sent = doc[s]
    return [sent[:i] + sent[i:j], sent[:i] + sent[j:]]


class TruncateSentence(Transformation):
  """Plants one keyword of cut0..cut9 in place of a free word at position >= 1 of one
  random sentence. Output: the tokens before the keyword (never empty)."""

  planted = _numbered("cut", 10)

  def plant(self, doc, rng):
    _plant_in_sentences(doc, rng, _pick(rng, self.planted), first=1)

  def output(self, doc):
    s, i, _ = _the_one(doc, self.planted_set, self.name)
    return [doc[s][:i]]


# The paper's list order, which is also the canonical planting and summary order.
TRANSFORMATIONS: tuple[Transformation, ...] = tuple(cls() for cls in (
    CopyKeywordOneSentence, CopyKeywordMultipleSentences,
    CopyKeywordMultipleSentencesShuffled, CopyKeywordMultipleSentencesSorted,
    CopyQuoted, CopyBulleted, ClassifyKeyword, ReplaceClassKeyword, MajorityKeyword,
    TopicSegregation, ThresholdNumber, LargestNumber, ParaphraseWords, JoinClauses,
    BreakClauses, TruncateSentence))
TRANSFORMATION_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSFORMATIONS)
_BY_NAME = {t.name: t for t in TRANSFORMATIONS}
PLANTED_TOKENS = frozenset().union(*(t.planted_set for t in TRANSFORMATIONS))


def _check_tokens() -> None:
  total = sum(len(t.planted) for t in TRANSFORMATIONS)
  if total != len(PLANTED_TOKENS):
    raise AssertionError("planted token sets of two transformations overlap")
  bad = [t for t in PLANTED_TOKENS if _PSEUDO_WORD.fullmatch(t) or not t.isalnum()]
  if bad or len(WORDS) != NUM_WORDS:
    raise AssertionError(f"planted tokens that look like pseudo-words: {bad}")


_check_tokens()


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
    chosen = sorted(_distinct(rng, len(TRANSFORMATIONS), NUM_TRANSFORMS))
  else:
    unknown = [n for n in transformations if n not in _BY_NAME]
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
