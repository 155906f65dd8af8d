"""The adapter from SeqIO tasks to the trainer: per-process numpy batches, resumable.

seqio and tensorflow are imported inside the functions, so importing this module is cheap.
Two input paths make the same batches: 'seqio' (tf.data through SeqIO) and 'native'
(numpy, no TensorFlow: `native_pipeline`, for tasks with a `native.NativeSource`);
`select_input_pipeline` chooses.

Determinism and resume: a batch stream is a pure function of the arguments. Synthetic
examples are a pure function of their index, SeqIO's shuffle (if any) uses the given
`seed`, and `get_batches(start_step=k)` skips k batches of that same stream, so it
yields exactly what `get_batches(start_step=0)` yields from position k on. On the
SeqIO path the skip regenerates (and discards) k batches' worth of examples; that is
cheap for the synthetic generators (~0.1 ms an example) but would be slow for expensive
sources. The native path seeks to the position instead.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import difflib
import logging
import sys
import weakref
from typing import Any, Iterator, Mapping, Optional, Sequence

import jax
import numpy as np

from synthpre_jax.data import native, native_pipeline, task_metadata, vocabulary

log = logging.getLogger(__name__)

INPUT_PIPELINES = ("auto", "native", "seqio")

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


def sample_indices(size: int, k: int, seed: int) -> np.ndarray:
  """Positions (ascending, int64) of a seeded uniform sample of `k` of `size` items.

  They are the first k of `np.random.default_rng(seed).permutation(size)`: a pure
  function of (size, k, seed), and for one seed and size a smaller sample lies inside
  a larger one. Raises ValueError unless 0 <= k <= size and seed is an int >= 0.
  """
  for name, value in (("size", size), ("k", k), ("seed", seed)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
      raise ValueError(f"sample_indices: {name} must be an int >= 0, got {value!r}")
  if k > size:
    raise ValueError(f"sample_indices: cannot draw {k} of {size} items")
  order = np.random.default_rng(int(seed)).permutation(int(size))
  return np.sort(order[:k]).astype(np.int64)


def _registered_names() -> list[str]:
  import seqio
  return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))


def resolve_task(name: str) -> Any:
  """The registered seqio Task or Mixture `name`; unknown names list the closest ones.

  Task modules must be imported first (`task_modules.import_task_modules`); names that
  a module registers on demand (`task_metadata.add_name_resolver`) are registered here.
  """
  import seqio  # pylint: disable=g-import-not-at-top  (optional: the SeqIO path)

  names = _registered_names()
  if name not in names and task_metadata.resolve_on_demand(name):
    return seqio.get_mixture_or_task(name)
  if name not in names:
    raise ValueError(unknown_task_message(name, names))
  return seqio.get_mixture_or_task(name)


def unknown_task_message(name: str, names: Sequence[str], n: int = 5) -> str:
  """One short message for an unknown task: the `n` closest registered names, and
  what the task modules' name resolvers say about `name`."""
  closest = difflib.get_close_matches(task_metadata.base_name(name), names, n=n,
                                      cutoff=0.0)
  text = (f"Unknown task or mixture {name!r}. Closest of the {len(names)} registered: "
          f"{', '.join(closest)}.")
  return " ".join([text] + task_metadata.unknown_name_hints(name))


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
  source = native.native_source(task_name) if not seqio_available() else None
  if source is not None:  # no SeqIO registry here: the native source's lengths
    max_lengths = {task_name: dict(source.max_lengths())}
  else:
    max_lengths = {name: task_metadata.max_lengths(name) or {}
                   for name in _subtask_names(task_name)}
  problems = []
  for name, lengths in max_lengths.items():
    for feature, needed in lengths.items():
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
  """Raises ValueError if a feature's vocabulary, or the ids a task records beyond it
  (`task_metadata.id_limit`, e.g. procedural data in the text vocabulary), has ids the
  model cannot embed."""
  for feature, vocab in task_vocabularies(task_name).items():
    size = vocab.vocab_size
    if size > model_vocab_size:
      raise ValueError(
          f"Task {task_name!r}: feature {feature!r} uses a vocabulary of {size} ids but the "
          f"model's vocab_size is {model_vocab_size}; ids beyond it cannot be "
          "embedded. Use a model Gin file with a large enough vocabulary (the *_tiny "
          "tasks go with models/*_tiny.gin, the others with small/base/large).")
  names = {task_name, *(_subtask_names(task_name) if seqio_available() else [])}
  limits = [task_metadata.id_limit(n) for n in names]
  limit = max((x for x in limits if x is not None), default=None)
  if limit is not None and limit > model_vocab_size:
    raise ValueError(
        f"Task {task_name!r} emits ids up to {limit - 1} (procedural ids placed above the "
        f"text vocabulary) but the model's vocab_size is {model_vocab_size}: bind the "
        f"model config's vocab_size to {-(-limit // 128) * 128}, a multiple of 128 >= "
        f"{limit} (T5Config.vocab_size or DecoderOnlyConfig.vocab_size = "
        f"{-(-limit // 128) * 128}; every run that shares its checkpoints needs the "
        "same), or choose a task with fewer ids.")


