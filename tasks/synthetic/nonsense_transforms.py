"""The 16 transformations of nonsense summarization: what each plants and outputs.

Each `Transformation` plants its own tokens into a document (`plant`) and writes summary
lines read from the final document alone (`output`); `TRANSFORMATIONS` is the paper's
list order, the canonical planting and summary order (`tasks/synthetic/nonsense_summary.py`).
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.nonsense_words import (NUM_WORDS, PSEUDO_WORD, WORDS, Document,
                                            choose_sentences, distinct, find,
                                            free_positions, numbered, pick,
                                            plant_in_sentences, the_one)

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

  planted = numbered("onekw", 10)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted))

  def output(self, doc):
    s, _, _ = the_one(doc, self.planted_set, self.name)
    return [list(doc[s])]


class CopyKeywordMultipleSentences(Transformation):
  """Plants 3 keywords of multikw0..multikw9 (uniform, with replacement) in 3 distinct
  random sentences, one each. Output: those 3 sentences in document order."""

  planted = numbered("multikw", 10)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted, 3, replace=True))

  def keyword_sentences(self, doc: Document) -> list[int]:
    return sorted({s for s, _, _ in find(doc, self.planted_set)})

  def output(self, doc):
    return [list(doc[s]) for s in self.keyword_sentences(doc)]


class CopyKeywordMultipleSentencesShuffled(CopyKeywordMultipleSentences):
  """Plants 3 keywords of shufkw0..shufkw9 (with replacement) in 3 distinct sentences.
  Output: those 3 sentences in REVERSE document order.

  Deviation: the reference code outputs them in a random order, which no model can
  recover from the document; reverse order is our fixed, learnable "shuffle"."""

  planted = numbered("shufkw", 10)

  def output(self, doc):
    return [list(doc[s]) for s in reversed(self.keyword_sentences(doc))]


class CopyKeywordMultipleSentencesSorted(CopyKeywordMultipleSentences):
  """Plants 3 DISTINCT keywords of sortkw0..sortkw9 in 3 distinct sentences. Output:
  those 3 sentences ordered by their keyword's number (sortkw0 first), as in the
  reference code (which sorts by keyword)."""

  planted = numbered("sortkw", 10)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted, 3, replace=False))

  def output(self, doc):
    hits = sorted(find(doc, self.planted_set), key=lambda h: int(h[2][len("sortkw"):]))
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
    s, b, _ = the_one(doc, frozenset({"bquote"}), self.name)
    return [doc[s][b + 1:doc[s].index("equote")]]


class CopyBulleted(Transformation):
  """INSERTS the marker bullet as the first token of one random sentence. Output: that
  sentence without the marker."""

  planted = ("bullet",)

  def plant(self, doc, rng):
    doc[int(rng.integers(len(doc)))].insert(0, "bullet")

  def output(self, doc):
    s, i, _ = the_one(doc, self.planted_set, self.name)
    assert i == 0, (doc[s], "the bullet must lead its sentence")
    return [doc[s][1:]]


class ClassifyKeyword(Transformation):
  """Plants one keyword of clskw0..clskw9 in one random sentence. clskw0-4 are
  "positive", clskw5-9 "negative" (a fixed class table the model must learn). Output:
  "the keyword was positive ." or "the keyword was negative ."."""

  planted = numbered("clskw", 10)
  positive = frozenset(numbered("clskw", 5))

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted))

  def output(self, doc):
    _, _, kw = the_one(doc, self.planted_set, self.name)
    label = "positive" if kw in self.positive else "negative"
    return [["the", "keyword", "was", label]]


class ReplaceClassKeyword(Transformation):
  """Plants one keyword of repkw0..repkw8 in one random sentence; repkw{i} belongs to
  class i // 3, named repclass0, repclass1, repclass2 (a fixed table to learn). Output:
  that sentence with the keyword replaced by its class name."""

  planted = numbered("repkw", 9)
  class_names = numbered("repclass", 3)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted))

  def output(self, doc):
    s, i, kw = the_one(doc, self.planted_set, self.name)
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
    plant_in_sentences(doc, rng, pick(rng, self.planted, m, replace=True))

  def output(self, doc):
    kws = [t for _, _, t in find(doc, self.planted_set)]
    top = max(self.planted, key=kws.count)
    return [["the", "majority", "keyword", "is", top]]


class TopicSegregation(Transformation):
  """Plants m ~ U{2..5} keywords of topkw0..topkw8 (with replacement) in m distinct
  sentences; topkw{i} belongs to topic i // 3, named topic0, topic1, topic2. Output, for
  each topic in order: a heading line "section topicK ." and then the sentences holding
  that topic's keywords, in document order (a topic without sentences keeps its
  heading, as in the reference code)."""

  planted = numbered("topkw", 9)
  topic_names = numbered("topic", 3)

  def plant(self, doc, rng):
    m = int(rng.integers(2, 6))
    plant_in_sentences(doc, rng, pick(rng, self.planted, m, replace=True))

  def output(self, doc):
    lines = []
    hits = find(doc, self.planted_set)
    for c, topic in enumerate(self.topic_names):
      lines.append(["section", topic])
      lines += [list(doc[s]) for s, _, t in hits if self.planted.index(t) // 3 == c]
    return lines


class ThresholdNumber(Transformation):
  """Plants one number token thr{n}, n ~ U{0..99}, in one random sentence. Output:
  "the number was above or equal to threshold ." if n >= 50, else "the number was
  below threshold ." (the reference code's threshold and wording)."""

  planted = numbered("thr", 100)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted))

  def output(self, doc):
    _, _, tok = the_one(doc, self.planted_set, self.name)
    if int(tok[len("thr"):]) >= 50:
      return [["the", "number", "was", "above", "or", "equal", "to", "threshold"]]
    return [["the", "number", "was", "below", "threshold"]]


