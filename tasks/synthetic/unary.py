"""The unary synthetic tasks: the body is one sequence, the target a function of it.

Registered on import of `tasks.synthetic.generators`. Below, lo / hi are cfg.min_len /
cfg.max_len (PAPER: 10 / 220, TINY: 10 / 64); every body length lies in [lo, hi].
Samplers follow the project spec (synthetic_tasks.md); the name prefix and divider are
added by `generators.generate`.
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.generators import (number_tokens, partition_no_zeros, rand_tokens,
                                        register, require_answer_ids, sample_length,
                                        unique_in_order)

Rng = np.random.Generator


def _random_seq(rng: Rng, cfg: SyntheticConfig) -> np.ndarray:
  """seq = rand_tokens(L), L ~ U{lo..hi}."""
  return rand_tokens(rng, cfg, sample_length(rng, cfg))


def _runs(rng: Rng, cfg: SyntheticConfig, shuffle: bool) -> np.ndarray:
  """L ~ U{lo..hi}; k ~ U{1..L}; k tokens drawn with replacement, each repeated by its
  part of partition_no_zeros(L, k); the whole list shuffled if `shuffle`."""
  length = sample_length(rng, cfg)
  k = int(rng.integers(1, length + 1))
  sizes = partition_no_zeros(rng, length, k)
  seq = np.repeat(rand_tokens(rng, cfg, k), sizes)
  if shuffle:
    rng.shuffle(seq)
  return seq


@register("identity")
def identity(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = seq."""
  seq = _random_seq(rng, cfg)
  return seq, seq.copy()


@register("set")
def set_(rng: Rng, cfg: SyntheticConfig):
  """k tokens (with replacement) repeated by a positive partition of L, shuffled;
  target = the unique tokens in order of first occurrence (`aabbbcbbbb -> abc`)."""
  seq = _runs(rng, cfg, shuffle=True)
  return seq, unique_in_order(seq)


@register("reverse")
def reverse(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = seq reversed."""
  seq = _random_seq(rng, cfg)
  return seq, seq[::-1].copy()


@register("deduplicate")
def deduplicate(rng: Rng, cfg: SyntheticConfig):
  """Sampled as `set` but NOT shuffled (runs of repeated tokens); target = every run of
  equal adjacent tokens collapsed to one token (`aabbbcbbbb -> abcb`). Two adjacent
  runs may draw the same token; they then form one run and collapse together."""
  seq = _runs(rng, cfg, shuffle=False)
  keep = np.concatenate([[True], seq[1:] != seq[:-1]])
  return seq, seq[keep]


@register("duplicate", max_target_len=lambda cfg: 2 * cfg.max_len)
def duplicate(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = every token written twice (`abc -> aabbcc`), so up
  to 2 * hi tokens."""
  seq = _random_seq(rng, cfg)
  return seq, np.repeat(seq, 2)


@register("first_token", max_target_len=lambda cfg: 1)
def first_token(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = [seq[0]]."""
  seq = _random_seq(rng, cfg)
  return seq, seq[:1].copy()


@register("last_token", max_target_len=lambda cfg: 1)
def last_token(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = [seq[-1]]."""
  seq = _random_seq(rng, cfg)
  return seq, seq[-1:].copy()


@register("length", max_target_len=lambda cfg: len(str(cfg.max_len)),
          check=require_answer_ids)
def length(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = the decimal digits of L, one token per digit, digit
  d being pool id pool_low + d (`generators.number_tokens`; PAPER: 0 -> 2 .. 9 -> 11).
  The reference used SentencePiece pieces of str(L); any fixed mapping is allowed."""
  seq = _random_seq(rng, cfg)
  return seq, number_tokens(cfg, len(seq))


def max_words(cfg: SyntheticConfig) -> int:
  """Most words of `longest_word`: max(1, hi // 2) (PAPER 110, TINY 32), so that w
  one-token words and w - 1 dividers fit in hi."""
  return max(1, cfg.max_len // 2)


@register("longest_word")
def longest_word(rng: Rng, cfg: SyntheticConfig):
  """Words of random tokens separated by cfg.word_divider; target = the FIRST longest
  word (ties go to the earliest word).

  Sampler (the reference's formulas, which give the spec's numbers for PAPER):
  w ~ U{1..max_words(cfg)} words (max(1, hi // 2): PAPER 110, TINY 32); non-divider
  count n ~ U{max(lo - (w-1), w) .. hi - (w-1)}; word lengths = partition_no_zeros(n,
  w). Body length n + w - 1 lies in [lo, hi].
  """
  lo, hi = cfg.min_len, cfg.max_len
  w = int(rng.integers(1, max_words(cfg) + 1))
  n = int(rng.integers(max(lo - (w - 1), w), hi - (w - 1) + 1))
  sizes = partition_no_zeros(rng, n, w)
  words = np.split(rand_tokens(rng, cfg, n), np.cumsum(sizes)[:-1])
  divider = np.asarray([cfg.word_divider], np.int32)
  pieces = []
  for i, word in enumerate(words):
    if i:
      pieces.append(divider)
    pieces.append(word)
  return np.concatenate(pieces), words[int(np.argmax(sizes))].copy()  # argmax: first
