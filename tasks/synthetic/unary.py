"""The unary synthetic tasks: the body is one sequence, the target a function of it.

Registered on import of `tasks.synthetic.generators`. Below, lo / hi are cfg.min_len /
cfg.max_len (PAPER: 10 / 220, TINY: 10 / 64); every body length lies in [lo, hi].
Samplers follow the project spec (synthetic_tasks.md) and draw a whole batch at once
(`Draws`: counter-based draws named by stream and position); the name prefix and
divider are added by `generators.generate_batch`.
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.counter_rng import Draws
from tasks.synthetic.generators import (Elements, elem_tokens, number_tokens,
                                        partition_bins, rand_tokens, register,
                                        require_answer_ids, shuffle_order)
from tasks.synthetic.ragged import Ragged, first_occurrence, first_occurrence_small, ranges

# Draw streams (names of independent random sequences within one example).
S_LEN, S_TOK, S_K, S_BIN, S_SHUF, S_WORDS, S_NONDIV = range(1, 8)


def _random_seq(d: Draws, cfg: SyntheticConfig) -> tuple[Ragged, Elements]:
  """seq = rand_tokens(L), L ~ U{lo..hi}."""
  el = Elements(d.ints(S_LEN, cfg.min_len, cfg.max_len))
  return Ragged(elem_tokens(d, cfg, S_TOK, el), el.lengths), el


def _runs(d: Draws, cfg: SyntheticConfig, shuffle: bool):
  """L ~ U{lo..hi}; k ~ U{1..L}; k tokens drawn with replacement, each repeated by its
  part of partition_no_zeros(L, k); the whole list shuffled if `shuffle`.

  Element form: element j of the L gets bin j (j < k) or a U{0..k-1} (j >= k), and
  bin b's token is draw b of the token stream, so the bins' sizes are the partition.
  Unshuffled, elements are listed by bin (the runs); shuffled, in uniformly random
  order. Returns (seq, Elements of seq, bin of each element, Elements of the bins,
  token of each bin)."""
  length = d.ints(S_LEN, cfg.min_len, cfg.max_len)
  k = d.ints(S_K, 1, length)
  el = partition_bins(d, S_BIN, length, k)
  if shuffle:
    bins = el.bin[shuffle_order(d, S_SHUF, el)]
  else:  # sorted by bin within each row: key (row, bin) fits easily in int64
    bins = np.sort((el.seg << 32) | el.bin) & 0xFFFFFFFF
  kel = Elements(k)
  bin_tokens = elem_tokens(d, cfg, S_TOK, kel)
  seq = bin_tokens[el.row_of(kel.start) + bins]
  return Ragged(seq, length), el, bins, kel, bin_tokens


def _same(seq: Ragged) -> Ragged:
  return Ragged(seq.values.copy(), seq.lengths)


@register("identity")
def identity(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = seq."""
  seq, _ = _random_seq(d, cfg)
  return seq, _same(seq)


@register("set")
def set_(d: Draws, cfg: SyntheticConfig):
  """k tokens (with replacement) repeated by a positive partition of L, shuffled;
  target = the unique tokens in order of first occurrence (`aabbbcbbbb -> abc`)."""
  seq, el, bins, kel, _ = _runs(d, cfg, shuffle=True)
  # The first element of each bin (a table minimum; no sort), then the first
  # occurrence of each token among those (bins may share a token).
  cand = np.flatnonzero(first_occurrence_small(el.seg, bins, el.pos, kel.start,
                                               len(kel.seg)))
  cseg = el.seg[cand]
  ctok = seq.values[cand]
  keep = first_occurrence(cseg, ctok)
  return seq, Ragged(ctok[keep], np.bincount(cseg[keep], minlength=len(d)))