class LargestNumber(Transformation):
  """Plants k ~ U{1..4} DISTINCT number tokens num{n}, n in 0..99, in k distinct
  sentences. Output: "the largest number is N ." with N the largest n, written as a
  plain decimal (no "num")."""

  planted = numbered("num", 100)

  def plant(self, doc, rng):
    k = int(rng.integers(1, 5))
    plant_in_sentences(doc, rng, pick(rng, self.planted, k, replace=False))

  def output(self, doc):
    largest = max(int(t[len("num"):]) for _, _, t in find(doc, self.planted_set))
    return [["the", "largest", "number", "is", str(largest)]]


class ParaphraseWords(Transformation):
  """Plants one source word srcw{k}, k ~ U{0..19}, in one random sentence. Output: that
  sentence with srcw{k} replaced by its paraphrase tgtw{k}.

  Deviation: the reference code has 3 paraphrases per source word and picks one at
  random when writing the summary, which the document cannot predict; we use one fixed
  paraphrase per source word."""

  planted = numbered("srcw", 20)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted))

  def output(self, doc):
    s, i, tok = the_one(doc, self.planted_set, self.name)
    out = list(doc[s])
    out[i] = "tgtw" + tok[len("srcw"):]
    return [out]


class JoinClauses(Transformation):
  """Plants 3 DISTINCT joiners of join0..join4 in 3 distinct sentences, each in place
  of a free word that has at least one token after it. Output: one line "the combined
  sentence is" followed, for each joiner sentence in document order, by the joiner and
  every token after it in its sentence (the reference code's rule)."""

  planted = numbered("join", 5)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted, 3, replace=False), after=1)

  def output(self, doc):
    line = ["the", "combined", "sentence", "is"]
    for s, i, _ in find(doc, self.planted_set):
      line += doc[s][i:]
    return [line]


class BreakClauses(Transformation):
  """Plants 2 DISTINCT joiners of brk0..brk4 (in random order) at 2 distinct free
  positions i < j of one random sentence with >= 2 free words. Output: two lines, the
  sentence's prefix before i followed by tokens i..j-1, and the same prefix followed by
  tokens j..end (the reference code's rule: each clause keeps the shared prefix)."""

  planted = numbered("brk", 5)

  def plant(self, doc, rng):
    (s,) = choose_sentences(doc, rng, 1, min_free=2)
    positions = free_positions(doc[s])
    i, j = sorted(positions[p] for p in distinct(rng, len(positions), 2))
    doc[s][i], doc[s][j] = pick(rng, self.planted, 2, replace=False)

  def output(self, doc):
    hits = find(doc, self.planted_set)
    if len(hits) != 2 or hits[0][0] != hits[1][0]:
      raise ValueError(f"{self.name}: expected two joiners in one sentence, got {hits}")
    (s, i, _), (_, j, _) = hits
    sent = doc[s]
    return [sent[:i] + sent[i:j], sent[:i] + sent[j:]]


class TruncateSentence(Transformation):
  """Plants one keyword of cut0..cut9 in place of a free word at position >= 1 of one
  random sentence. Output: the tokens before the keyword (never empty)."""

  planted = numbered("cut", 10)

  def plant(self, doc, rng):
    plant_in_sentences(doc, rng, pick(rng, self.planted), first=1)

  def output(self, doc):
    s, i, _ = the_one(doc, self.planted_set, self.name)
    return [doc[s][:i]]


# The paper's list order, which is also the canonical planting and summary order.
TRANSFORMATIONS: tuple[Transformation, ...] = tuple(cls() for cls in (
    CopyKeywordOneSentence, CopyKeywordMultipleSentences,
    CopyKeywordMultipleSentencesShuffled, CopyKeywordMultipleSentencesSorted,
    CopyQuoted, CopyBulleted, ClassifyKeyword, ReplaceClassKeyword, MajorityKeyword,
    TopicSegregation, ThresholdNumber, LargestNumber, ParaphraseWords, JoinClauses,
    BreakClauses, TruncateSentence))
TRANSFORMATION_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSFORMATIONS)
BY_NAME = {t.name: t for t in TRANSFORMATIONS}
PLANTED_TOKENS = frozenset().union(*(t.planted_set for t in TRANSFORMATIONS))


def _check_tokens() -> None:
  total = sum(len(t.planted) for t in TRANSFORMATIONS)
  if total != len(PLANTED_TOKENS):
    raise AssertionError("planted token sets of two transformations overlap")
  bad = [t for t in PLANTED_TOKENS if PSEUDO_WORD.fullmatch(t) or not t.isalnum()]
  if bad or len(WORDS) != NUM_WORDS:
    raise AssertionError(f"planted tokens that look like pseudo-words: {bad}")


_check_tokens()
