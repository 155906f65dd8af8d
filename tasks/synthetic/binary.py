"""The binary synthetic tasks: body = seq + [cfg.arg_divider] + query (or seq2).

Registered (`tasks/synthetic/registration.py`) when `tasks.synthetic.generators` is
imported; the set operations (union, intersect, set1_minus_set2, set2_minus_set1) are
in `tasks/synthetic/set_ops.py` and share this module's draw streams. Below, lo / hi are
cfg.min_len / cfg.max_len (PAPER: 10 / 220, TINY: 10 / 64) and every body length,
divider included, lies in [lo, hi]. The paper's numbers come from the reference code's
formulas in lo and hi, which are used as they are, so PAPER reproduces them exactly and
other configs scale: count n ~ U{lo-2 .. hi-2}; query length <= (hi-1) // 3 (73); sort m ~
U{lo // 2 .. (hi-1) // 2} (5..109) with |seq| <= hi-1-m (219-m); replace |seq| ~
U{lo-3 .. hi-3}; set operations T ~ U{lo-1 .. hi-1} (9..219). Lower bounds are clamped
to what the sampler needs (e.g. max(1, lo-2)), which changes nothing for lo >= 4; a
config whose max_len is too small for a task raises ValueError (each task's `check`).

Every task is a compiled kernel over a batch (`tasks/synthetic/kernels.py`), one
example at a time: example e's draws come from its key keys[e], named by stream (S_*
below) and position (draw j of a stream is its j-th element, e.g. token j of a
sequence). Rejection loops redraw with the attempt number in the stream's sub-key
(`stream_key(key, S_x, attempt)`, attempt = 0, 1, ...), so each example's draws are
its own whatever the batch. The kernels write seq, divider and query straight into
the output; the header and the empty-target placeholder are `kernels.begin` /
`kernels.end`'s.
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.registration import (NO_OFFSET, YES_OFFSET, register, require,
                                        require_answer_ids)
from tasks.synthetic.kernels import (begin, draw_int, draw_token, draw_unit, end,
                                     helper, kernel, partition_bins, shuffle,
                                     stream_key, write_number)

# Resampling bound of the rejection loops below; reaching it means the config makes the
# wanted event (almost) impossible, e.g. a pool so small that every query is present.
MAX_TRIES = 10_000

# Draw streams (names of independent random sequences within one example).
(S_N, S_Q, S_C, S_TOK, S_SHUF, S_COIN, S_QLEN, S_SLEN, S_QTOK, S_R, S_GAP, S_FILL,
 S_LONG, S_ALEN_Q, S_ALEN_S, S_ASEQ, S_AQ, S_M, S_ORDER, S_CHOICE, S_BIN, S_K, S_V,
 S_T, S_N1, S_POOL, S_I1) = range(1, 28)


@helper
def find_first(buf, s0, s_len, q0, q_len):
  """Index of the first occurrence of buf[q0:q0+q_len] in buf[s0:s0+s_len], or -1 (0
  for an empty query); a direct scan, as bodies are at most hi tokens."""
  for i in range(s_len - q_len + 1):
    j = 0
    while j < q_len and buf[s0 + i + j] == buf[q0 + j]:
      j += 1
    if j == q_len:
      return i
  return -1


# ------------------------------------------------------------------ count


def _check_count(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (one sequence token + the argument divider + the query token)")


@register("count", max_target_len=lambda cfg: len(str(cfg.max_len - 2)),
          check=_check_count)
@kernel
def count(keys, p, out):
  """n ~ U{max(1, lo-2) .. hi-2}; a query token q; c ~ U{0..n} copies of q plus n - c
  random tokens, shuffled (Fisher-Yates); query = [q]. Target = the decimal count of q
  in seq (random tokens equal to q count too), one token per digit: digit d ->
  pool_low + d (`kernels.write_number`)."""
  for e in range(len(keys)):
    key = keys[e]
    at, t0 = begin(out, e)
    n = draw_int(stream_key(key, S_N), 0, max(1, p.min_len - 2), p.max_len - 2)
    q = draw_token(stream_key(key, S_Q), 0, p)
    c = draw_int(stream_key(key, S_C), 0, 0, n)
    sub = stream_key(key, S_TOK)
    hits = 0
    for j in range(n):
      t = q if j < c else draw_token(sub, j, p)
      out.inputs[at + j] = t
      hits += t == q
    shuffle(out.inputs, at, n, stream_key(key, S_SHUF))
    out.inputs[at + n] = p.arg_divider
    out.inputs[at + n + 1] = q
    end(out, e, n + 2, write_number(out.targets, t0, hits, p.pool_low), p.empty_target)


# ------------------------------------------------------------------ search, delete


def _check_query_tasks(task: str, cfg: SyntheticConfig) -> None:
  need = max(4, 2 * cfg.min_len + 1)
  require(task, cfg, cfg.max_len >= need, "max_len",
          f">= max(4, 2 * min_len + 1) = {need}, so that a present query (|q| >= 1, "
          f"|seq| >= 2|q|) and an absent one (|seq| >= |q| >= min_len) both fit")


@helper
def max_query_len(hi):
  """Longest present query for max_len hi: (hi - 1) // 3 (PAPER 73), so q, >= 2|q| seq
  tokens and the divider fit in hi."""
  return (hi - 1) // 3


@helper
def query_present(key, p, buf, at, gaps):
  """|q| ~ U{1..(hi-1)//3}; |seq| ~ U{2|q| .. hi-1-|q|}; the lengths are redrawn until
  |seq| + 1 + |q| >= lo (the reference's rejection of short inputs); q = rand_tokens;
  q is inserted r ~ U{1..|seq| // |q|} times, the |seq| - r|q| random filler tokens
  (filler i = draw i of S_FILL) split around the copies by multinomial(uniform over
  r + 1 gaps), empty gaps allowed. Writes seq + [divider] + q at buf[at:]; returns
  (|seq|, |q|). gaps: scratch of >= hi entries."""
  lo, hi = p.min_len, p.max_len
  q_len, s_len = 0, -1
  for attempt in range(MAX_TRIES):
    q_len = draw_int(stream_key(key, S_QLEN, attempt), 0, 1, max_query_len(hi))
    s_len = draw_int(stream_key(key, S_SLEN, attempt), 0, 2 * q_len, hi - 1 - q_len)
    if s_len + 1 + q_len >= lo:
      break
  if s_len + 1 + q_len < lo:
    raise RuntimeError("no present-query lengths fit [min_len, max_len]")
  q0 = at + s_len + 1
  buf[q0 - 1] = p.arg_divider
  sub = stream_key(key, S_QTOK)
  for j in range(q_len):
    buf[q0 + j] = draw_token(sub, j, p)
  r = draw_int(stream_key(key, S_R), 0, 1, s_len // q_len)
  gaps[:r + 1] = 0
  sub = stream_key(key, S_GAP)
  for b in range(s_len - r * q_len):  # filler ball b into gap U{0..r}
    gaps[draw_int(sub, b, 0, r)] += 1
  sub = stream_key(key, S_FILL)
  pos = at
  f = 0  # filler ordinal
  for g in range(r + 1):  # gap 0, q, gap 1, q, ..., gap r
    if g:
      for j in range(q_len):
        buf[pos + j] = buf[q0 + j]
      pos += q_len
    for _ in range(gaps[g]):
      buf[pos] = draw_token(sub, f, p)
      pos += 1
      f += 1
  return s_len, q_len


@helper
def query_absent(key, p, buf, at):
  """Lengths: with probability 0.01, |q| ~ U{lo+1..hi} and |seq| ~ U{0..|q|-1} (query
  longer than seq, seq possibly empty); else |seq| ~ U{lo..hi}, |q| ~ U{lo..|seq|};
  redrawn until |seq| + 1 + |q| <= hi. Then seq, q = rand_tokens (S_ASEQ, S_AQ),
  redrawn until q is not a contiguous sub-sequence of seq (the reference compared
  string forms, which could also reject e.g. token 12 inside 112). Writes seq +
  [divider] + q at buf[at:]; returns (|seq|, |q|)."""
  lo, hi = p.min_len, p.max_len
  s_len, q_len = hi, hi
  for attempt in range(MAX_TRIES):
    if draw_unit(stream_key(key, S_LONG, attempt), 0) < 0.01:
      q_len = draw_int(stream_key(key, S_ALEN_Q, attempt), 0, lo + 1, hi)
      s_len = draw_int(stream_key(key, S_ALEN_S, attempt), 0, 0, q_len - 1)
    else:
      s_len = draw_int(stream_key(key, S_ALEN_S, attempt), 0, lo, hi)
      q_len = draw_int(stream_key(key, S_ALEN_Q, attempt), 0, lo, s_len)
    if s_len + 1 + q_len <= hi:
      break
  if s_len + 1 + q_len > hi:
    raise RuntimeError("no absent-query lengths fit [min_len, max_len]")
  q0 = at + s_len + 1
  buf[q0 - 1] = p.arg_divider
  for attempt in range(MAX_TRIES):
    sub = stream_key(key, S_ASEQ, attempt)
    for j in range(s_len):
      buf[at + j] = draw_token(sub, j, p)
    sub = stream_key(key, S_AQ, attempt)
    for j in range(q_len):
      buf[q0 + j] = draw_token(sub, j, p)
    if find_first(buf, at, s_len, q0, q_len) < 0:
      return s_len, q_len
  raise RuntimeError("every absent query drawn was present (the token pool is too small)")


@helper
def present_or_absent(key, p, p_present, buf, at, gaps):
  """`query_present` with probability p_present, else `query_absent` (one coin, kept
  when lengths are redrawn); returns (|seq|, |q|, whether q occurs in seq: always
  for a present query, never for an absent one, which was checked when drawn)."""
  if draw_unit(stream_key(key, S_COIN), 0) < p_present:
    s_len, q_len = query_present(key, p, buf, at, gaps)
    return s_len, q_len, True
  s_len, q_len = query_absent(key, p, buf, at)
  return s_len, q_len, False


def _check_search(task: str, cfg: SyntheticConfig) -> None:
  require_answer_ids(task, cfg)
  _check_query_tasks(task, cfg)


@register("search", max_target_len=lambda cfg: 1, check=_check_search)
@kernel
def search(keys, p, out):
  """50% `query_present`, 50% `query_absent` (the coin is kept when lengths are
  redrawn, so the split is exactly 50/50; the reference re-flipped it). Target = [yes]
  if q is a contiguous sub-sequence of seq else [no]; yes = pool_low + 10, no =
  pool_low + 11 (PAPER 12 / 13; the reference used the pieces of 'yes' / 'no')."""
  gaps = np.empty(p.max_len + 1, np.int64)
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    s_len, q_len, found = present_or_absent(keys[e], p, 0.5, out.inputs, at, gaps)
    out.targets[t0] = p.pool_low + (YES_OFFSET if found else NO_OFFSET)
    end(out, e, s_len + 1 + q_len, 1, p.empty_target)


@register("delete", max_target_len=lambda cfg: cfg.max_len - 2, check=_check_query_tasks)
@kernel
def delete(keys, p, out):
  """75% `query_present`, 25% `query_absent` (coin kept as in `search`). Target = seq
  with the FIRST occurrence of q removed, seq unchanged if absent; an empty result (q
  longer than an empty seq) becomes [empty_target] (`kernels.end`). |seq| <= hi - 2."""
  gaps = np.empty(p.max_len + 1, np.int64)
  for e in range(len(keys)):
    at, t0 = begin(out, e)
    s_len, q_len, found = present_or_absent(keys[e], p, 0.75, out.inputs, at, gaps)
    # The first occurrence: filler tokens may form one before the inserted copies.
    i = find_first(out.inputs, at, s_len, at + s_len + 1, q_len) if found else -1
    m = 0
    for j in range(s_len):
      if i < 0 or j < i or j >= i + q_len:
        out.targets[t0 + m] = out.inputs[at + j]
        m += 1
    end(out, e, s_len + 1 + q_len, m, p.empty_target)


# ------------------------------------------------------------------ sort


@helper
def sort_order_range(lo, hi):
  """(lowest, highest) number m of order tokens for lengths [lo, hi]: max(1, lo // 2),
  (hi - 1) // 2."""
  return max(1, lo // 2), (hi - 1) // 2


def _check_sort(task: str, cfg: SyntheticConfig) -> None:
  m_lo, _ = sort_order_range(cfg.min_len, cfg.max_len)
  require(task, cfg, cfg.max_len >= 2 * m_lo + 1, "max_len",
          f">= 2 * max(1, min_len // 2) + 1 = {2 * m_lo + 1}, room for the m >= {m_lo} "
          f"order tokens, a sequence of >= m tokens and the divider")


@register("sort", check=_check_sort,
          max_target_len=lambda cfg: cfg.max_len - 1 - sort_order_range(cfg.min_len,
                                                                       cfg.max_len)[0])
@kernel
def sort(keys, p, out):
  """m ~ U{max(1, lo//2) .. (hi-1)//2} (PAPER 5..109, TINY 5..31); order =
  rand_tokens(m) (repeats possible); |seq| ~ U{m .. hi-1-m}; seq = m tokens drawn with
  replacement from order (bin b takes order[U{0..m-1}], draw b of S_CHOICE), each
  repeated by its part of partition_no_zeros(|seq|, m), shuffled (Fisher-Yates); query
  = order. Target = seq stably sorted by each token's index in order, a token repeated
  in order taking its LAST index (as the reference's dict did). Body |seq| + 1 + m lies
  in [2m + 1, hi], and 2m + 1 >= lo."""
  hi = p.max_len
  bins = np.empty(hi, np.int64)
  bin_tok = np.empty(hi, np.int64)  # token of each bin
  bin_rank = np.empty(hi, np.int64)  # its rank: its last index in order
  per_rank = np.empty(hi, np.int64)
  marks = np.empty(hi + 1, np.int64)
  last = np.empty(p.pool_low + p.pool_size, np.int64)  # token -> last index in order
  m_lo, m_hi = sort_order_range(p.min_len, hi)
  for e in range(len(keys)):
    key = keys[e]
    at, t0 = begin(out, e)
    m = draw_int(stream_key(key, S_M), 0, m_lo, m_hi)
    s_len = draw_int(stream_key(key, S_N), 0, m, hi - 1 - m)
    o0 = at + s_len + 1
    out.inputs[o0 - 1] = p.arg_divider
    sub = stream_key(key, S_ORDER)
    for j in range(m):
      t = draw_token(sub, j, p)
      out.inputs[o0 + j] = t
      last[t] = j  # every order token is written before any is read: no stale entry
    sub = stream_key(key, S_CHOICE)
    for b in range(m):
      bin_tok[b] = out.inputs[o0 + draw_int(sub, b, 0, m - 1)]
      bin_rank[b] = last[bin_tok[b]]
    partition_bins(bins, s_len, m, stream_key(key, S_BIN))
    # seq = the tokens of the bins, then shuffled: the same as mapping shuffled bins.
    per_rank[:m] = 0
    for j in range(s_len):
      b = bins[j]
      out.inputs[at + j] = bin_tok[b]
      per_rank[bin_rank[b]] += 1
    shuffle(out.inputs, at, s_len, stream_key(key, S_SHUF))
    # Equal ranks mean equal tokens (rank = the token's last index in order), so the
    # target is order[r] repeated by the count of rank r, r = 0..m-1: no sort. Written
    # branch-free (random run lengths mispredict): marks[i] = the number of ranks whose
    # run starts at i, so the running sum of marks - 1 is the rank at target index i.
    marks[:s_len + 1] = 0
    pos = 0
    for r in range(m):
      marks[pos] += 1
      pos += per_rank[r]
    r = -1
    for j in range(s_len):
      r += marks[j]
      out.targets[t0 + j] = out.inputs[o0 + r]
    end(out, e, s_len + 1 + m, s_len, p.empty_target)


# ------------------------------------------------------------------ replace


def _check_replace(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 4, "max_len",
          ">= 4 (one sequence token + the divider + the key and value tokens)")


@register("replace", max_target_len=lambda cfg: cfg.max_len - 3, check=_check_replace)
@kernel
def replace(keys, p, out):
  """seq = rand_tokens(U{max(1, lo-3) .. hi-3}); k = a uniformly chosen DISTINCT token of
  seq (U{0..#distinct-1} over the distinct tokens in order of first occurrence); v = a
  random pool token (may equal k); query = [k, v]. Target = seq with every k replaced
  by v."""
  distinct = np.empty(p.max_len, np.int64)
  seen = np.zeros(p.pool_low + p.pool_size, np.int64)  # = e + 1 once seen in example e
  for e in range(len(keys)):
    key = keys[e]
    at, t0 = begin(out, e)
    n = draw_int(stream_key(key, S_N), 0, max(1, p.min_len - 3), p.max_len - 3)
    sub = stream_key(key, S_TOK)
    nd = 0
    for j in range(n):
      t = draw_token(sub, j, p)
      out.inputs[at + j] = t
      if seen[t] != e + 1:
        seen[t] = e + 1
        distinct[nd] = t
        nd += 1
    k = distinct[draw_int(stream_key(key, S_K), 0, 0, nd - 1)]
    v = draw_token(stream_key(key, S_V), 0, p)
    out.inputs[at + n] = p.arg_divider
    out.inputs[at + n + 1] = k
    out.inputs[at + n + 2] = v
    for j in range(n):
      t = out.inputs[at + j]
      out.targets[t0 + j] = v if t == k else t
    end(out, e, n + 3, n, p.empty_target)
