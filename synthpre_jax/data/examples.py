"""Whole evaluation examples of a SeqIO task, for decoding and scoring (`evaluate`).

Training batches (`pipeline.get_batches`) are token arrays cut to the feature lengths.
Scoring needs more: the untruncated target, its text, and the raw example that a task's
`postprocess_fn` may read (e.g. SQuAD's list of gold answers). seqio and tensorflow
are imported inside the functions, as in `pipeline`.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from synthpre_jax.data import pipeline


def _as_python(value: Any) -> Any:
  """numpy scalars/arrays of bytes -> str / list[str]; other arrays stay numpy."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
    return [_as_python(v) for v in value.tolist()]
  return value


def eval_examples(task_name: str, split: str,
                  max_examples: Optional[int] = None) -> Iterator[dict[str, Any]]:
  """Yields the examples of `split` in order, tokenized but not truncated.

  Each has 'inputs' and 'targets' (int32 id arrays with EOS when the task adds it), the
  pretokenized text fields the task keeps (e.g. 'inputs_pretokenized'), and any other
  raw features, decoded to str. Raises ValueError for a mixture (score its tasks one by
  one) or an unknown split.
  """
  import seqio  # pylint: disable=g-import-not-at-top

  pipeline._hide_accelerators_from_tf()  # pylint: disable=protected-access
  provider = pipeline.resolve_task(task_name)
  if not isinstance(provider, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; evaluate one of its tasks: "
                     f"{', '.join(t.name for t in provider.tasks)}")
  if split not in provider.splits:
    raise ValueError(f"Task {task_name!r} has no split {split!r}; it has "
                     f"{', '.join(provider.splits)}.")
  # No sequence_length: seqio then trims nothing, so targets stay whole for scoring.
  ds = provider.get_dataset(sequence_length=None, split=split, shuffle=False,
                            num_epochs=1, use_cached=False)
  if max_examples is not None:
    ds = ds.take(max_examples)
  for example in ds.as_numpy_iterator():
    out = {k: _as_python(v) for k, v in example.items()}
    out["inputs"] = np.asarray(example["inputs"], np.int32)
    out["targets"] = np.asarray(example["targets"], np.int32)
    yield out
