"""Ragged int arrays for the vectorized generators: flat values + per-row lengths.

A batch of variable-length sequences is `Ragged(values, lengths)`: row b is
`values[offsets[b]:offsets[b + 1]]`. The helpers below are the few segmented
operations the samplers need (concatenate rows, first occurrences, gathers), each a
handful of whole-array numpy calls, so the cost per token is nanoseconds.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterator, NamedTuple, Sequence

import numpy as np


def offsets(lengths: np.ndarray) -> np.ndarray:
  """[0, l0, l0 + l1, ...] (int64, len(lengths) + 1)."""
  out = np.zeros(len(lengths) + 1, np.int64)
  np.cumsum(lengths, out=out[1:])
  return out


def segment_ids(lengths: np.ndarray) -> np.ndarray:
  """The row of every element."""
  return np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)


def positions(lengths: np.ndarray, offs: "np.ndarray | None" = None) -> np.ndarray:
  """The position of every element within its row."""
  offs = offsets(lengths) if offs is None else offs
  return np.arange(offs[-1], dtype=np.int64) - np.repeat(offs[:-1], lengths)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """Concatenation of arange(starts[b], starts[b] + lengths[b]) over rows b."""
  offs = offsets(lengths)
  return np.arange(offs[-1], dtype=np.int64) + np.repeat(
      np.asarray(starts, np.int64) - offs[:-1], lengths)


class Ragged(NamedTuple):
  """Row b = values[offsets[b]:offsets[b+1]]."""

  values: np.ndarray
  lengths: np.ndarray


def const_rows(ids: Sequence[int], num_rows: int) -> Ragged:
  """The same row `ids` repeated num_rows times."""
  ids = np.asarray(ids, np.int32)
  return Ragged(np.tile(ids, num_rows), np.full(num_rows, len(ids), np.int64))


def concat_rows(parts: Sequence[Ragged]) -> Ragged:
  """Row-wise concatenation: row b = parts[0] row b + parts[1] row b + ..."""
  lengths = np.zeros(len(parts[0].lengths), np.int64)
  for p in parts:
    lengths += p.lengths
  out_offs = offsets(lengths)
  values = np.empty(out_offs[-1], np.int32)
  before = out_offs[:-1].copy()  # where each row's next part starts
  for p in parts:
    values[ranges(before, p.lengths)] = p.values
    before += p.lengths
  return Ragged(values, lengths)


def merge_rows(num_rows: int, pieces: Sequence[tuple[np.ndarray, Ragged]]) -> Ragged:
  """One Ragged of num_rows rows from pieces (rows, r): row rows[i] = row i of r."""
  lengths = np.zeros(num_rows, np.int64)
  for rows, r in pieces:
    lengths[rows] = r.lengths
  offs = offsets(lengths)
  values = np.empty(offs[-1], np.int32)
  for rows, r in pieces:
    values[ranges(offs[rows], r.lengths)] = r.values
  return Ragged(values, lengths)


def first_occurrence(seg: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Mask of the elements whose id does not occur earlier in their row.

  seg: row of each element (non-decreasing; a row's elements in row order), ids:
  non-negative ints. One sort of (row, id, flat index) packed into an int64.
  """
  n = len(ids)
  mask = np.zeros(n, bool)
  if not n:
    return mask
  idx_bits = max(1, (n - 1).bit_length())
  id_bits = max(1, int(ids.max()).bit_length())
  if idx_bits + id_bits + max(1, int(seg[-1]).bit_length()) > 63:
    raise ValueError("first_occurrence: rows x ids x elements do not fit in 63 bits")
  key = seg << id_bits
  key |= ids
  key <<= idx_bits
  key |= np.arange(n, dtype=np.int64)
  key.sort()
  group = key >> idx_bits
  start = np.empty(n, bool)
  start[0] = True
  np.not_equal(group[1:], group[:-1], out=start[1:])
  mask[key[start] & ((1 << idx_bits) - 1)] = True
  return mask


def first_occurrence_small(seg: np.ndarray, ids: np.ndarray, pos: np.ndarray,
                           id_start: np.ndarray, num_ids: int) -> np.ndarray:
  """`first_occurrence` for small ids: row b's ids lie in [0, n_b) and its table slots
  are id_start[b] + id (num_ids slots in all). No sort: a minimum per slot."""
  slot = id_start[seg] + ids
  first = np.full(num_ids, np.iinfo(np.int64).max, np.int64)
  np.minimum.at(first, slot, pos)
  return first[slot] == pos


@dataclasses.dataclass(frozen=True)
class Batch:
  """Examples of a task as ragged int32 (inputs, targets), without EOS."""

  inputs: np.ndarray
  input_lengths: np.ndarray
  targets: np.ndarray
  target_lengths: np.ndarray

  def __len__(self) -> int:
    return len(self.input_lengths)

  @functools.cached_property
  def input_offsets(self) -> np.ndarray:
    return offsets(self.input_lengths)

  @functools.cached_property
  def target_offsets(self) -> np.ndarray:
    return offsets(self.target_lengths)

  def example(self, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Example j as (inputs, targets) copies."""
    io, to = self.input_offsets, self.target_offsets
    return (self.inputs[io[j]:io[j + 1]].copy(), self.targets[to[j]:to[j + 1]].copy())

  def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    return (self.example(j) for j in range(len(self)))

  def take(self, rows: np.ndarray) -> "Batch":
    """The examples `rows`, in that order."""
    rows = np.asarray(rows, np.int64)
    if len(rows) == len(self) and (len(rows) == 0 or (
        rows[0] == 0 and np.all(rows[1:] - rows[:-1] == 1))):
      return self
    il, tl = self.input_lengths[rows], self.target_lengths[rows]
    return Batch(self.inputs[ranges(self.input_offsets[rows], il)], il,
                 self.targets[ranges(self.target_offsets[rows], tl)], tl)

  def slice(self, start: int, stop: int) -> "Batch":
    """Examples start..stop-1 (views, no copy)."""
    io, to = self.input_offsets, self.target_offsets
    return Batch(self.inputs[io[start]:io[stop]], self.input_lengths[start:stop],
                 self.targets[to[start]:to[stop]], self.target_lengths[start:stop])

  @staticmethod
  def from_examples(examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> "Batch":
    """A Batch of (inputs, targets) pairs (e.g. from a per-example generator)."""
    ins = [np.asarray(i, np.int32).reshape(-1) for i, _ in examples]
    tgs = [np.asarray(t, np.int32).reshape(-1) for _, t in examples]
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int32)
    return Batch(cat(ins), np.asarray([len(x) for x in ins], np.int64),
                 cat(tgs), np.asarray([len(x) for x in tgs], np.int64))

  @staticmethod
  def concatenate(batches: Sequence["Batch"]) -> "Batch":
    return Batch(np.concatenate([b.inputs for b in batches]),
                 np.concatenate([b.input_lengths for b in batches]),
                 np.concatenate([b.targets for b in batches]),
                 np.concatenate([b.target_lengths for b in batches]))