@register("reverse")
def reverse(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = seq reversed."""
  seq, el = _random_seq(d, cfg)
  back = el.start[el.seg] + el.row_of(el.lengths) - 1 - el.pos
  return seq, Ragged(seq.values[back], seq.lengths)


@register("deduplicate")
def deduplicate(d: Draws, cfg: SyntheticConfig):
  """Sampled as `set` but NOT shuffled (runs of repeated tokens); target = every run of
  equal adjacent tokens collapsed to one token (`aabbbcbbbb -> abcb`). Two adjacent
  runs may draw the same token; they then form one run and collapse together."""
  seq, el, _, _, _ = _runs(d, cfg, shuffle=False)
  v = seq.values
  keep = np.ones(len(v), bool)
  keep[1:] = v[1:] != v[:-1]
  keep[el.start] = True
  return seq, Ragged(v[keep], np.bincount(el.seg[keep], minlength=len(d)))


@register("duplicate", max_target_len=lambda cfg: 2 * cfg.max_len)
def duplicate(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = every token written twice (`abc -> aabbcc`), so up
  to 2 * hi tokens."""
  seq, _ = _random_seq(d, cfg)
  return seq, Ragged(np.repeat(seq.values, 2), 2 * seq.lengths)


@register("first_token", max_target_len=lambda cfg: 1)
def first_token(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = [seq[0]]."""
  seq, el = _random_seq(d, cfg)
  return seq, Ragged(seq.values[el.start], np.ones(len(d), np.int64))


@register("last_token", max_target_len=lambda cfg: 1)
def last_token(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = [seq[-1]]."""
  seq, el = _random_seq(d, cfg)
  return seq, Ragged(seq.values[el.offsets[1:] - 1], np.ones(len(d), np.int64))


@register("length", max_target_len=lambda cfg: len(str(cfg.max_len)),
          check=require_answer_ids)
def length(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(L); target = the decimal digits of L, one token per digit, digit
  d being pool id pool_low + d (`generators.number_tokens`; PAPER: 0 -> 2 .. 9 -> 11).
  The reference used SentencePiece pieces of str(L); any fixed mapping is allowed."""
  seq, _ = _random_seq(d, cfg)
  return seq, number_tokens(cfg, seq.lengths)


def max_words(cfg: SyntheticConfig) -> int:
  """Most words of `longest_word`: max(1, hi // 2) (PAPER 110, TINY 32), so that w
  one-token words and w - 1 dividers fit in hi."""
  return max(1, cfg.max_len // 2)


@register("longest_word")
def longest_word(d: Draws, cfg: SyntheticConfig):
  """Words of random tokens separated by cfg.word_divider; target = the FIRST longest
  word (ties go to the earliest word).

  Sampler (the reference's formulas, which give the spec's numbers for PAPER):
  w ~ U{1..max_words(cfg)} words (max(1, hi // 2): PAPER 110, TINY 32); non-divider
  count n ~ U{max(lo - (w-1), w) .. hi - (w-1)}; word lengths = partition_no_zeros(n,
  w). Body length n + w - 1 lies in [lo, hi].
  """
  lo, hi = cfg.min_len, cfg.max_len
  w = d.ints(S_WORDS, 1, max_words(cfg))
  n = d.ints(S_NONDIV, np.maximum(lo - (w - 1), w), hi - (w - 1))
  el = partition_bins(d, S_BIN, n, w)  # element j of a row: a token of word el.bin[j]
  woffs = np.zeros(len(w) + 1, np.int64)
  np.cumsum(w, out=woffs[1:])
  sizes = np.bincount(woffs[el.seg] + el.bin, minlength=int(woffs[-1]))
  wseg = np.repeat(np.arange(len(w)), w)
  wpos = np.arange(len(sizes)) - woffs[wseg]
  # Words in order: tokens sorted by (row, word); token t of word j sits at body
  # position (tokens of words < j) + t + j (the j dividers before it).
  body_len = n + w - 1
  bstart = np.zeros(len(w) + 1, np.int64)
  np.cumsum(body_len, out=bstart[1:])
  word_start_tok = np.zeros(len(sizes) + 1, np.int64)  # flat token index of each word
  np.cumsum(sizes, out=word_start_tok[1:])
  tok_word = np.repeat(np.arange(len(sizes)), sizes)  # flat word of each token, in order
  tok_in_row = np.arange(len(tok_word)) - el.start[wseg[tok_word]]
  body = np.full(int(bstart[-1]), cfg.word_divider, np.int32)
  tokens = rand_tokens(d, cfg, S_TOK, wseg[tok_word], tok_in_row)
  body[bstart[wseg[tok_word]] + tok_in_row + wpos[tok_word]] = tokens
  # First longest word: the max of size * 2^20 - word position, per row.
  score = sizes * (1 << 20) - wpos
  best = np.maximum.reduceat(score, woffs[:-1])
  best_word = woffs[:-1] + ((1 << 20) - best % (1 << 20)) % (1 << 20)
  target = tokens[ranges(word_start_tok[best_word], sizes[best_word])]
  return Ragged(body, body_len), Ragged(target, sizes[best_word])
