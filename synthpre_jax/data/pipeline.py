"""The adapter from SeqIO tasks to the trainer: per-process numpy batches, resumable.

seqio and tensorflow are imported inside the functions, so importing this module is cheap.

Determinism and resume: a batch stream is a pure function of the arguments. Synthetic
examples are a pure function of their index, SeqIO's shuffle (if any) uses the given
`seed`, and `get_batches(start_step=k)` skips k batches of that same stream, so it
yields exactly what `get_batches(start_step=0)` yields from position k on. The skip
regenerates (and discards) k batches' worth of examples; that is cheap for the synthetic
generators (~0.1 ms an example) but would be slow for expensive sources.
"""
from __future__ import annotations

import atexit
import contextlib
import difflib
import weakref
from typing import Any, Iterator, Mapping, Optional

import numpy as np

# Batch iterators still open. They are closed at exit, while the interpreter can still
# run Python: TF's background threads call the numpy generators (tf.numpy_function),
# and deleting a running tf.data iterator during interpreter finalization deadlocks.
_OPEN_ITERATORS: "weakref.WeakSet[Iterator]" = weakref.WeakSet()


@atexit.register
def _close_open_iterators() -> None:
  for it in list(_OPEN_ITERATORS):
    with contextlib.suppress(ValueError):  # one still running in another thread
      it.close()


def _hide_accelerators_from_tf() -> None:
  """Keeps TensorFlow (input pipeline only) off the GPUs/TPUs that JAX owns."""
  import tensorflow as tf
  with contextlib.suppress(RuntimeError):  # TF already initialized its devices
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")


def _registered_names() -> list[str]:
  import seqio
  return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))


def resolve_task(name: str) -> Any:
  """The registered seqio Task or Mixture `name`; unknown names list the closest ones.

  Imports `tasks` first so that every project task is registered.
  """
  import seqio
  import tasks  # noqa: F401  (registers the tasks)

  names = _registered_names()
  if name not in names:
    closest = difflib.get_close_matches(name, names, n=len(names), cutoff=0.0)
    raise ValueError(f"Unknown task or mixture {name!r}. Registered (closest first): "
                     f"{', '.join(closest)}")
  return seqio.get_mixture_or_task(name)


def _subtask_names(task_name: str) -> list[str]:
  provider = resolve_task(task_name)
  tasks = getattr(provider, "tasks", None)  # a Mixture lists its tasks
  return [t.name for t in tasks] if tasks is not None else [task_name]


def check_feature_lengths(task_name: str, feature_lengths: Mapping[str, int], *,
                          allow_truncation: bool = False) -> list[str]:
  """Checks that `feature_lengths` fit the task's longest examples (EOS included).

  SeqIO silently truncates longer examples, which corrupts targets such as the Set
  task's. Raises ValueError on a too-short length, or with `allow_truncation=True`
  returns the problems as warning strings. Tasks (or a mixture's sub-tasks) without
  known maximum lengths are not checked.
  """
  from tasks.registry import TASK_MAX_LENGTHS

  problems = []
  for name in _subtask_names(task_name):
    for feature, needed in TASK_MAX_LENGTHS.get(name, {}).items():
      have = feature_lengths.get(feature)
      if have is not None and have < needed:
        problems.append(
            f"Task {name!r}: feature {feature!r} can be {needed} tokens long (EOS "
            f"included) but the feature length is {have}; SeqIO (the Task's trim "
            f"before the EncDecFeatureConverter) would TRUNCATE those examples to "
            f"{have} tokens, not drop them, corrupting their {feature}. Raise "
            f"TASK_FEATURE_LENGTHS[{feature!r}] to >= {needed} or set "
            f"ALLOW_TRUNCATION=True.")
  if problems and not allow_truncation:
    raise ValueError("\n".join(problems))
  return problems


def check_vocabulary(task_name: str, model_vocab_size: int) -> None:
  """Raises ValueError if a feature's vocabulary has ids the model cannot embed."""
  provider = resolve_task(task_name)
  for feature, spec in provider.output_features.items():
    size = spec.vocabulary.vocab_size
    if size > model_vocab_size:
      raise ValueError(
          f"Task {task_name!r}: feature {feature!r} uses a vocabulary of {size} ids but the "
          f"model's T5Config.vocab_size is {model_vocab_size}; ids beyond it cannot be "
          "embedded. Use a model Gin file with a large enough vocabulary (the *_tiny "
          "tasks go with models/*_tiny.gin, the others with small/base/large).")


def get_batches(*, task_name: str, feature_lengths: Mapping[str, int], split: str,
                global_batch_size: int, seed: Optional[int], shuffle: bool,
                start_step: int = 0, num_epochs: Optional[int] = None,
                process_index: Optional[int] = None,
                process_count: Optional[int] = None,
                pack: bool = False,
                pad_last_batch: bool = False) -> Iterator[dict[str, np.ndarray]]:
  """This process's batches of `task_name` as numpy dicts of model features.

  Keys: encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
  decoder_loss_weights (+ encoder/decoder_segment_ids and _positions if `pack`), each
  int32 [global_batch_size // process_count, length]. Process p of n reads the examples
  of SeqIO shard p of n. `start_step` skips that many batches (see the module
  docstring for how resume works). `num_epochs=None` repeats forever. Arguments are
  checked and the pipeline built at call time; examples are made as batches are drawn.
  `pad_last_batch=True` (evaluation over a finite split) keeps a short last batch and
  pads it with all-zero rows, which carry no loss weight, instead of dropping it; with
  several processes their shards must then yield the same number of batches.
  """
  if process_index is None or process_count is None:
    import jax
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"Need 0 <= process_index < process_count, got "
                     f"process_index={process_index}, process_count={process_count}")
  if global_batch_size < 1 or global_batch_size % process_count:
    raise ValueError(
        f"global_batch_size ({global_batch_size}) must be a positive multiple of the "
        f"process count ({process_count}); each process loads an equal share.")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  if shuffle and seed is None:
    raise ValueError("shuffle=True needs an int seed, or batches are not reproducible.")
  missing = {"inputs", "targets"} - set(feature_lengths)
  if missing:
    raise ValueError(f"feature_lengths needs 'inputs' and 'targets'; missing "
                     f"{sorted(missing)} in {dict(feature_lengths)}")

  import seqio
  import tensorflow as tf

  _hide_accelerators_from_tf()
  provider = resolve_task(task_name)
  ds = provider.get_dataset(
      sequence_length=dict(feature_lengths), split=split, shuffle=shuffle, seed=seed,
      shard_info=seqio.ShardInfo(index=process_index, num_shards=process_count),
      num_epochs=num_epochs, use_cached=False)
  ds = seqio.EncDecFeatureConverter(pack=pack)(ds, dict(feature_lengths))
  per_process = global_batch_size // process_count
  ds = ds.batch(per_process, drop_remainder=not pad_last_batch)
  ds = ds.skip(start_step).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options)
  batches = _iterate(ds, per_process)
  _OPEN_ITERATORS.add(batches)
  return batches


def _iterate(ds: Any, rows: int) -> Iterator[dict[str, np.ndarray]]:
  it = ds.as_numpy_iterator()
  try:
    for batch in it:
      out = {k: np.asarray(v, dtype=np.int32) for k, v in batch.items()}
      short = rows - len(next(iter(out.values())))
      if short:
        out = {k: np.pad(v, ((0, short), (0, 0))) for k, v in out.items()}
      yield out
  finally:
    del it  # deletes the tf.data iterator and stops its threads
