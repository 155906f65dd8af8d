"""Smaller training sets of any registered task, for benefit-vs-data-size studies.

Names (registered on demand by `ensure_subset_task`, which `resolve_task` of the data
pipeline calls for names it does not know):

  <task>_train<N>_seed<S>     split 'train' = a seeded uniformly random sample of N
                              examples of <task>'s 'train' split
  <task>_train<P>pct_seed<S>  the same with N = floor(P% of the split size), P a decimal
                              such as 1, 0.5 or 90
  <task>_train<N>             without the suffix: S = 0 (the same examples as
  <task>_train<P>pct          `_seed0`, registered under this name)

The subset seed S is part of the subset's identity, independent of the training and
data-order seeds. `subset_name(task, n, seed=s)` / `subset_name(task, percent=p,
seed=s)` spell the canonical names, which always carry `_seed<S>`; `parse_subset_name`
reads both forms. Every other split ('validation', 'test', ...) is <task>'s, unchanged;
vocabulary, preprocessors, post-processing and metrics are <task>'s.

Which examples: the base 'train' split, read unshuffled and unsharded before the task's
preprocessors (TFDS: file order; text files: line order), holds M source records; the
subset is the records at positions `pipeline.sample_indices(M, N, S)` (the first N of
`numpy.random.default_rng(S).permutation(M)`), kept in the split's order. So it depends
on (task, N, S) only: the same for every run, training seed and host count, and for one
S a smaller subset lies inside a larger one (counts and percentages alike). For tasks
with one example per source record (every downstream task) these are N examples.
Training then shuffles them (the data-order seed, reshuffled each epoch, buffer
min(N, MAX_SHUFFLE_BUFFER)) and shards them across processes (process p of n takes
every n-th of the shuffled order). A pass reads the base split up to the last selected
record; subsets of at most MAX_CACHED_EXAMPLES records keep them in memory after the
first pass. SeqIO also keeps a source with fewer than 10,000 examples per shard in
memory after the first pass, so for such subsets the per-epoch order is the first
shuffle, mixed further by the task's own 1,000-example shuffle buffer.

Endless generated streams (the on-the-fly synthetic tasks of tasks/registry.py) have no
finite split to sample: their subset is the first N indices 0..N-1, each already an
independent random draw. It is the same for every seed, so only S = 0 is accepted, and
a percentage is undefined.

The split size M comes from the source's metadata (TFDS), else by reading the split once
at registration (finite sources such as text files or the fixed synthetic splits).
Errors (ValueError): N < 1, P outside (0, 100], S < 0, a leading zero, N larger
than the split, a percentage giving less than one example, a percentage or a
seed other than 0 of an endless stream, a split over MAX_SPLIT_EXAMPLES, a mixture as
<task>. Unprepared TFDS data fails at registration with the source's FileNotFoundError.
"""
from __future__ import annotations

import decimal
import re
import threading
from typing import NamedTuple, Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import examples, pipeline, task_metadata
from tasks.downstream import text_features

# Largest shuffle buffer used for a subset's training split.
MAX_SHUFFLE_BUFFER = 100_000
# Largest subset whose selected source records are kept in memory after the first pass.
MAX_CACHED_EXAMPLES = 100_000
# Largest 'train' split a subset samples from (counted by iteration if need be).
MAX_SPLIT_EXAMPLES = 10_000_000

_NAME = re.compile(r"^(?P<base>.+)_train(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<pct>pct)?"
                   r"(?:_seed(?P<seed>[0-9]+))?$")
_LOCK = threading.RLock()


class SubsetName(NamedTuple):
  """A parsed subset name: exactly one of `n` (a count) and `percent` (its text)."""
  base: str
  n: Optional[int]
  percent: Optional[str]
  seed: int


def _format_percent(percent: float | str | decimal.Decimal) -> str:
  try:
    value = decimal.Decimal(str(percent))
  except decimal.InvalidOperation as e:
    raise ValueError(f"percent must be a number, got {percent!r}") from e
  if not value.is_finite() or not 0 < value <= 100:
    raise ValueError(f"percent must be in (0, 100], got {percent!r}")
  return format(value.normalize(), "f")


