"""The four set operations of the binary tasks: union, intersect, set1_minus_set2 and
set2_minus_set1, over body = seq1 + [cfg.arg_divider] + seq2.

Registered (`tasks/synthetic/registration.py`) when `tasks.synthetic.generators` is
imported, after the other binary tasks (`tasks/synthetic/binary.py`, whose draw streams
S_* and MAX_TRIES they use). T ~ U{lo-1 .. hi-1} (PAPER 9..219) tokens in all.
"""
from __future__ import annotations

import numpy as np

from tasks.synthetic.binary import (MAX_TRIES, S_I1, S_N1, S_POOL, S_T)
from tasks.synthetic.config import SyntheticConfig
from tasks.synthetic.kernels import (begin, draw_int, draw_token, end, helper, kernel,
                                     stream_key)
from tasks.synthetic.registration import register, require

def _check_set_op(task: str, cfg: SyntheticConfig) -> None:
  require(task, cfg, cfg.max_len >= 3, "max_len",
          ">= 3 (T >= 2 tokens so the shared pool of T // 2 tokens is not empty)")
  require(task, cfg, cfg.pool_size >= (cfg.max_len - 1) // 2, "pool_size",
          f">= (max_len - 1) // 2 = {(cfg.max_len - 1) // 2} distinct tokens")


def _set_op_max_target(cfg: SyntheticConfig) -> int:
  return max(1, (cfg.max_len - 1) // 2)  # at most T // 2 distinct tokens, or [empty]


# The op codes of `set_op`.
UNION, INTERSECT, SET1_MINUS_SET2, SET2_MINUS_SET1 = range(4)


@helper
def distinct_tokens(key, p, k, pool, taken, stamp):
  """pool[0:k] = k DISTINCT pool tokens, a uniform random ordered sample without
  replacement: draws j = 0, 1, ... of S_POOL, each kept unless already taken (taken[t]
  == stamp), until k are kept. `_check_set_op` keeps k <= pool_size, so about k * H_k
  draws at most are expected (coupon collector) and MAX_TRIES * k is never reached."""
  sub = stream_key(key, S_POOL)
  got = 0
  j = 0
  while got < k:
    if j >= MAX_TRIES * k:
      raise RuntimeError("distinct_tokens: too many repeated draws (pool too small)")
    t = draw_token(sub, j, p)
    j += 1
    if taken[t] != stamp:
      taken[t] = stamp
      pool[got] = t
      got += 1


@helper
def set_op(keys, p, out, op):
  """The four set operations (op: UNION, ...) over a batch. Per example: T ~ U{max(2,
  lo-1) .. hi-1}; n1 ~ U{0..T}; n2 = T - n1; k = T // 2 distinct pool tokens
  (`distinct_tokens`); seq1 (n1 tokens), seq2 (n2 tokens) drawn with replacement from
  them, body position j (but the divider, j = n1) taking pool[U{0..k-1}], draw j
  of S_I1. The target lists the kept tokens in order of FIRST APPEARANCE in seq1 then
  seq2 (the reference emitted Python's arbitrary set iteration order, a documented
  deviation); an empty result becomes [empty_target] (`kernels.end`)."""
  hi = p.max_len
  pool = np.empty(hi, np.int64)
  slot = np.empty(hi, np.int64)  # pool index of each body position (k: the divider)
  kept = np.empty(hi, np.int64)  # the target, before it is copied out
  taken = np.zeros(p.pool_low + p.pool_size, np.int64)  # stamps of `distinct_tokens`
  other = np.zeros(hi, np.int64)  # = e + 1: the pool slot occurs in the other sequence
  done = np.zeros(hi, np.int64)  # = e + 1: the pool slot is listed (or never to be)
  for e in range(len(keys)):
    key = keys[e]
    stamp = e + 1
    at, t0 = begin(out, e)
    total = draw_int(stream_key(key, S_T), 0, max(2, p.min_len - 1), hi - 1)
    n1 = draw_int(stream_key(key, S_N1), 0, 0, total)
    k = total // 2
    distinct_tokens(key, p, k, pool, taken, stamp)
    sub = stream_key(key, S_I1)
    for j in range(total + 1):  # draw n1 is made and discarded: no branch per token
      i = draw_int(sub, j, 0, k - 1)
      slot[j] = i
      out.inputs[at + j] = pool[i]
    out.inputs[at + n1] = p.arg_divider
    slot[n1] = k
    done[k] = stamp  # the divider's slot is never listed
    # Scan seq1 then seq2 (union), seq1 (intersect, set1 - set2) or seq2 (set2 -
    # set1), listing each token's first appearance if it is (not) in the other one.
    if op == SET2_MINUS_SET1:
      start, stop = n1 + 1, total + 1
      for j in range(n1):
        other[slot[j]] = stamp
    else:
      start, stop = 0, (total + 1 if op == UNION else n1)
      if op != UNION:
        for j in range(n1 + 1, total + 1):
          other[slot[j]] = stamp
    # Branch-free (the tests are random, so branches would mispredict half the time):
    # kept[m] is always written, m advances only for a new listed token.
    want_other = op == INTERSECT
    m = 0
    for j in range(start, stop):
      s = slot[j]
      listed = (op == UNION) | ((other[s] == stamp) == want_other)
      kept[m] = pool[s]
      m += listed & (done[s] != stamp)
      done[s] = stamp if listed else done[s]
    for j in range(m):
      out.targets[t0 + j] = kept[j]
    end(out, e, total + 1, m, p.empty_target)


@register("union", max_target_len=_set_op_max_target, check=_check_set_op)
@kernel
def union(keys, p, out):
  """`set_op`; target = tokens in seq1 or seq2, in order of first appearance."""
  set_op(keys, p, out, UNION)


@register("intersect", max_target_len=_set_op_max_target, check=_check_set_op)
@kernel
def intersect(keys, p, out):
  """`set_op`; target = tokens in both, in order of first appearance (in seq1)."""
  set_op(keys, p, out, INTERSECT)


@register("set1_minus_set2", max_target_len=_set_op_max_target, check=_check_set_op)
@kernel
def set1_minus_set2(keys, p, out):
  """`set_op`; target = tokens of seq1 not in seq2, in order of first appearance."""
  set_op(keys, p, out, SET1_MINUS_SET2)


@register("set2_minus_set1", max_target_len=_set_op_max_target, check=_check_set_op)
@kernel
def set2_minus_set1(keys, p, out):
  """`set_op`; target = tokens of seq2 not in seq1, in order of first appearance."""
  set_op(keys, p, out, SET2_MINUS_SET1)