def _seqio_task_is_twin(name: str) -> bool:
  """False when a SeqIO task `name` is registered whose source does not name the native
  source of that name as its twin (`native_twin`); True otherwise (no seqio, no task)."""
  seqio = sys.modules.get("seqio")
  if seqio is None or name not in seqio.TaskRegistry.names():
    return True
  source = getattr(seqio.get_mixture_or_task(name), "source", None)
  return getattr(source, "native_twin", None) == name


def seqio_available() -> bool:
  """True when seqio (and so TensorFlow) can be imported here."""
  try:
    import seqio  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def task_vocabularies(task_name: str) -> dict[str, Any]:
  """{'inputs': vocabulary, 'targets': vocabulary} of a task: the SeqIO Task's, or
  without seqio its native source's (the same identity)."""
  source = native.native_source(task_name) if not seqio_available() else None
  if source is not None:
    return {"inputs": source.vocabulary, "targets": source.vocabulary}
  return {k: f.vocabulary for k, f in resolve_task(task_name).output_features.items()}


def task_vocabulary_identity(task_name: str) -> dict[str, Any]:
  """`vocabulary.task_identity` of the task's vocabulary (recorded in checkpoints)."""
  vocabs = task_vocabularies(task_name)
  return vocabulary.task_identity({k: _Feature(v) for k, v in vocabs.items()})


@dataclasses.dataclass(frozen=True)
class _Feature:
  vocabulary: Any


def select_input_pipeline(task_name: str, requested: str = "auto", *,
                          pack: bool = False) -> str:
  """'native' or 'seqio': the input path `get_batches` will use for `task_name`.

  'auto': native when the task has a native source and `pack` is False, else seqio.
  'native' raises ValueError when the task has no native source or `pack` is True;
  'seqio' and an 'auto' that needs it raise ValueError when seqio cannot be imported.
  """
  if requested not in INPUT_PIPELINES:
    raise ValueError(f"input_pipeline must be one of {INPUT_PIPELINES}, got {requested!r}")
  has_native = native.native_source(task_name) is not None
  if requested == "auto" and has_native and not pack and not _seqio_task_is_twin(task_name):
    log.warning("input pipeline: task %r has a native source, but the SeqIO task of that "
                "name does not declare it as its twin (replaced by another module?): "
                "using SeqIO.", task_name)
    return "seqio"
  if requested == "native" or (requested == "auto" and has_native and not pack):
    if not has_native:
      raise ValueError(
          f"input_pipeline='native': task {task_name!r} has no native (TensorFlow-free) "
          "source; only the synthetic streams and their fixed splits have one (not "
          "mixtures, subsets or text tasks). Use --gin.train.input_pipeline=\"'seqio'\" with tensorflow and "
          "seqio installed.")
    if pack:
      raise ValueError("input_pipeline='native' does not pack examples; set "
                       "PACK=False or use --gin.train.input_pipeline=\"'seqio'\".")
    return "native"
  if not seqio_available():
    missing = ", ".join(native.missing_packages()) or "seqio"
    raise ValueError(
        f"Task {task_name!r} needs the SeqIO input path"
        f"{' (PACK=True)' if pack and has_native else ''}, but seqio/tensorflow cannot "
        f"be imported here (missing: {missing}). Install them, or train on a synthetic "
        "stream or its prebuilt `_fixed` split, which the native path reads without "
        "TensorFlow.")
  return "seqio"


def _check_batch_args(*, global_batch_size: int, seed: Optional[int], shuffle: bool,
                      start_step: int, process_index: Optional[int],
                      process_count: Optional[int], input_shards: Optional[int],
                      feature_lengths: Mapping[str, int]) -> tuple[int, int, int]:
  """(process_index, process_count, input_shards), checked (see `get_batches`)."""
  if process_index is None or process_count is None:
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"Need 0 <= process_index < process_count, got "
                     f"process_index={process_index}, process_count={process_count}")
  if global_batch_size < 1 or global_batch_size % process_count:
    raise ValueError(
        f"global_batch_size ({global_batch_size}) must be a positive multiple of the "
        f"process count ({process_count}); each process loads an equal share.")
  input_shards = process_count if input_shards is None else input_shards
  if input_shards < 1 or input_shards % process_count:
    raise ValueError(f"input_shards ({input_shards}) must be a positive multiple of the "
                     f"process count ({process_count}); each process reads whole shards.")
  if global_batch_size % input_shards:
    raise ValueError(f"global_batch_size ({global_batch_size}) must be a multiple of "
                     f"input_shards ({input_shards}); each shard gives equal rows.")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  if shuffle and seed is None:
    raise ValueError("shuffle=True needs an int seed, or batches are not reproducible.")
  missing = {"inputs", "targets"} - set(feature_lengths)
  if missing:
    raise ValueError(f"feature_lengths needs 'inputs' and 'targets'; missing "
                     f"{sorted(missing)} in {dict(feature_lengths)}")
  return process_index, process_count, input_shards


