"""Whole evaluation examples of a SeqIO task, for decoding and scoring (`evaluate`).

Training batches (`pipeline.get_batches`) are token arrays cut to the feature lengths.
Scoring needs more: the untruncated target, its text, and the raw example that a task's
`postprocess_fn` may read (e.g. SQuAD's list of gold answers). The encoder's inputs go
through the task's own preprocessing with the inputs length, as in training (e.g.
`seqio.preprocessors.append_eos_after_trim`: trim to length - 1, then EOS), while
targets are read whole (SeqIO trims no feature whose sequence_length is None).

Which examples (`eval_sample`): a finite split is read whole and `max_examples=k` keeps
the positions `pipeline.sample_indices(n, k, sample_seed)` of its n examples (a seeded
uniform sample, nested for one seed), scored in the split's order; an endless generated
stream gives its first k. seqio and tensorflow are imported inside the functions, as
in `pipeline`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from synthpre_jax.data import pipeline


@dataclasses.dataclass(frozen=True)
class EvalSample:
  """The examples to score and which ones of the split they are.

  `selection` is 'all' (the whole split), 'seeded_uniform' (positions
  `pipeline.sample_indices(split_size, len(examples), seed)`) or 'first' (the first
  examples of an endless stream, `split_size` None). `inputs_truncated` counts inputs
  longer than the inputs length; None if the task builds its examples for the length
  (e.g. span corruption), so no untrimmed input exists.
  """
  examples: list[dict[str, Any]]
  selection: str
  split_size: Optional[int]
  seed: Optional[int]
  inputs_truncated: Optional[int]

  def info(self) -> dict[str, Any]:
    """The record of which sample this is, for metrics and result files."""
    return {"selection": self.selection, "num_examples": len(self.examples),
            "split_size": self.split_size, "seed": self.seed}


def _as_python(value: Any) -> Any:
  """numpy scalars/arrays of bytes -> str / list[str]; other arrays stay numpy."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
    return [_as_python(v) for v in value.tolist()]
  return value


def is_endless(source: Any, split: str) -> bool:
  """True if `split` of the seqio DataSource `source` is an endless generated stream."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (optional: the SeqIO path)
  ds = source.get_dataset(split=split, shuffle=False)
  return bool(ds.cardinality() == tf.data.INFINITE_CARDINALITY)


def _task(task_name: str, split: str):
  import seqio  # pylint: disable=g-import-not-at-top

  pipeline._hide_accelerators_from_tf()  # pylint: disable=protected-access
  provider = pipeline.resolve_task(task_name)
  if not isinstance(provider, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; evaluate one of its tasks: "
                     f"{', '.join(t.name for t in provider.tasks)}")
  if split not in provider.splits:
    raise ValueError(f"Task {task_name!r} has no split {split!r}; it has "
                     f"{', '.join(provider.splits)}.")
  return provider


def _untrimmed_length(encoder_ids: np.ndarray, full_ids: np.ndarray) -> Optional[int]:
  """len(full_ids) if encoder_ids is full_ids cut to a length (EOS last or not)."""
  n = len(encoder_ids)
  if n == len(full_ids):
    return n if np.array_equal(encoder_ids, full_ids) else None
  if n < len(full_ids) and np.array_equal(encoder_ids[:n - 1], full_ids[:n - 1]):
    return len(full_ids)
  return None


# (source, split, inputs length) -> rows of splits whose examples cannot change within
# the process (a source with `immutable_examples = True`, e.g. tasks/downstream/
# in_memory.py), so a study's cells read a shared test split once.
_READ_CACHE: dict[tuple[int, str, Optional[int]], tuple[Any, list]] = {}
_READ_CACHE_SIZE = 4


def _immutable_source(task, split: str) -> Any:
  """The source that `split` of `task` reads, if its examples cannot change; a train
  subset (tasks/subsets.py) reads its base's other splits. None otherwise."""
  source = task.source
  if split != "train":
    source = getattr(source, "base", source)
  return source if getattr(source, "immutable_examples", False) else None


