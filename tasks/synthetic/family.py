"""The protocol every synthetic task family follows, and the variants it lists.

A family (the 18 simple tasks, LIME, the nesting language; `tasks/synthetic/families.py`)
names its tasks and id layouts, generates their examples, bounds their lengths, names
their special ids and describes itself. `tasks/synthetic/catalog.py` lists the families;
the SeqIO registry, the fixed splits, the mixtures and `python -m tasks.inspect` all read
the catalogue, so a new family is added in its own module and the catalogue's list only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np

from tasks.synthetic.ragged import Batch

# generate(task, cfg, split, seed, index) -> (inputs, targets): int ids, no EOS.
GenerateFn = Callable[[str, Any, str, int, int], "tuple[np.ndarray, np.ndarray]"]
# generate_batch(task, cfg, split, seed, indices) -> the same examples as a ragged Batch.
BatchFn = Callable[..., Batch]


@dataclasses.dataclass(frozen=True)
class Variant:
  """One registered task of a family: its SeqIO name, the generator key that names its
  random stream, its id layout, and the layout's suffix ("" paper, "_tiny")."""

  name: str
  task: str
  cfg: Any
  layout: str


class TaskFamily(Protocol):
  """A family of synthetic tasks.

  `generate` and `generate_batch` are plain functions `(task, cfg, split, seed, ...)`
  (their qualified names are part of the fixed splits' cache key). `batch_native`
  says whether `generate_batch` is the family's own batch generator (the fixed splits
  then call it) or a loop over `generate`.
  """

  name: str
  batch_native: bool
  generate: GenerateFn
  generate_batch: BatchFn

  def variants(self) -> Iterator[Variant]:
    """Every task of the family, in registration order."""

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    """Longest inputs / targets, EOS included; ValueError if `cfg` cannot be sampled."""

  def special_names(self, cfg: Any) -> dict[int, str]:
    """Structural / special ids of the examples, by display name."""

  def describe(self, task: str, cfg: Any) -> str:
    """One line on the generator and its id layout."""

  def mixtures(self) -> Mapping[str, list[str]]:
    """Mixture name -> its task names (equal rates)."""


def per_example_batch_fn(generate: GenerateFn) -> BatchFn:
  """A batch function (task, cfg, split, seed, indices) -> Batch calling `generate`
  once per index: the batch API of the per-example families (LIME, nesting)."""
  def generate_batch(task, cfg, split, seed, indices) -> Batch:
    return Batch.from_examples([generate(task, cfg, split, seed, int(i))
                                for i in np.asarray(indices).tolist()])
  name = getattr(generate, "__qualname__", generate)
  generate_batch.__qualname__ = f"per_example_batch_fn({name})"
  return generate_batch
