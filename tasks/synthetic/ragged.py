"""Ragged batches of examples: flat int32 values + per-example lengths.

A batch of variable-length sequences is stored as values + lengths: row b is
`values[offsets[b]:offsets[b + 1]]`, which is what the generators write and the
fixed-split files store. `Batch` pairs inputs and targets; gathers of rows are a
compiled kernel (`kernels.take_rows`).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterator, Sequence

import numpy as np

from tasks.synthetic import kernels


def offsets(lengths: np.ndarray) -> np.ndarray:
  """[0, l0, l0 + l1, ...] (int64, len(lengths) + 1)."""
  out = np.zeros(len(lengths) + 1, np.int64)
  np.cumsum(lengths, out=out[1:])
  return out


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
    """The examples `rows` (0 <= row < len), in that order."""
    rows = np.asarray(rows, np.int64)
    if len(rows) == len(self) and (len(rows) == 0 or (
        rows[0] == 0 and np.all(rows[1:] - rows[:-1] == 1))):
      return self
    if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
      raise IndexError(f"rows must lie in [0, {len(self)}) for a Batch of {len(self)} "
                       f"examples, got {rows.min()}..{rows.max()}")
    inputs, il = kernels.take_rows(self.inputs, self.input_offsets, rows)
    targets, tl = kernels.take_rows(self.targets, self.target_offsets, rows)
    return Batch(inputs, il, targets, tl)

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