def get_batches(*, task_name: str, feature_lengths: Mapping[str, int], split: str,
                global_batch_size: int, seed: Optional[int], shuffle: bool,
                start_step: int = 0, num_epochs: Optional[int] = None,
                process_index: Optional[int] = None,
                process_count: Optional[int] = None,
                input_shards: Optional[int] = None,
                pack: bool = False,
                pad_last_batch: bool = False,
                input_pipeline: str = "seqio") -> Iterator[dict[str, np.ndarray]]:
  """This process's batches of `task_name` as numpy dicts of model features.

  Keys: encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
  decoder_loss_weights (+ encoder/decoder_segment_ids and _positions if `pack`), each
  int32 [global_batch_size // process_count, length].

  Input shards: the examples are split into `input_shards` SeqIO shards (default: the
  process count) and every global batch is the concatenation, in shard order, of one
  `global_batch_size // input_shards`-row batch from each shard. Process p of n reads
  shards p*k .. (p+1)*k - 1 (k = input_shards // n), i.e. rows p*B/n .. (p+1)*B/n of each
  global batch. So the global batches depend on `input_shards`, not on the process
  count: pin `input_shards` (e.g. to the largest process count you will use) and a run
  sees the same data on 1 host or 16, and resumes exactly on a different slice.
  `start_step` skips that many batches (see the module
  docstring for how resume works). `num_epochs=None` repeats forever. Arguments are
  checked and the pipeline built at call time; examples are made as batches are drawn.
  `pad_last_batch=True` (evaluation over a finite split) keeps a short last batch and
  pads it with all-zero rows, which carry no loss weight, instead of dropping it; the
  processes' shards may then yield different numbers of batches (the trainer's
  `evaluate` pads the processes that ran out until all have).

  `input_pipeline`: 'seqio' (tf.data), 'native' (numpy, the same batches; the task
  needs a native source and `pack=False`; a stream's splits are endless, so
  `num_epochs` only affects a fixed split's) or 'auto' (see `select_input_pipeline`).
  """
  process_index, process_count, input_shards = _check_batch_args(
      global_batch_size=global_batch_size, seed=seed, shuffle=shuffle,
      start_step=start_step, process_index=process_index, process_count=process_count,
      input_shards=input_shards, feature_lengths=feature_lengths)
  per_shard = global_batch_size // input_shards
  k = input_shards // process_count
  shards = range(process_index * k, (process_index + 1) * k)
  if select_input_pipeline(task_name, input_pipeline, pack=pack) == "native":
    iterators = native_pipeline.shard_iterators(
        native.native_source(task_name), feature_lengths=feature_lengths, split=split,
        shards=shards, input_shards=input_shards, rows=per_shard,
        seed=seed if shuffle else None, start_step=start_step, num_epochs=num_epochs,
        drop_remainder=not pad_last_batch)
    return _iterate(iterators, per_shard, pad=pad_last_batch)

  import seqio  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  _hide_accelerators_from_tf()
  provider = resolve_task(task_name)
  options = tf.data.Options()
  options.deterministic = True
  datasets = []
  for shard in shards:
    ds = provider.get_dataset(
        sequence_length=dict(feature_lengths), split=split, shuffle=shuffle, seed=seed,
        shard_info=seqio.ShardInfo(index=shard, num_shards=input_shards),
        num_epochs=num_epochs, use_cached=False)
    ds = seqio.EncDecFeatureConverter(pack=pack)(ds, dict(feature_lengths))
    ds = ds.batch(per_shard, drop_remainder=not pad_last_batch)
    ds = ds.skip(start_step).prefetch(tf.data.AUTOTUNE)
    datasets.append(ds.with_options(options))
  batches = _iterate([ds.as_numpy_iterator() for ds in datasets], per_shard,
                     pad=pad_last_batch)
  _OPEN_ITERATORS.add(batches)
  return batches


def _iterate(iterators: list, rows: int, pad: bool) -> Iterator[dict[str, np.ndarray]]:
  """One batch from each shard's iterator per step, concatenated in shard order.

  Without `pad`, stops as soon as one shard is exhausted (an infinite training stream
  never is). With `pad`, stops when every shard is exhausted; until then an exhausted
  shard, or a short last batch, is padded with all-zero rows (no loss weight).
  """
  template = None
  try:
    while True:
      parts = [next(it, None) for it in iterators]
      if all(p is None for p in parts) or (not pad and any(p is None for p in parts)):
        return
      parts = [None if p is None else {k: np.asarray(v, dtype=np.int32)
                                       for k, v in p.items()} for p in parts]
      template = template or next(p for p in parts if p is not None)
      out = []
      for p in parts:
        if p is None:
          p = {k: np.zeros((0,) + v.shape[1:], np.int32) for k, v in template.items()}
        short = rows - len(next(iter(p.values())))
        if short:
          p = {k: np.pad(v, ((0, short), (0, 0))) for k, v in p.items()}
        out.append(p)
      yield (out[0] if len(out) == 1 else
             {k: np.concatenate([p[k] for p in out]) for k in out[0]})
  finally:
    del iterators  # deletes the tf.data iterators and stops their threads
