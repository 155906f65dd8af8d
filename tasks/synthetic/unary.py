"""The unary synthetic tasks: the body is one sequence, the target a function of it.

Registered (`tasks/synthetic/registration.py`) when `tasks.synthetic.generators` is
imported. Below, lo / hi are p.min_len / p.max_len (PAPER: 10 / 220, TINY: 10 / 64);
every body length lies in [lo, hi].
Samplers follow the project spec (synthetic_tasks.md). Each is a compiled kernel over a
batch (`tasks/synthetic/kernels.py`): example e's draws come from its key keys[e],
named by stream and position; the header (name prefix, divider) and the empty-target
placeholder are written by `kernels.begin` / `kernels.end`.
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.registration import register, require_answer_ids
from tasks.synthetic.kernels import (begin, draw_int, draw_token, end, helper, kernel,
                                     partition_bins, shuffle, stream_key, write_number)

# Draw streams (names of independent random sequences within one example).
S_LEN, S_TOK, S_K, S_BIN, S_SHUF, S_WORDS, S_NONDIV = range(1, 8)


@helper
def random_seq(key, p, buf, at):
  """seq = rand_tokens(L), L ~ U{lo..hi}, written at buf[at:]; returns L."""
  n = draw_int(stream_key(key, S_LEN), 0, p.min_len, p.max_len)
  sub = stream_key(key, S_TOK)
  for j in range(n):
    buf[at + j] = draw_token(sub, j, p)
  return n


@helper
def runs(key, p, bins, tok):
  """L ~ U{lo..hi}; k ~ U{1..L}; bins[0:L] = `partition_bins(L, k)`; tok[0:k] = k pool
  tokens drawn with replacement (bin b's token). Returns (L, k). Element j of the
  sequence is tok[bins[j]]: listed as drawn that is a shuffle-free assignment, and
  `set` shuffles `bins`, `deduplicate` lists the bins in order (the runs)."""
  n = draw_int(stream_key(key, S_LEN), 0, p.min_len, p.max_len)
  k = draw_int(stream_key(key, S_K), 0, 1, n)
  partition_bins(bins, n, k, stream_key(key, S_BIN))
  sub = stream_key(key, S_TOK)
  for b in range(k):
    tok[b] = draw_token(sub, b, p)
  return n, k


@register("identity")
@kernel
def identity(keys, p, out):
  """seq = rand_tokens(L); target = seq."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    out.targets[t0:t0 + n] = out.inputs[at:at + n]
    end(out, e, n, n, p.empty_target)


@register("set")
@kernel
def set_(keys, p, out):
  """k tokens (with replacement) repeated by a positive partition of L, uniformly
  shuffled (Fisher-Yates); target = the unique tokens in order of first occurrence
  (`aabbbcbbbb -> abc`)."""
  bins = np.empty(p.max_len, np.int64)
  tok = np.empty(p.max_len, np.int32)
  seen = np.zeros(p.pool_low + p.pool_size, np.int64)  # = e + 1 once seen in example e
  for e in range(len(keys)):
    key = keys[e]
    at, t0 = begin(out, e)
    n, _ = runs(key, p, bins, tok)
    shuffle(bins, 0, n, stream_key(key, S_SHUF))
    m = 0
    for j in range(n):
      t = tok[bins[j]]
      out.inputs[at + j] = t
      if seen[t] != e + 1:
        seen[t] = e + 1
        out.targets[t0 + m] = t
        m += 1
    end(out, e, n, m, p.empty_target)


@register("reverse")
@kernel
def reverse(keys, p, out):
  """seq = rand_tokens(L); target = seq reversed."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    for j in range(n):
      out.targets[t0 + j] = out.inputs[at + n - 1 - j]
    end(out, e, n, n, p.empty_target)


@register("deduplicate")
@kernel
def deduplicate(keys, p, out):
  """Sampled as `set` but NOT shuffled: bin 0's token repeated by its size, then bin
  1's, ... (runs of repeated tokens); target = every run of equal adjacent tokens
  collapsed to one token (`aabbbcbbbb -> abcb`). Two adjacent runs may draw the same
  token; they then form one run and collapse together."""
  bins = np.empty(p.max_len, np.int64)
  tok = np.empty(p.max_len, np.int32)
  sizes = np.empty(p.max_len, np.int64)
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n, k = runs(keys[e], p, bins, tok)
    sizes[:k] = 0
    for j in range(n):
      sizes[bins[j]] += 1
    j = 0
    m = 0
    for b in range(k):
      t = tok[b]
      if m == 0 or out.targets[t0 + m - 1] != t:
        out.targets[t0 + m] = t
        m += 1
      for _ in range(sizes[b]):
        out.inputs[at + j] = t
        j += 1
    end(out, e, n, m, p.empty_target)


@register("duplicate", max_target_len=lambda cfg: 2 * cfg.max_len)
@kernel
def duplicate(keys, p, out):
  """seq = rand_tokens(L); target = every token written twice (`abc -> aabbcc`), so up
  to 2 * hi tokens."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    for j in range(n):
      out.targets[t0 + 2 * j] = out.inputs[at + j]
      out.targets[t0 + 2 * j + 1] = out.inputs[at + j]
    end(out, e, n, 2 * n, p.empty_target)


@register("first_token", max_target_len=lambda cfg: 1)
@kernel
def first_token(keys, p, out):
  """seq = rand_tokens(L); target = [seq[0]]."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    out.targets[t0] = out.inputs[at]
    end(out, e, n, 1, p.empty_target)


@register("last_token", max_target_len=lambda cfg: 1)
@kernel
def last_token(keys, p, out):
  """seq = rand_tokens(L); target = [seq[-1]]."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    out.targets[t0] = out.inputs[at + n - 1]
    end(out, e, n, 1, p.empty_target)


@register("length", max_target_len=lambda cfg: len(str(cfg.max_len)),
          check=require_answer_ids)
@kernel
def length(keys, p, out):
  """seq = rand_tokens(L); target = the decimal digits of L, one token per digit, digit
  d being pool id pool_low + d (`kernels.write_number`; PAPER: 0 -> 2 .. 9 -> 11).
  The reference used SentencePiece pieces of str(L); any fixed mapping is allowed."""
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    n = random_seq(keys[e], p, out.inputs, at)
    end(out, e, n, write_number(out.targets, t0, n, p.pool_low), p.empty_target)


@helper
def max_words(hi):
  """Most words of `longest_word` for max_len hi: max(1, hi // 2) (PAPER 110, TINY 32),
  so that w one-token words and w - 1 dividers fit in hi."""
  return max(1, hi // 2)


@register("longest_word")
@kernel
def longest_word(keys, p, out):
  """Words of random tokens separated by p.word_divider; target = the FIRST longest
  word (ties go to the earliest word).

  Sampler (the reference's formulas, which give the spec's numbers for PAPER):
  w ~ U{1..max_words} words (max(1, hi // 2): PAPER 110, TINY 32); non-divider count
  n ~ U{max(lo - (w-1), w) .. hi - (w-1)}; word lengths = the bin sizes of
  `partition_bins(n, w)`; the j-th non-divider token is draw j of the token stream.
  Body length n + w - 1 lies in [lo, hi].
  """
  lo, hi = p.min_len, p.max_len
  bins = np.empty(hi, np.int64)
  sizes = np.empty(hi, np.int64)
  for e in range(len(keys)):
    key = keys[e]
    at, t0 = begin(out, e)
    w = draw_int(stream_key(key, S_WORDS), 0, 1, max_words(hi))
    n = draw_int(stream_key(key, S_NONDIV), 0, max(lo - (w - 1), w), hi - (w - 1))
    partition_bins(bins, n, w, stream_key(key, S_BIN))
    sizes[:w] = 0
    for j in range(n):
      sizes[bins[j]] += 1
    sub = stream_key(key, S_TOK)
    pos = 0  # body position
    j = 0  # token count
    best, best_start = -1, 0
    for word in range(w):
      if word:
        out.inputs[at + pos] = p.word_divider
        pos += 1
      if sizes[word] > best:  # strictly longer: ties keep the first
        best, best_start = sizes[word], pos
      for _ in range(sizes[word]):
        out.inputs[at + pos] = draw_token(sub, j, p)
        pos += 1
        j += 1
    out.targets[t0:t0 + best] = out.inputs[at + best_start:at + best_start + best]
    end(out, e, pos, best, p.empty_target)
