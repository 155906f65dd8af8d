"""The binary synthetic tasks: body = seq + [cfg.arg_divider] + query (or seq2).

Registered on import of `tasks.synthetic.generators`. Below, lo / hi are cfg.min_len /
cfg.max_len (PAPER: 10 / 220, TINY: 10 / 64) and every body length, divider included,
lies in [lo, hi]. The spec's paper numbers come from the reference code's formulas in lo
and hi, which are used as they are, so PAPER reproduces them exactly and other configs
scale: count n ~ U{lo-2 .. hi-2}; query length <= (hi-1) // 3 (73); sort m ~
U{lo // 2 .. (hi-1) // 2} (5..109) with |seq| <= hi-1-m (219-m); replace |seq| ~
U{lo-3 .. hi-3}; set operations T ~ U{lo-1 .. hi-1} (9..219). Lower bounds are clamped
to what the sampler needs (e.g. max(1, lo-2)), which changes nothing for lo >= 4; a
config whose max_len is too small for a task raises ValueError (each task's `check`).
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.generators import (NO_OFFSET, YES_OFFSET, number_tokens,
                                        partition_no_zeros, rand_tokens, register,
                                        require, require_answer_ids, unique_in_order)

Rng = np.random.Generator

# Resampling bound of the rejection loops below; reaching it means the config makes the
# wanted event (almost) impossible, e.g. a pool so small that every query is present.
MAX_TRIES = 10_000


def _body(cfg: SyntheticConfig, seq: np.ndarray, query: np.ndarray) -> np.ndarray:
  return np.concatenate([seq, np.asarray([cfg.arg_divider], np.int32), query])


def find_subsequence(seq: np.ndarray, query: np.ndarray) -> int:
  """Index of the first contiguous occurrence of query in seq, or -1."""
  n, m = len(seq), len(query)
  if m == 0:
    return 0
  if m > n:
    return -1
  windows = np.lib.stride_tricks.sliding_window_view(seq, m)
  hits = np.flatnonzero((windows == query).all(axis=1))
  return int(hits[0]) if hits.size else -1


# ------------------------------------------------------------------ count


def _check_count(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (one sequence token + the argument divider + the query token)")


@register("count", max_target_len=lambda cfg: len(str(cfg.max_len - 2)),
          check=_check_count)
def count(rng: Rng, cfg: SyntheticConfig):
  """n ~ U{max(1, lo-2) .. hi-2}; a query token q; c ~ U{0..n} copies of q plus n - c
  random tokens, shuffled; query = [q]. Target = the decimal count of q in seq (random
  tokens equal to q count too), one token per digit: digit d -> pool_low + d."""
  n = int(rng.integers(max(1, cfg.min_len - 2), cfg.max_len - 2 + 1))
  q = rand_tokens(rng, cfg, 1)
  c = int(rng.integers(0, n + 1))
  seq = np.concatenate([np.repeat(q, c), rand_tokens(rng, cfg, n - c)])
  rng.shuffle(seq)
  return _body(cfg, seq, q), number_tokens(cfg, int(np.count_nonzero(seq == q[0])))


# ------------------------------------------------------------------ search, delete


def _check_query_tasks(task: str, cfg: SyntheticConfig) -> None:
  need = max(4, 2 * cfg.min_len + 1)
  require(task, cfg, cfg.max_len >= need, "max_len",
          f">= max(4, 2 * min_len + 1) = {need}, so that a present query (|q| >= 1, "
          f"|seq| >= 2|q|) and an absent one (|seq| >= |q| >= min_len) both fit")


def max_query_len(cfg: SyntheticConfig) -> int:
  """Longest present query: (hi - 1) // 3 (PAPER 73), so q, >= 2|q| seq tokens and the
  divider fit in hi."""
  return (cfg.max_len - 1) // 3


def _query_present(rng: Rng, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
  """|q| ~ U{1..(hi-1)//3}; |seq| ~ U{2|q| .. hi-1-|q|}; the lengths are redrawn until
  |seq| + 1 + |q| >= lo (the reference's rejection of short inputs); q = rand_tokens;
  q is inserted r ~ U{1..|seq| // |q|} times, the |seq| - r|q| random filler tokens
  split around the copies by multinomial(uniform over r + 1 gaps), empty gaps allowed."""
  lo, hi = cfg.min_len, cfg.max_len
  for _ in range(MAX_TRIES):
    q_len = int(rng.integers(1, max_query_len(cfg) + 1))
    s_len = int(rng.integers(2 * q_len, hi - 1 - q_len + 1))
    if s_len + 1 + q_len >= lo:
      break
  else:
    raise RuntimeError(f"no present-query lengths fit [{lo}, {hi}] in {MAX_TRIES} tries")
  query = rand_tokens(rng, cfg, q_len)
  r = int(rng.integers(1, s_len // q_len + 1))
  gaps = rng.multinomial(s_len - r * q_len, np.full(r + 1, 1.0 / (r + 1)))
  pieces = []
  for i, gap in enumerate(gaps):
    pieces.append(rand_tokens(rng, cfg, int(gap)))
    if i < r:
      pieces.append(query)
  return np.concatenate(pieces), query


def _query_absent(rng: Rng, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
  """Lengths: with probability 0.01, |q| ~ U{lo+1..hi} and |seq| ~ U{0..|q|-1} (query
  longer than seq, seq possibly empty); else |seq| ~ U{lo..hi}, |q| ~ U{lo..|seq|};
  redrawn until |seq| + 1 + |q| <= hi. Then seq, q = rand_tokens, redrawn until q is
  not a contiguous sub-sequence of seq (the reference compared string forms, which
  could also reject e.g. token 12 inside 112)."""
  lo, hi = cfg.min_len, cfg.max_len
  for _ in range(MAX_TRIES):
    if rng.random() < 0.01:
      q_len = int(rng.integers(lo + 1, hi + 1))
      s_len = int(rng.integers(0, q_len))
    else:
      s_len = int(rng.integers(lo, hi + 1))
      q_len = int(rng.integers(lo, s_len + 1))
    if s_len + 1 + q_len <= hi:
      break
  else:
    raise RuntimeError(f"no absent-query lengths fit [{lo}, {hi}] in {MAX_TRIES} tries")
  for _ in range(MAX_TRIES):
    seq, query = rand_tokens(rng, cfg, s_len), rand_tokens(rng, cfg, q_len)
    if find_subsequence(seq, query) < 0:
      return seq, query
  raise RuntimeError(f"every query of {q_len} tokens was present in {MAX_TRIES} tries; "
                     f"the token pool ({cfg.pool_size} ids) is too small")


def _check_search(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  _check_query_tasks(task, cfg)


@register("search", max_target_len=lambda cfg: 1, check=_check_search)
def search(rng: Rng, cfg: SyntheticConfig):
  """50% `_query_present`, 50% `_query_absent` (the coin is kept when lengths are
  redrawn, so the split is exactly 50/50; the reference re-flipped it). Target = [yes]
  if q is a contiguous sub-sequence of seq else [no]; yes = pool_low + 10, no =
  pool_low + 11 (PAPER 12 / 13; the reference used the pieces of 'yes' / 'no')."""
  present = rng.random() < 0.5
  seq, query = (_query_present if present else _query_absent)(rng, cfg)
  found = find_subsequence(seq, query) >= 0
  return _body(cfg, seq, query), np.asarray(
      [cfg.pool_low + (YES_OFFSET if found else NO_OFFSET)], np.int32)


@register("delete", max_target_len=lambda cfg: cfg.max_len - 2, check=_check_query_tasks)
def delete(rng: Rng, cfg: SyntheticConfig):
  """75% `_query_present`, 25% `_query_absent` (coin kept as in `search`). Target = seq
  with the FIRST occurrence of q removed, seq unchanged if absent; an empty result (q
  longer than an empty seq) becomes [empty_target] in `generate`. |seq| <= hi - 2."""
  present = rng.random() < 0.75
  seq, query = (_query_present if present else _query_absent)(rng, cfg)
  at = find_subsequence(seq, query)
  target = seq if at < 0 else np.concatenate([seq[:at], seq[at + len(query):]])
  return _body(cfg, seq, query), target


# ------------------------------------------------------------------ sort


def sort_order_range(cfg: SyntheticConfig) -> tuple[int, int]:
  """(lowest, highest) number m of order tokens: max(1, lo // 2), (hi - 1) // 2."""
  return max(1, cfg.min_len // 2), (cfg.max_len - 1) // 2


def _check_sort(task: str, cfg: SyntheticConfig) -> None:
  m_lo, _ = sort_order_range(cfg)
  require(task, cfg, cfg.max_len >= 2 * m_lo + 1, "max_len",
          f">= 2 * max(1, min_len // 2) + 1 = {2 * m_lo + 1}, room for the m >= {m_lo} "
          f"order tokens, a sequence of >= m tokens and the divider")


@register("sort", check=_check_sort,
          max_target_len=lambda cfg: cfg.max_len - 1 - sort_order_range(cfg)[0])
def sort(rng: Rng, cfg: SyntheticConfig):
  """m ~ U{max(1, lo//2) .. (hi-1)//2} (PAPER 5..109, TINY 5..31); order =
  rand_tokens(m) (repeats possible); |seq| ~ U{m .. hi-1-m}; seq = m tokens drawn with
  replacement from order, each repeated by its part of partition_no_zeros(|seq|, m),
  shuffled; query = order. Target = seq stably sorted by each token's index in order,
  a token repeated in order taking its LAST index (as the reference's dict did). Body
  |seq| + 1 + m lies in [2m + 1, hi], and 2m + 1 >= lo."""
  m_lo, m_hi = sort_order_range(cfg)
  m = int(rng.integers(m_lo, m_hi + 1))
  order = rand_tokens(rng, cfg, m)
  s_len = int(rng.integers(m, cfg.max_len - 1 - m + 1))
  sizes = partition_no_zeros(rng, s_len, m)
  seq = np.repeat(rng.choice(order, size=m), sizes).astype(np.int32)
  rng.shuffle(seq)
  rank = {tok: i for i, tok in enumerate(order.tolist())}  # later index overwrites
  keys = np.asarray([rank[tok] for tok in seq.tolist()])
  return _body(cfg, seq, order), seq[np.argsort(keys, kind="stable")]


# ------------------------------------------------------------------ replace


def _check_replace(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 4, "max_len",
          ">= 4 (one sequence token + the divider + the key and value tokens)")


@register("replace", max_target_len=lambda cfg: cfg.max_len - 3, check=_check_replace)
def replace(rng: Rng, cfg: SyntheticConfig):
  """seq = rand_tokens(U{max(1, lo-3) .. hi-3}); k = a uniformly chosen DISTINCT token of
  seq; v = a random pool token (may equal k); query = [k, v]. Target = seq with every
  k replaced by v."""
  seq = rand_tokens(rng, cfg, int(rng.integers(max(1, cfg.min_len - 3), cfg.max_len - 2)))
  distinct = np.unique(seq)
  k = distinct[int(rng.integers(len(distinct)))]
  v = rand_tokens(rng, cfg, 1)[0]
  return _body(cfg, seq, np.asarray([k, v], np.int32)), np.where(seq == k, v, seq)


# ------------------------------------------------------------------ set operations


def _check_set_op(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (T >= 2 tokens so the shared pool of T // 2 tokens is not empty)")
  require(task, cfg, cfg.pool_size >= (cfg.max_len - 1) // 2, "pool_size",
          f">= (max_len - 1) // 2 = {(cfg.max_len - 1) // 2} distinct tokens")


def _set_op_max_target(cfg: SyntheticConfig) -> int:
  return max(1, (cfg.max_len - 1) // 2)  # at most T // 2 distinct tokens, or [empty]


def _two_seqs(rng: Rng, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
  """T ~ U{max(2, lo-1) .. hi-1}; n1 ~ U{0..T}; n2 = T - n1; T // 2 distinct pool
  tokens; seq1 (n1 tokens), seq2 (n2 tokens) drawn with replacement from them.

  All four set operations list their result in order of FIRST APPEARANCE in seq1 then
  seq2; the reference emitted Python's arbitrary set iteration order (a documented
  deviation). An empty result becomes [empty_target] in `generate`."""
  total = int(rng.integers(max(2, cfg.min_len - 1), cfg.max_len))
  n1 = int(rng.integers(0, total + 1))
  pool = (rng.choice(cfg.pool_size, size=total // 2, replace=False)
          + cfg.pool_low).astype(np.int32)
  seq1 = pool[rng.integers(0, len(pool), n1)]
  return seq1, pool[rng.integers(0, len(pool), total - n1)]


def _set_op(name: str):
  return register(name, max_target_len=_set_op_max_target, check=_check_set_op)


@_set_op("union")
def union(rng: Rng, cfg: SyntheticConfig):
  """`_two_seqs`; target = tokens in seq1 or seq2, in order of first appearance."""
  s1, s2 = _two_seqs(rng, cfg)
  return _body(cfg, s1, s2), unique_in_order(np.concatenate([s1, s2]))


@_set_op("intersect")
def intersect(rng: Rng, cfg: SyntheticConfig):
  """`_two_seqs`; target = tokens in both, in order of first appearance (in seq1)."""
  s1, s2 = _two_seqs(rng, cfg)
  u1 = unique_in_order(s1)
  return _body(cfg, s1, s2), u1[np.isin(u1, s2)]


@_set_op("set1_minus_set2")
def set1_minus_set2(rng: Rng, cfg: SyntheticConfig):
  """`_two_seqs`; target = tokens of seq1 not in seq2, in order of first appearance."""
  s1, s2 = _two_seqs(rng, cfg)
  u1 = unique_in_order(s1)
  return _body(cfg, s1, s2), u1[~np.isin(u1, s2)]


@_set_op("set2_minus_set1")
def set2_minus_set1(rng: Rng, cfg: SyntheticConfig):
  """`_two_seqs`; target = tokens of seq2 not in seq1, in order of first appearance."""
  s1, s2 = _two_seqs(rng, cfg)
  u2 = unique_in_order(s2)
  return _body(cfg, s1, s2), u2[~np.isin(u2, s1)]