def _seed_suffix(seed: int) -> str:
  if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
    raise ValueError(f"seed must be an int >= 0, got {seed!r}")
  return f"_seed{seed}"


def subset_name(task: str, n: Optional[int] = None, *,
                percent: Optional[float | str] = None, seed: int = 0) -> str:
  """`<task>_train<n>_seed<seed>` or `<task>_train<percent>pct_seed<seed>`.

  Exactly one of n, percent; the seed suffix is always written (seed 0 too). Raises
  ValueError for n < 1, percent outside (0, 100] or seed < 0.
  """
  if (n is None) == (percent is None):
    raise ValueError("give exactly one of n (an example count) and percent")
  suffix = _seed_suffix(seed)
  if n is not None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
      raise ValueError(f"n must be an int >= 1, got {n!r}")
    return f"{task}_train{n}{suffix}"
  return f"{task}_train{_format_percent(percent)}pct{suffix}"


def _parse_seed(name: str, text: Optional[str]) -> int:
  if text is None:
    return 0
  seed = int(text)
  if text != str(seed):
    raise ValueError(f"{name!r}: write the seed without leading zeros (_seed{seed})")
  return seed


def parse_subset_name(name: str) -> Optional[SubsetName]:
  """The SubsetName of `name` if it is spelled as a subset name, else None.

  A name without `_seed<S>` has seed 0. Raises ValueError if it is spelled as one but
  its numbers are out of range or not written canonically (leading zeros, '10.0pct'; the
  message gives the spelling).
  """
  m = _NAME.match(name)
  if m is None:
    return None
  base, number, pct = m.group("base"), m.group("number"), m.group("pct")
  seed = _parse_seed(name, m.group("seed"))
  if pct:
    canonical = _format_percent(number)
    if canonical != number:
      raise ValueError(f"{name!r}: write the percentage as {canonical!r} "
                       f"({subset_name(base, percent=canonical, seed=seed)!r})")
    return SubsetName(base, None, number, seed)
  if "." in number:
    raise ValueError(f"{name!r}: an example count must be a whole number; for a "
                     f"percentage write {base}_train{number}pct")
  n = int(number)
  if n < 1:
    raise ValueError(f"{name!r}: the training-set size must be >= 1, got {n}")
  if number != str(n):
    raise ValueError(f"{name!r}: write the count without leading zeros "
                     f"({subset_name(base, n, seed=seed)!r})")
  return SubsetName(base, n, None, seed)


def _known_size(source: seqio.DataSource, split: str) -> Optional[int]:
  try:
    size = source.num_input_examples(split)
  except Exception:  # pylint: disable=broad-except  # unprepared data, mocks
    return None
  if size is None or size == float("inf"):
    return None
  return int(size)


def split_size(task: seqio.Task, split: str = "train") -> Optional[int]:
  """Number of source records of `split`: from metadata, else counted by reading the
  split once; None for an endless stream. Raises ValueError above MAX_SPLIT_EXAMPLES."""
  size = _known_size(task.source, split)
  if size is None:
    if examples.is_endless(task.source, split):
      return None
    ds = task.source.get_dataset(split=split, shuffle=False)
    size = int(ds.take(MAX_SPLIT_EXAMPLES + 1).reduce(
        tf.constant(0, tf.int64), lambda n, _: n + 1))
  if size > MAX_SPLIT_EXAMPLES:
    raise ValueError(f"{task.name!r}: its {split!r} split has more than "
                     f"{MAX_SPLIT_EXAMPLES:,} examples; training-set subsets sample "
                     f"from smaller splits only")
  return size


