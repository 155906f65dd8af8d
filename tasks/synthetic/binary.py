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

Every sampler draws a whole batch (`Draws`); rejection loops redraw only the rejected
examples, with the attempt number in the draw names, so each example's draws are its
own whatever the batch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.counter_rng import Draws
from tasks.synthetic.generators import (NO_OFFSET, YES_OFFSET, Elements, elem_tokens,
                                        number_tokens,
                                        partition_bins, rand_tokens, register, require,
                                        require_answer_ids, shuffle_order)
from tasks.synthetic.ragged import (Ragged, concat_rows, first_occurrence,
                                    first_occurrence_small, merge_rows, offsets,
                                    ranges)

# Resampling bound of the rejection loops below; reaching it means the config makes the
# wanted event (almost) impossible, e.g. a pool so small that every query is present.
MAX_TRIES = 10_000

# Draw streams (names of independent random sequences within one example).
(S_N, S_Q, S_C, S_TOK, S_SHUF, S_COIN, S_QLEN, S_SLEN, S_QTOK, S_R, S_GAP, S_FILL,
 S_LONG, S_ALEN_Q, S_ALEN_S, S_ASEQ, S_AQ, S_M, S_ORDER, S_CHOICE, S_BIN, S_K, S_V,
 S_T, S_N1, S_POOL, S_I1, S_I2, S_POOL_FALLBACK) = range(1, 30)


def _body(cfg: SyntheticConfig, seq: Ragged, query: Ragged) -> Ragged:
  div = Ragged(np.full(len(seq.lengths), cfg.arg_divider, np.int32),
               np.ones(len(seq.lengths), np.int64))
  return concat_rows([seq, div, query])


def find_subsequence(seq: np.ndarray, query: np.ndarray) -> int:
  """Index of the first contiguous occurrence of query in seq, or -1 (one pair)."""
  found = find_first(Ragged(np.asarray(seq), np.asarray([len(seq)])),
                     Ragged(np.asarray(query), np.asarray([len(query)])))
  return int(found[0])


def find_first(seq: Ragged, query: Ragged) -> np.ndarray:
  """Per row, the index of the first contiguous occurrence of the query row in the seq
  row, or -1 (0 for an empty query). Candidates (row, start) are filtered one query
  position at a time, so the work is ~ the number of partial matches."""
  rows = len(seq.lengths)
  result = np.full(rows, -1, np.int64)
  result[query.lengths == 0] = 0
  soffs, qoffs = offsets(seq.lengths), offsets(query.lengths)
  n_starts = np.maximum(seq.lengths - query.lengths + 1, 0)
  n_starts[query.lengths == 0] = 0
  cand_row = np.repeat(np.arange(rows), n_starts)
  cand_start = ranges(np.zeros(rows, np.int64), n_starts)
  t = 0
  while len(cand_row):
    qlen = query.lengths[cand_row]
    done = qlen <= t  # every query position matched
    if done.any():
      # the earliest start per row among completed candidates (candidates are sorted
      # by (row, start), so the first one of each row is the earliest)
      r, s = cand_row[done], cand_start[done]
      first = np.ones(len(r), bool)
      first[1:] = r[1:] != r[:-1]
      r, s = r[first], s[first]
      take = result[r] < 0
      result[r[take]] = s[take]
      keep = ~done & (result[cand_row] < 0)
      cand_row, cand_start = cand_row[keep], cand_start[keep]
      if not len(cand_row):
        break
    match = (seq.values[soffs[cand_row] + cand_start + t]
             == query.values[qoffs[cand_row] + t])
    cand_row, cand_start = cand_row[match], cand_start[match]
    t += 1
  return result


def _shuffled(d: Draws, stream: int, values: np.ndarray, el: Elements) -> np.ndarray:
  return values[shuffle_order(d, stream, el)]


# ------------------------------------------------------------------ count


