"""TensorFlow-free data sources: a registry of numpy example streams, and what is missing.

A task that can feed the trainer without tensorflow and seqio registers a
`NativeSource` here under its SeqIO name (tasks/synthetic_streams.py does so for the
synthetic streams, tasks/fixed_split_source.py for their cached fixed splits);
`synthpre_jax.data.native_pipeline` turns one into the same batches as the SeqIO path.
numpy only: importable on a lean accelerator image.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol

import numpy as np

# (import name, pip requirement, what it is for) of what a training run may import.
PACKAGES = (
    ("jax", "jax", "the model and trainer"),
    ("flax", "flax==0.12.8", "the model"),
    ("optax", "optax==0.2.8", "the optimizers"),
    ("orbax.checkpoint", "orbax-checkpoint==0.12.8", "checkpoints"),
    ("gin", "gin-config==0.5.0", "the command line (Gin files)"),
    ("clu", "clu==0.0.12", "metric writers"),
    ("etils", "etils[epath]>=1.7", "paths"),
    ("numba", "numba==0.68.1",
     "compiled synthetic generators (without it: the same data, plain Python, slower)"),
    ("tensorflow", "tensorflow==2.21.0",
     "the SeqIO input path and building fixed-split caches (without it: the native "
     "path, synthetic streams and prebuilt `_fixed` caches only)"),
    ("seqio", "seqio==0.0.20", "the SeqIO input path and task registry"),
)


def missing_packages() -> list[str]:
  """pip requirements (e.g. 'numba==0.68.1') of the `PACKAGES` not importable here.

  Looks modules up without importing them, so it is fast and safe to call first."""
  missing = []
  for module, requirement, _ in PACKAGES:
    try:
      found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a blocked import
      found = False
    if not found:
      missing.append(requirement)
  return missing


def describe_missing() -> list[str]:
  """One line per missing package: its requirement and what it is needed for."""
  why = {requirement: purpose for _, requirement, purpose in PACKAGES}
  return [f"missing {r}: {why[r]}" for r in missing_packages()]


class Block(Protocol):
  """Ragged examples: row b of inputs is inputs[offsets[b]:offsets[b + 1]] (no EOS)."""

  inputs: np.ndarray
  input_lengths: np.ndarray
  targets: np.ndarray
  target_lengths: np.ndarray


class NativeSource(Protocol):
  """A task's examples without TensorFlow.

  `blocks` yields the examples of one shard of a split in order, from the shard's
  example `start` on, as ragged blocks; an endless split never stops, a finite one
  yields one epoch and has a `shard_size(split, *, shard_index, num_shards)` method
  (examples in one epoch of the shard; the pipeline repeats epochs). `seed` is None
  for the unshuffled order, else the seed of the source's own shuffle (it must equal
  what the SeqIO path makes for the same seed). `vocabulary` has `vocab_size` and what
  `synthpre_jax.data.vocabulary.identity_of` reads (the SeqIO task's identity)."""

  splits: tuple[str, ...]
  vocabulary: Any

  def max_lengths(self) -> Mapping[str, int]:
    ...

  def blocks(self, split: str, *, shard_index: int, num_shards: int,
             seed: Optional[int], start: int) -> Iterator[Block]:
    ...


Lookup = Callable[[str], Optional[NativeSource]]
_SOURCES: dict[str, NativeSource] = {}
_LOOKUPS: list[Lookup] = []


def register_native(name: str, source: NativeSource) -> None:
  """Registers `source` as the native source of task `name` (replacing any)."""
  _SOURCES[name] = source


def register_lookup(lookup: Lookup) -> None:
  """Registers a function name -> NativeSource or None, asked for unregistered names
  (lets a package offer many sources without building them at import)."""
  if lookup not in _LOOKUPS:
    _LOOKUPS.append(lookup)


def native_source(name: str) -> Optional[NativeSource]:
  """The native source of task `name`, or None when it has none."""
  if name in _SOURCES:
    return _SOURCES[name]
  for lookup in _LOOKUPS:
    source = lookup(name)
    if source is not None:
      return source
  return None