class TrainSubsetSource(seqio.DataSource):
  """`base` with its 'train' split cut to `n` records: the positions
  `pipeline.sample_indices(split_size, n, seed)` of a finite split, or the first n of
  an endless one (`split_size=None`). See the module docstring."""

  def __init__(self, base: seqio.DataSource, n: int, *, seed: int = 0,
               split_size: Optional[int] = None):  # pylint: disable=redefined-outer-name
    super().__init__(splits=base.splits, caching_permitted=base.caching_permitted)
    self._base = base
    self._n = n
    self._seed = seed
    self._indices = (None if split_size is None
                     else pipeline.sample_indices(split_size, n, seed))

  @property
  def base(self) -> seqio.DataSource:
    return self._base

  @property
  def n(self) -> int:
    return self._n

  @property
  def seed(self) -> int:
    return self._seed

  @property
  def indices(self) -> Optional[np.ndarray]:
    """The selected positions of the base split (ascending), None for an endless one."""
    return None if self._indices is None else self._indices.copy()

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str):
    return self._base.list_shards(split)

  def num_input_examples(self, split: str) -> Optional[int]:
    if split == "train":
      return self._n  # checked against the base split's size at registration
    return self._base.num_input_examples(split)

  def _base_dataset(self, split: str, shuffle: bool, seed: Optional[int],
                    shard_info: Optional[seqio.ShardInfo]) -> tf.data.Dataset:
    base = self._base
    if shard_info is None:
      return base.get_dataset(split=split, shuffle=shuffle, seed=seed)
    if base.supports_arbitrary_sharding or (
        len(base.list_shards(split)) >= shard_info.num_shards):
      return base.get_dataset(split=split, shuffle=shuffle, seed=seed,
                              shard_info=shard_info)
    ds = base.get_dataset(split=split, shuffle=shuffle, seed=seed)
    return ds.shard(shard_info.num_shards, shard_info.index)

  def _selected(self) -> tf.data.Dataset:
    """The subset's records in the base split's order, unshuffled and unsharded."""
    ds = self._base.get_dataset(split="train", shuffle=False)
    if self._indices is None:
      return ds.take(self._n)
    keep = np.zeros(int(self._indices[-1]) + 1, bool)
    keep[self._indices] = True
    keep = tf.constant(keep)
    ds = ds.take(len(keep)).enumerate()
    ds = ds.filter(lambda i, _: tf.gather(keep, i)).map(lambda _, ex: ex)
    return ds.cache() if self._n <= MAX_CACHED_EXAMPLES else ds

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None, shard_info: Optional[seqio.ShardInfo] = None,
                  *, sequence_length=None, use_cached: bool = False,
                  num_epochs: Optional[int] = 1) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # unused, as in seqio's sources
    if split != "train":
      return self._base_dataset(split, shuffle, seed, shard_info)
    ds = self._selected()
    if shuffle:
      ds = ds.shuffle(min(self._n, MAX_SHUFFLE_BUFFER), seed=seed,
                      reshuffle_each_iteration=True)
    if shard_info is not None:
      ds = ds.shard(shard_info.num_shards, shard_info.index)
    return ds


def _subset_size(name: str, base: seqio.Task, parsed: SubsetName,
                 size: Optional[int]) -> int:
  """The subset's example count, checked against the base split's `size`."""
  if size is None and parsed.seed:
    raise ValueError(f"{name!r}: {base.name!r} is an endless generated stream; its "
                     f"subset is its first N examples (each an independent draw), the "
                     f"same for every seed: use seed 0 "
                     f"({subset_name(base.name, parsed.n, percent=parsed.percent)!r})")
  if parsed.n is not None:
    if size is not None and parsed.n > size:
      raise ValueError(f"{name!r}: asks for {parsed.n} training examples but "
                       f"{base.name!r} has only {size} in its 'train' split")
    return parsed.n
  if size is None:
    raise ValueError(f"{name!r}: the size of {base.name!r}'s 'train' split is unknown "
                     f"(an endless generated stream), so a percentage of it is "
                     f"undefined; use an example count, e.g. "
                     f"{subset_name(base.name, 1000)!r}")
  count = int(decimal.Decimal(size) * decimal.Decimal(parsed.percent) / 100)
  if count < 1:
    raise ValueError(f"{name!r}: {parsed.percent}% of {size} training examples is less "
                     f"than one example")
  return count