def _read(task, split: str, inputs_length: Optional[int],
          limit: Optional[int]) -> list[tuple[dict, Optional[int]]]:
  """(example with the encoder's inputs, untrimmed inputs length or None) of the split;
  kept per process for immutable sources (`_READ_CACHE`)."""
  source = _immutable_source(task, split) if limit is None else None
  key = (id(source), split, inputs_length)
  if source is not None and key in _READ_CACHE:
    return _READ_CACHE[key][1]
  rows = _read_uncached(task, split, inputs_length, limit)
  if source is not None:
    while len(_READ_CACHE) >= _READ_CACHE_SIZE:
      _READ_CACHE.pop(next(iter(_READ_CACHE)))
    _READ_CACHE[key] = (source, rows)  # holding the source keeps its id unique
  return rows


def _read_uncached(task, split: str, inputs_length: Optional[int],
                   limit: Optional[int]) -> list[tuple[dict, Optional[int]]]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def dataset(lengths):
    ds = task.get_dataset(sequence_length=lengths, split=split, shuffle=False,
                          num_epochs=1, use_cached=False)
    return ds if limit is None else ds.take(limit)

  trimmed = dataset({"inputs": inputs_length, "targets": None})
  if inputs_length is None:
    return [(ex, len(ex["inputs"])) for ex in trimmed.as_numpy_iterator()]
  full = dataset(None).map(lambda ex: ex["inputs"])
  return [(ex, _untrimmed_length(ex["inputs"], ids))
          for ex, ids in tf.data.Dataset.zip((trimmed, full)).as_numpy_iterator()]


def _check_count(name: str, value: Optional[int], minimum: int) -> None:
  if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                            or value < minimum):
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def eval_sample(task_name: str, split: str, *, inputs_length: Optional[int] = None,
                max_examples: Optional[int] = None, sample_seed: int = 0) -> EvalSample:
  """The examples of `split` to score (module docstring), in the split's order.

  Each has 'inputs' (the encoder's ids: the task's preprocessing with `inputs_length`,
  untrimmed if None) and 'targets' (whole, EOS when the task adds it) as int32 arrays,
  the pretokenized text fields the task keeps and any other raw features, decoded to
  str. Raises ValueError for a mixture, an unknown split, a bad count or seed, or an
  endless stream without `max_examples`.
  """
  _check_count("inputs_length", inputs_length, 1)
  _check_count("max_examples", max_examples, 1)
  _check_count("sample_seed", sample_seed, 0)
  task = _task(task_name, split)
  endless = is_endless(task.source, split)
  if endless and max_examples is None:
    raise ValueError(f"Split {split!r} of {task_name!r} is an endless generated stream; "
                     f"set evaluate.max_examples to score its first examples.")
  rows = _read(task, split, inputs_length, max_examples if endless else None)
  if endless:
    selection, size, seed, keep = "first", None, None, range(len(rows))
  elif max_examples is None or max_examples >= len(rows):
    selection, size, seed, keep = "all", len(rows), None, range(len(rows))
  else:
    selection, size, seed = "seeded_uniform", len(rows), sample_seed
    keep = pipeline.sample_indices(len(rows), max_examples, sample_seed)
  examples = [_example(rows[int(i)][0]) for i in keep]
  lengths = [rows[int(i)][1] for i in keep]
  if inputs_length is None:
    truncated = 0
  else:
    truncated = None if None in lengths else sum(n > inputs_length for n in lengths)
  return EvalSample(examples, selection, size, seed, truncated)


def _example(raw: dict) -> dict[str, Any]:
  """A caller's own copy (rows may be shared through `_READ_CACHE`)."""
  out = {k: _as_python(v) for k, v in raw.items()}
  out["inputs"] = np.array(raw["inputs"], np.int32)  # copies
  out["targets"] = np.array(raw["targets"], np.int32)
  return out
