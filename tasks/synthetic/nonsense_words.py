"""The nonsense-summary documents' vocabulary and the planting helpers of its transformations.

`WORDS` are the 5,000 pseudo-words a document is drawn from; a sentence is a list of
tokens (`Sentence`), a document a list of sentences (`Document`). The helpers choose
sentences and free words with the example's numpy Generator; their draws are part of
every example, so changing one changes the data (`tests/test_nonsense_summary.py` pins
it).
"""
from __future__ import annotations

import hashlib
import itertools
import re
import string
from typing import Optional, Sequence

import numpy as np

NUM_WORDS = 5_000

Sentence = list  # list[str]: a sentence's tokens, without its final "."
Document = list  # list[Sentence]


def make_words() -> tuple[str, ...]:
  def rank(w: str) -> bytes:
    return hashlib.sha256(f"nonsense_summary_words:{w}".encode()).digest()
  every = ("".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3))
  return tuple(sorted(sorted(every, key=rank)[:NUM_WORDS]))


WORDS: tuple[str, ...] = make_words()
WORD_SET = frozenset(WORDS)
PSEUDO_WORD = re.compile(r"[a-z]{3}")


def is_free(token: str) -> bool:
  """True for a pseudo-word (not a planted token)."""
  return token in WORD_SET


def render(tokens: Sequence[str]) -> str:
  """A sentence or summary line: the tokens, then " ."."""
  return " ".join([*tokens, "."])


# ------------------------------------------------------------------ planting helpers


def free_positions(sent: Sentence, *, first: int = 0, after: int = 0) -> list[int]:
  """Positions i >= first of free words with at least `after` tokens after them."""
  return [i for i in range(first, len(sent) - after) if sent[i] in WORD_SET]


def num_free(sent: Sentence, first: int, after: int) -> int:
  return sum(map(WORD_SET.__contains__, sent[first:len(sent) - after]))


def choose_sentences(doc: Document, rng: np.random.Generator, k: int, *,
                      min_free: int = 1, first: int = 0, after: int = 0) -> list[int]:
  """k distinct sentences (document order) with >= min_free eligible free positions."""
  eligible = [s for s, sent in enumerate(doc) if num_free(sent, first, after) >= min_free]
  if len(eligible) < k:
    raise RuntimeError(f"Only {len(eligible)} sentences can take a planted token, "
                       f"{k} needed; the document-size invariant is broken.")
  return sorted(eligible[j] for j in distinct(rng, len(eligible), k))


def replace_one(sent: Sentence, rng: np.random.Generator, token: str, *,
                 first: int = 0, after: int = 0) -> None:
  """Replaces a uniformly chosen eligible free word of `sent` by `token`."""
  positions = free_positions(sent, first=first, after=after)
  sent[positions[int(rng.integers(len(positions)))]] = token


def plant_in_sentences(doc: Document, rng: np.random.Generator,
                        tokens: Sequence[str], **where: int) -> None:
  """Plants tokens[j] into the j-th of len(tokens) distinct random sentences."""
  for s, token in zip(choose_sentences(doc, rng, len(tokens), **where), tokens):
    replace_one(doc[s], rng, token, **where)


def distinct(rng: np.random.Generator, n: int, k: int) -> list[int]:
  """k distinct uniform draws from range(n), in random order."""
  return rng.permutation(n)[:k].tolist()


def pick(rng: np.random.Generator, options: Sequence[str], k: Optional[int] = None,
          replace: bool = True) -> list[str]:
  """One uniform draw from `options` (k=None), or k draws with/without replacement."""
  if k is None:
    return [options[int(rng.integers(len(options)))]]
  idx = rng.integers(len(options), size=k).tolist() if replace else distinct(
      rng, len(options), k)
  return [options[j] for j in idx]


def find(doc: Document, tokens: frozenset) -> list[tuple[int, int, str]]:
  """(sentence, position, token) of every occurrence of `tokens`, in document order."""
  return [(s, i, t) for s, sent in enumerate(doc) if not tokens.isdisjoint(sent)
          for i, t in enumerate(sent) if t in tokens]


def the_one(doc: Document, tokens: frozenset, name: str) -> tuple[int, int, str]:
  hits = find(doc, tokens)
  if len(hits) != 1:
    raise ValueError(f"{name}: expected exactly one planted token, found {hits}")
  return hits[0]


def numbered(tag: str, n: int, start: int = 0) -> tuple[str, ...]:
  return tuple(f"{tag}{i}" for i in range(start, start + n))