def register_subset_task(name: str, base_name: str, n: Optional[int] = None,
                         percent: Optional[str] = None, seed: int = 0) -> seqio.Task:
  """Registers `name` as `base_name` with its train split cut to a seeded sample of n
  examples or of `percent` of them (module docstring). Raises ValueError as listed
  there."""
  base = seqio.get_mixture_or_task(base_name)
  if not isinstance(base, seqio.Task):
    raise ValueError(f"{name!r}: {base_name!r} is a mixture; training-set subsets are "
                     f"defined for tasks only (make a mixture of subset tasks instead)")
  if "train" not in base.source.splits:
    raise ValueError(f"{name!r}: {base_name!r} has no 'train' split (splits: "
                     f"{', '.join(base.source.splits)})")
  _seed_suffix(seed)  # validates the seed
  size = split_size(base, "train")
  count = _subset_size(name, base, SubsetName(base_name, n, percent, seed), size)
  # pylint: disable=protected-access  (seqio keeps the constructor arguments only here)
  task = seqio.TaskRegistry.add(
      name,
      source=TrainSubsetSource(base.source, count, seed=seed, split_size=size),
      output_features=base.output_features,
      preprocessors=list(base._preprocessor_constructor_args),
      postprocess_fn=base._postprocess_fn,
      metric_fns=list(base._metric_fn_constructor_args),
      metric_objs=list(base._metric_objs_constructor_args) or None,
      # A stream base shuffles inside its source (buffer None); the subset's own
      # source does not, so it keeps SeqIO's default buffer.
      shuffle_buffer_size=(seqio.SHUFFLE_BUFFER_SIZE if base._shuffle_buffer_size is None
                           else base._shuffle_buffer_size),
  )
  # pylint: enable=protected-access
  _inherit_annotations(name, base_name)
  return task


def _inherit_annotations(name: str, base_name: str) -> None:
  """The project's per-task tables: maximum lengths and the downstream-task list."""
  if task_metadata.has_max_lengths(base_name):
    task_metadata.set_max_lengths(name, dict(task_metadata.max_lengths(base_name)))
  if base_name in text_features.DOWNSTREAM_TASK_NAMES:
    text_features.DOWNSTREAM_TASK_NAMES.add(name)


def ensure_subset_task(name: str) -> bool:
  """Registers the subset task `name` if it is spelled as a subset name (module
  docstring) and its base is a registered task (itself possibly a subset name).

  Returns True if `name` is now a registered task, False if it is not a subset name
  or its base is unknown. Raises ValueError for a bad size or seed (module docstring).
  """
  with _LOCK:
    if name in seqio.TaskRegistry.names():
      return True
    parsed = parse_subset_name(name)
    if parsed is None:
      return False
    if parsed.base not in seqio.TaskRegistry.names():
      if parsed.base in seqio.MixtureRegistry.names():
        raise ValueError(f"{name!r}: {parsed.base!r} is a mixture; training-set subsets "
                         f"are defined for tasks only")
      if not ensure_subset_task(parsed.base):
        return False
    register_subset_task(name, parsed.base, parsed.n, parsed.percent, parsed.seed)
    return True


SUBSET_SYNTAX = ("Training subsets are named <task>_train<N>_seed<S> (N examples) or "
                 "<task>_train<P>pct_seed<S> (P percent) of a registered task's train "
                 "split, seed optional (default 0); see tasks/subsets.py.")


def unknown_name_hint(name: str) -> Optional[str]:
  """The subset syntax, for an unknown name that looks like a subset name."""
  parsed = parse_subset_name(name)
  if parsed:
    return f"{SUBSET_SYNTAX} Here the base task {parsed.base!r} is not registered."
  if re.search(r"_tr[a-z]*n|_seed|pct", name):
    return SUBSET_SYNTAX
  return None


def _base_of(name: str) -> Optional[str]:
  parsed = parse_subset_name(name)
  return parsed.base if parsed else None


task_metadata.add_name_resolver(ensure_subset_task, unknown_name_hint, _base_of)