def _check_count(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (one sequence token + the argument divider + the query token)")


@register("count", max_target_len=lambda cfg: len(str(cfg.max_len - 2)),
          check=_check_count)
def count(d: Draws, cfg: SyntheticConfig):
  """n ~ U{max(1, lo-2) .. hi-2}; a query token q; c ~ U{0..n} copies of q plus n - c
  random tokens, shuffled; query = [q]. Target = the decimal count of q in seq (random
  tokens equal to q count too), one token per digit: digit d -> pool_low + d."""
  rows = np.arange(len(d))
  n = d.ints(S_N, max(1, cfg.min_len - 2), cfg.max_len - 2)
  q = rand_tokens(d, cfg, S_Q, rows, np.zeros(len(d), np.int64))
  c = d.ints(S_C, 0, n)
  el = Elements(n)
  qe = el.row_of(q)
  vals = np.where(el.pos < el.row_of(c), qe, elem_tokens(d, cfg, S_TOK, el))
  seq = Ragged(_shuffled(d, S_SHUF, vals, el), n)
  hits = np.bincount(el.seg, weights=vals == qe, minlength=len(d)).astype(np.int64)
  return (_body(cfg, seq, Ragged(q, np.ones(len(d), np.int64))),
          number_tokens(cfg, hits))


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


def _reject(num: int, draw: Callable[[np.ndarray, int], tuple], what: str) -> list:
  """Runs draw(rows, attempt) -> (ok, *values) on the rows not yet accepted, attempt
  0, 1, ..., and returns the per-row values of each row's first accepted attempt."""
  out = None
  todo = np.arange(num)
  for attempt in range(MAX_TRIES):
    if not len(todo):
      return out
    ok, *values = draw(todo, attempt)
    if out is None:
      out = [np.zeros(num, v.dtype) for v in values]
    for o, v in zip(out, values):
      o[todo[ok]] = v[ok]
    todo = todo[~ok]
  if not len(todo):
    return out
  raise RuntimeError(f"{what} in {MAX_TRIES} tries")


def _query_present(d: Draws, cfg: SyntheticConfig) -> tuple[Ragged, Ragged]:
  """|q| ~ U{1..(hi-1)//3}; |seq| ~ U{2|q| .. hi-1-|q|}; the lengths are redrawn until
  |seq| + 1 + |q| >= lo (the reference's rejection of short inputs); q = rand_tokens;
  q is inserted r ~ U{1..|seq| // |q|} times, the |seq| - r|q| random filler tokens
  split around the copies by multinomial(uniform over r + 1 gaps), empty gaps allowed."""
  lo, hi = cfg.min_len, cfg.max_len

  def lengths(rows, attempt):
    dd = d.take(rows)
    q_len = dd.ints(S_QLEN, 1, max_query_len(cfg), attempt)
    s_len = dd.ints(S_SLEN, 2 * q_len, hi - 1 - q_len, attempt)
    return s_len + 1 + q_len >= lo, q_len, s_len

  q_len, s_len = _reject(len(d), lengths, f"no present-query lengths fit [{lo}, {hi}]")
  qel = Elements(q_len)
  query = elem_tokens(d, cfg, S_QTOK, qel)
  r = d.ints(S_R, 1, s_len // q_len)
  # Gaps: s - r|q| balls into r + 1 gaps; pieces of a row: gap0, q, gap1, q, ..., gap_r.
  filler = s_len - r * q_len
  bel = Elements(filler)
  goffs = offsets(r + 1)
  gap_sizes = np.bincount(goffs[bel.seg] + bel.draw_ints(d, S_GAP, 0, bel.row_of(r)),
                          minlength=int(goffs[-1]))
  n_pieces = 2 * r + 1
  pel = Elements(n_pieces)
  piece_len = np.where(pel.pos % 2 == 0, gap_sizes[goffs[pel.seg] + pel.pos // 2],
                       q_len[pel.seg])
  piece = np.repeat(np.arange(len(piece_len)), piece_len)  # flat piece of each element
  sel = Elements(s_len)  # the same rows/positions as `piece`, in order
  piece_start = np.zeros(len(piece_len) + 1, np.int64)
  np.cumsum(piece_len, out=piece_start[1:])
  in_piece = np.arange(len(piece)) - piece_start[piece]
  t = pel.pos[piece]  # piece index within its row
  is_query = t % 2 == 1
  fill_ordinal = sel.pos - (t // 2) * sel.row_of(q_len)
  seq = np.where(is_query, query[np.minimum(qel.start[sel.seg] + in_piece,
                                            len(query) - 1)],
                 rand_tokens(d, cfg, S_FILL, sel.seg, fill_ordinal))
  return Ragged(seq.astype(np.int32), s_len), Ragged(query, q_len)


def _query_absent(d: Draws, cfg: SyntheticConfig) -> tuple[Ragged, Ragged]:
  """Lengths: with probability 0.01, |q| ~ U{lo+1..hi} and |seq| ~ U{0..|q|-1} (query
  longer than seq, seq possibly empty); else |seq| ~ U{lo..hi}, |q| ~ U{lo..|seq|};
  redrawn until |seq| + 1 + |q| <= hi. Then seq, q = rand_tokens, redrawn until q is
  not a contiguous sub-sequence of seq (the reference compared string forms, which
  could also reject e.g. token 12 inside 112)."""
  lo, hi = cfg.min_len, cfg.max_len

  def lengths(rows, attempt):
    dd = d.take(rows)
    long = dd.unit(S_LONG, attempt) < 0.01
    q_long = dd.ints(S_ALEN_Q, lo + 1, hi, attempt)
    s_long = dd.ints(S_ALEN_S, 0, q_long - 1, attempt)
    s_norm = dd.ints(S_ALEN_S, lo, hi, attempt)
    q_norm = dd.ints(S_ALEN_Q, lo, s_norm, attempt)
    s_len, q_len = np.where(long, s_long, s_norm), np.where(long, q_long, q_norm)
    return s_len + 1 + q_len <= hi, s_len, q_len

  s_len, q_len = _reject(len(d), lengths, f"no absent-query lengths fit [{lo}, {hi}]")

  def tokens(rows, attempt):
    dd = d.take(rows)
    sel, qel = Elements(s_len[rows]), Elements(q_len[rows])
    seq = Ragged(elem_tokens(dd, cfg, S_ASEQ, sel, attempt), sel.lengths)
    query = Ragged(elem_tokens(dd, cfg, S_AQ, qel, attempt), qel.lengths)
    return find_first(seq, query) < 0, np.asarray(rows), np.full(len(rows), attempt)

  _, attempt = _reject(len(d), tokens,
                       f"every query was present (the token pool, {cfg.pool_size} ids, "
                       f"is too small)")
  # Redraw each row's tokens from its accepted attempt.
  sel, qel = Elements(s_len), Elements(q_len)
  seq = np.empty(len(sel.seg), np.int32)
  query = np.empty(len(qel.seg), np.int32)
  for a in np.unique(attempt):
    s_mask, q_mask = attempt[sel.seg] == a, attempt[qel.seg] == a
    seq[s_mask] = rand_tokens(d, cfg, S_ASEQ, sel.seg[s_mask], sel.pos[s_mask], int(a))
    query[q_mask] = rand_tokens(d, cfg, S_AQ, qel.seg[q_mask], qel.pos[q_mask], int(a))
  return Ragged(seq, s_len), Ragged(query, q_len)


def _present_or_absent(d: Draws, cfg: SyntheticConfig,
                       p_present: float) -> tuple[Ragged, Ragged]:
  present = d.unit(S_COIN) < p_present
  pieces_s, pieces_q = [], []
  for rows, fn in ((np.flatnonzero(present), _query_present),
                   (np.flatnonzero(~present), _query_absent)):
    if len(rows):
      s, q = fn(d.take(rows), cfg)
      pieces_s.append((rows, s))
      pieces_q.append((rows, q))
  return merge_rows(len(d), pieces_s), merge_rows(len(d), pieces_q)


def _check_search(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  _check_query_tasks(task, cfg)


@register("search", max_target_len=lambda cfg: 1, check=_check_search)
def search(d: Draws, cfg: SyntheticConfig):
  """50% `_query_present`, 50% `_query_absent` (the coin is kept when lengths are
  redrawn, so the split is exactly 50/50; the reference re-flipped it). Target = [yes]
  if q is a contiguous sub-sequence of seq else [no]; yes = pool_low + 10, no =
  pool_low + 11 (PAPER 12 / 13; the reference used the pieces of 'yes' / 'no')."""
  seq, query = _present_or_absent(d, cfg, 0.5)
  found = find_first(seq, query) >= 0
  answer = (cfg.pool_low + np.where(found, YES_OFFSET, NO_OFFSET)).astype(np.int32)
  return _body(cfg, seq, query), Ragged(answer, np.ones(len(d), np.int64))


@register("delete", max_target_len=lambda cfg: cfg.max_len - 2, check=_check_query_tasks)
def delete(d: Draws, cfg: SyntheticConfig):
  """75% `_query_present`, 25% `_query_absent` (coin kept as in `search`). Target = seq
  with the FIRST occurrence of q removed, seq unchanged if absent; an empty result (q
  longer than an empty seq) becomes [empty_target] in `generate`. |seq| <= hi - 2."""
  seq, query = _present_or_absent(d, cfg, 0.75)
  at = find_first(seq, query)
  el = Elements(seq.lengths)
  a = el.row_of(at)
  drop = (a >= 0) & (el.pos >= a) & (el.pos < a + el.row_of(query.lengths))
  lengths = seq.lengths - np.where(at >= 0, query.lengths, 0)
  return _body(cfg, seq, query), Ragged(seq.values[~drop], lengths)


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
def sort(d: Draws, cfg: SyntheticConfig):
  """m ~ U{max(1, lo//2) .. (hi-1)//2} (PAPER 5..109, TINY 5..31); order =
  rand_tokens(m) (repeats possible); |seq| ~ U{m .. hi-1-m}; seq = m tokens drawn with
  replacement from order, each repeated by its part of partition_no_zeros(|seq|, m),
  shuffled; query = order. Target = seq stably sorted by each token's index in order,
  a token repeated in order taking its LAST index (as the reference's dict did). Body
  |seq| + 1 + m lies in [2m + 1, hi], and 2m + 1 >= lo."""
  m_lo, m_hi = sort_order_range(cfg)
  m = d.ints(S_M, m_lo, m_hi)
  s_len = d.ints(S_N, m, cfg.max_len - 1 - m)
  oel = Elements(m)
  order = elem_tokens(d, cfg, S_ORDER, oel)
  # rank of order position j = the last index of order[j]'s token in order: sort
  # (row, token, -position); the first of each (row, token) group is the last index.
  pos_bits = max(1, int(m.max()).bit_length())
  key = (((oel.seg << 32) | order.astype(np.int64)) << pos_bits) | (
      (1 << pos_bits) - 1 - oel.pos)
  key.sort()
  group = key >> pos_bits
  start = np.ones(len(key), bool)
  start[1:] = group[1:] != group[:-1]
  last = (1 << pos_bits) - 1 - (key & ((1 << pos_bits) - 1))
  last_of_group = last[np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))]
  rank = np.empty(len(order), np.int64)
  rank[oel.start[group >> 32] + (((1 << pos_bits) - 1) - (key & ((1 << pos_bits) - 1)))
       ] = last_of_group
  # seq: bins of partition_no_zeros(|seq|, m); bin b holds order[choice b].
  el = partition_bins(d, S_BIN, s_len, m)
  perm = shuffle_order(d, S_SHUF, el)
  bins = el.bin[perm]
  choice = oel.draw_ints(d, S_CHOICE, 0, oel.row_of(m) - 1)  # per bin
  flat_choice = oel.start[el.seg] + choice[el.row_of(oel.start) + bins]
  seq = order[flat_choice]
  # target: seq stably sorted by rank. Equal ranks mean equal tokens (rank = the
  # token's last index in order), so the target is, for rank j = 0..m-1, order[j]
  # repeated by the number of seq elements of rank j: a count, no sort.
  per_rank = np.bincount(oel.start[el.seg] + rank[flat_choice], minlength=len(order))
  target = np.repeat(order, per_rank)
  return _body(cfg, Ragged(seq, s_len), Ragged(order, m)), Ragged(target, s_len)


# ------------------------------------------------------------------ replace


def _check_replace(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 4, "max_len",
          ">= 4 (one sequence token + the divider + the key and value tokens)")


@register("replace", max_target_len=lambda cfg: cfg.max_len - 3, check=_check_replace)
def replace(d: Draws, cfg: SyntheticConfig):
  """seq = rand_tokens(U{max(1, lo-3) .. hi-3}); k = a uniformly chosen DISTINCT token of
  seq; v = a random pool token (may equal k); query = [k, v]. Target = seq with every
  k replaced by v."""
  rows = np.arange(len(d))
  el = Elements(d.ints(S_N, max(1, cfg.min_len - 3), cfg.max_len - 3))
  seq = elem_tokens(d, cfg, S_TOK, el)
  first = first_occurrence(el.seg, seq)
  distinct = seq[first]  # per row, in order of first occurrence
  n_distinct = np.bincount(el.seg[first], minlength=len(d))
  k = distinct[offsets(n_distinct)[:-1] + d.ints(S_K, 0, n_distinct - 1)]
  v = rand_tokens(d, cfg, S_V, rows, np.zeros(len(d), np.int64))
  query = Ragged(np.stack([k, v], axis=1).reshape(-1), np.full(len(d), 2, np.int64))
  target = np.where(seq == el.row_of(k), el.row_of(v), seq)
  return _body(cfg, Ragged(seq, el.lengths), query), Ragged(target, el.lengths)


# ------------------------------------------------------------------ set operations


def _check_set_op(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (T >= 2 tokens so the shared pool of T // 2 tokens is not empty)")
  require(task, cfg, cfg.pool_size >= (cfg.max_len - 1) // 2, "pool_size",
          f">= (max_len - 1) // 2 = {(cfg.max_len - 1) // 2} distinct tokens")


def _set_op_max_target(cfg: SyntheticConfig) -> int:
  return max(1, (cfg.max_len - 1) // 2)  # at most T // 2 distinct tokens, or [empty]


# Whole-pool redraws before the (slow, rare) fallback of `_distinct_tokens`.
POOL_REDRAWS = 32


def _distinct_tokens(d: Draws, cfg: SyntheticConfig, k: np.ndarray) -> Ragged:
  """Per row, k DISTINCT pool tokens, a uniform random ordered sample without
  replacement: k i.i.d. tokens, redrawn as a whole (attempt + 1) until distinct; after
  `POOL_REDRAWS` attempts, the k pool ids with the smallest random keys."""
  kel = Elements(k)
  out = np.empty(len(kel.seg), np.int32)
  todo = np.arange(len(d))
  for attempt in range(POOL_REDRAWS):
    if not len(todo):
      return Ragged(out, k)
    dd = d.take(todo)
    el = Elements(k[todo])
    toks = elem_tokens(dd, cfg, S_POOL, el, attempt)
    dup = ~first_occurrence(el.seg, toks)
    bad = np.zeros(len(todo), bool)
    bad[el.seg[dup]] = True
    good = ~bad[el.seg]
    out[ranges(kel.start[todo[~bad]], k[todo[~bad]])] = toks[good]
    todo = todo[bad]
  ids = np.arange(cfg.pool_size)
  for row in todo:  # a pool barely larger than k: rank the whole pool
    keys = d.take(np.asarray([row])).words(S_POOL_FALLBACK, np.zeros_like(ids), ids)
    pick = np.argsort(keys, kind="stable")[:k[row]]
    out[kel.start[row]:kel.start[row] + k[row]] = pick + cfg.pool_low
  return Ragged(out, k)


def _two_seqs(d: Draws, cfg: SyntheticConfig):
  """T ~ U{max(2, lo-1) .. hi-1}; n1 ~ U{0..T}; n2 = T - n1; T // 2 distinct pool
  tokens; seq1 (n1 tokens), seq2 (n2 tokens) drawn with replacement from them (body
  position p of a sequence token takes draw p of one index stream).

  All four set operations list their result in order of FIRST APPEARANCE in seq1 then
  seq2; the reference emitted Python's arbitrary set iteration order (a documented
  deviation). An empty result becomes [empty_target] in `generate`.

  Returns the body, and per body element: in seq1, in seq2, first appearance of its
  token in the body, token in seq2 (False for the divider)."""
  total = d.ints(S_T, max(2, cfg.min_len - 1), cfg.max_len - 1)
  n1 = d.ints(S_N1, 0, total)
  k = total // 2
  pool = _distinct_tokens(d, cfg, k)
  slots = offsets(k + 1)  # k pool slots + 1 for the divider, per row
  el = Elements(total + 1)
  n1e = el.row_of(n1)
  is_div = el.pos == n1e
  ke = el.row_of(k)
  idx = el.draw_ints(d, S_I1, 0, ke - 1)
  idx[is_div] = ke[is_div]  # the divider's own slot
  slot = el.row_of(slots[:-1]) + idx
  pool_flat = np.append(pool.values, np.int32(cfg.arg_divider))  # any id: overwritten
  body = pool_flat[np.minimum(el.row_of(offsets(k)[:-1]) + idx, len(pool.values))]
  body[is_div] = cfg.arg_divider
  first = first_occurrence_small(el.seg, idx, el.pos, slots[:-1], int(slots[-1]))
  is1 = el.pos < n1e
  is2 = el.pos > n1e
  in2 = np.zeros(int(slots[-1]), bool)
  in2[slot[is2]] = True
  return Ragged(body, el.lengths), el, is1, is2, first, in2[slot]


def _set_op(name: str, keep: Callable):
  def sample(d: Draws, cfg: SyntheticConfig):
    body, el, is1, is2, first, in2 = _two_seqs(d, cfg)
    mask = keep(is1, is2, first, in2)
    return body, Ragged(body.values[mask], np.bincount(el.seg[mask], minlength=len(d)))
  sample.__name__ = sample.__qualname__ = name
  register(name, max_target_len=_set_op_max_target, check=_check_set_op)(sample)
  return sample


# First appearances in seq1 + seq2: union = all of them (not the divider); seq1's are
# its tokens' first appearances in seq1; a first appearance in seq2 is a token of
# seq2 absent from seq1.
union = _set_op("union", lambda is1, is2, first, in2: first & (is1 | is2))
union.__doc__ = "`_two_seqs`; target = tokens in seq1 or seq2, in order of first appearance."
intersect = _set_op("intersect", lambda is1, is2, first, in2: first & is1 & in2)
intersect.__doc__ = ("`_two_seqs`; target = tokens in both, in order of first appearance "
                     "(in seq1).")
set1_minus_set2 = _set_op("set1_minus_set2", lambda is1, is2, first, in2: first & is1 & ~in2)
set1_minus_set2.__doc__ = ("`_two_seqs`; target = tokens of seq1 not in seq2, in order "
                           "of first appearance.")
set2_minus_set1 = _set_op("set2_minus_set1", lambda is1, is2, first, in2: first & is2)
set2_minus_set1.__doc__ = ("`_two_seqs`; target = tokens of seq2 not in seq1, in order "
                           "of first appearance.")
