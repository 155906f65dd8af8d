"""Smaller training sets of any registered task, for benefit-vs-data-size studies.

Names (registered on demand by `ensure_subset_task`, which `resolve_task` of the data
pipeline calls for names it does not know):

  <task>_train<N>       split 'train' = the first N examples of <task>'s 'train' split
  <task>_train<P>pct    the first floor(P% of the split size) examples, P a decimal
                        such as 1, 0.5 or 90 (needs the split size, see below)

Every other split ('validation', 'test', ...) is <task>'s, unchanged; vocabulary,
preprocessors, post-processing and metrics are <task>'s. `subset_name(task, n)` /
`subset_name(task, percent=p)` spell the names.

"The first N" is in the base source's FIXED order: the train split read unshuffled and
unsharded (TFDS: file order, which TFDS writes hashed, i.e. already shuffled; text files:
line order; synthetic tasks: indices 0..N-1), before the task's preprocessors. For
tasks with one example per source record (every downstream task) these are the first N
examples. So the subset is the same set for every run, seed and host count, and a
larger subset contains every smaller one. Training then shuffles those N examples
(seeded, reshuffled each epoch, buffer min(N, MAX_SHUFFLE_BUFFER)) and shards them
across processes (process p of n takes every n-th of the shuffled order). Note: SeqIO
keeps a source with fewer than 10,000 examples per shard in memory after the first
pass, so for such subsets the per-epoch order is the first shuffle, mixed further by the
task's own 1,000-example shuffle buffer.

The split size comes from the source's metadata (TFDS), else by reading the split once
at registration (finite sources such as text files); the synthetic streams are endless.
Errors (ValueError): N < 1, a leading zero, P outside (0, 100], N larger than the split,
a percentage of an endless split or one giving less than one example, a mixture as
<task>. Unprepared TFDS data fails at registration with the source's FileNotFoundError.
"""
from __future__ import annotations

import decimal
import re
import threading
from typing import Optional

import seqio
import tensorflow as tf

# Largest shuffle buffer used for a subset's training split.
MAX_SHUFFLE_BUFFER = 100_000
# Largest split counted by iteration to resolve a percentage.
MAX_COUNTED_EXAMPLES = 10_000_000

_NAME = re.compile(r"^(?P<base>.+)_train(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<pct>pct)?$")
_LOCK = threading.RLock()


def _format_percent(percent: float | str | decimal.Decimal) -> str:
  try:
    value = decimal.Decimal(str(percent))
  except decimal.InvalidOperation as e:
    raise ValueError(f"percent must be a number, got {percent!r}") from e
  if not value.is_finite() or not 0 < value <= 100:
    raise ValueError(f"percent must be in (0, 100], got {percent!r}")
  return format(value.normalize(), "f")


def subset_name(task: str, n: Optional[int] = None, *,
                percent: Optional[float | str] = None) -> str:
  """`<task>_train<n>` or `<task>_train<percent>pct` (exactly one of n, percent)."""
  if (n is None) == (percent is None):
    raise ValueError("give exactly one of n (an example count) and percent")
  if n is not None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
      raise ValueError(f"n must be an int >= 1, got {n!r}")
    return f"{task}_train{n}"
  return f"{task}_train{_format_percent(percent)}pct"


def parse_subset_name(name: str) -> Optional[tuple[str, int | None, str | None]]:
  """(base task, n, None) or (base task, None, percent text) if `name` is spelled as a
  subset name, else None. Validates the number (ValueError if it cannot be one)."""
  m = _NAME.match(name)
  if m is None:
    return None
  base, number, pct = m.group("base"), m.group("number"), m.group("pct")
  if pct:
    canonical = _format_percent(number)
    if canonical != number:
      raise ValueError(f"{name!r}: write the percentage as {canonical!r} "
                       f"({subset_name(base, percent=canonical)!r})")
    return base, None, number
  if "." in number:
    raise ValueError(f"{name!r}: an example count must be a whole number; for a "
                     f"percentage write {base}_train{number}pct")
  n = int(number)
  if n < 1:
    raise ValueError(f"{name!r}: the training-set size must be >= 1, got {n}")
  if number != str(n):
    raise ValueError(f"{name!r}: write the count without leading zeros "
                     f"({subset_name(base, n)!r})")
  return base, n, None


def _known_size(source: seqio.DataSource, split: str) -> Optional[int]:
  try:
    size = source.num_input_examples(split)
  except Exception:  # pylint: disable=broad-except  # unprepared data, mocks
    return None
  if size is None or size == float("inf"):
    return None
  return int(size)


def _is_infinite(source: seqio.DataSource) -> bool:
  from tasks.registry import IndexedSource  # pylint: disable=g-import-not-at-top
  return isinstance(source, IndexedSource)


def split_size(task: seqio.Task, split: str = "train") -> Optional[int]:
  """Number of source examples of `split`: from metadata, else counted by reading the
  split once (finite sources only); None for an infinite synthetic stream."""
  size = _known_size(task.source, split)
  if size is not None:
    return size
  if _is_infinite(task.source):
    return None
  ds = task.source.get_dataset(split=split, shuffle=False)
  count = int(ds.take(MAX_COUNTED_EXAMPLES + 1).reduce(
      tf.constant(0, tf.int64), lambda n, _: n + 1))
  if count > MAX_COUNTED_EXAMPLES:
    return None
  return count


class TrainSubsetSource(seqio.DataSource):
  """`base` with its 'train' split cut to its first `n` examples (module docstring)."""

  def __init__(self, base: seqio.DataSource, n: int):
    super().__init__(splits=base.splits, caching_permitted=base.caching_permitted)
    self._base = base
    self._n = n

  @property
  def base(self) -> seqio.DataSource:
    return self._base

  @property
  def n(self) -> int:
    return self._n

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

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None, shard_info: Optional[seqio.ShardInfo] = None,
                  *, sequence_length=None, use_cached: bool = False,
                  num_epochs: Optional[int] = 1) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # unused, as in seqio's sources
    if split != "train":
      return self._base_dataset(split, shuffle, seed, shard_info)
    ds = self._base.get_dataset(split="train", shuffle=False).take(self._n)
    if shuffle:
      ds = ds.shuffle(min(self._n, MAX_SHUFFLE_BUFFER), seed=seed,
                      reshuffle_each_iteration=True)
    if shard_info is not None:
      ds = ds.shard(shard_info.num_shards, shard_info.index)
    return ds


def _subset_size(name: str, base: seqio.Task, n: Optional[int],
                 percent: Optional[str]) -> int:
  size = split_size(base, "train")
  if n is not None:
    if size is not None and n > size:
      raise ValueError(f"{name!r}: asks for {n} training examples but {base.name!r} has "
                       f"only {size} in its 'train' split")
    return n
  if size is None:
    raise ValueError(f"{name!r}: the size of {base.name!r}'s 'train' split is unknown "
                     f"(an endless generated stream), so a percentage of it is "
                     f"undefined; use an example count, e.g. "
                     f"{subset_name(base.name, 1000)!r}")
  count = int(decimal.Decimal(size) * decimal.Decimal(percent) / 100)
  if count < 1:
    raise ValueError(f"{name!r}: {percent}% of {size} training examples is less than "
                     f"one example")
  return count


def register_subset_task(name: str, base_name: str, n: Optional[int] = None,
                         percent: Optional[str] = None) -> seqio.Task:
  """Registers `name` as `base_name` with its train split cut (see module docstring)."""
  base = seqio.get_mixture_or_task(base_name)
  if not isinstance(base, seqio.Task):
    raise ValueError(f"{name!r}: {base_name!r} is a mixture; training-set subsets are "
                     f"defined for tasks only (make a mixture of subset tasks instead)")
  if "train" not in base.source.splits:
    raise ValueError(f"{name!r}: {base_name!r} has no 'train' split (splits: "
                     f"{', '.join(base.source.splits)})")
  count = _subset_size(name, base, n, percent)
  # pylint: disable=protected-access  (seqio keeps the constructor arguments only here)
  task = seqio.TaskRegistry.add(
      name,
      source=TrainSubsetSource(base.source, count),
      output_features=base.output_features,
      preprocessors=list(base._preprocessor_constructor_args),
      postprocess_fn=base._postprocess_fn,
      metric_fns=list(base._metric_fn_constructor_args),
      metric_objs=list(base._metric_objs_constructor_args) or None,
      shuffle_buffer_size=base._shuffle_buffer_size,
  )
  # pylint: enable=protected-access
  _inherit_annotations(name, base_name)
  return task


def _inherit_annotations(name: str, base_name: str) -> None:
  """The project's per-task tables: maximum lengths and the downstream-task list."""
  from tasks.downstream import text_files  # pylint: disable=g-import-not-at-top
  from tasks.registry import TASK_MAX_LENGTHS  # pylint: disable=g-import-not-at-top
  if base_name in TASK_MAX_LENGTHS:
    TASK_MAX_LENGTHS[name] = dict(TASK_MAX_LENGTHS[base_name])
  if base_name in text_files.DOWNSTREAM_TASK_NAMES:
    text_files.DOWNSTREAM_TASK_NAMES.add(name)


def ensure_subset_task(name: str) -> bool:
  """Registers the subset task `name` if it is spelled `<task>_train<N>` or
  `<task>_train<P>pct` and <task> is a registered task (itself possibly a subset name).

  Returns True if `name` is now a registered task, False if it is not a subset name
  or its base is unknown. Raises ValueError for a bad size (module docstring).
  """
  with _LOCK:
    if name in seqio.TaskRegistry.names():
      return True
    parsed = parse_subset_name(name)
    if parsed is None:
      return False
    base, n, percent = parsed
    if base not in seqio.TaskRegistry.names():
      if base in seqio.MixtureRegistry.names():
        raise ValueError(f"{name!r}: {base!r} is a mixture; training-set subsets are "
                         f"defined for tasks only")
      if not ensure_subset_task(base):
        return False
    register_subset_task(name, base, n, percent)
    return True
