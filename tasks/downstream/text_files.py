"""The paper's five text-file downstream tasks, the table of all six, and length reports.

code_translation, mtop, webqsp, retrosynthesis and cnndm_10k read `input<TAB>target`
text files, one example a line, UTF-8, from `<data_dir>/<task>/`. Each split has a list
of accepted file names (`split_file_names`), in this order:

    split 'train'        [lowercase_train.txt]  train.txt  train.tsv
    split 'validation'   [lowercase_val.txt]    valid.txt  valid.tsv
    split 'test'         [lowercase_test.txt]   test.txt   test.tsv

The paper's released files come first (`train.txt`, ...; cnndm_10k's `lowercase_*`
names, bracketed, are accepted for cnndm_10k only), then this project's `.tsv` names.
Rule when several of a split's names exist: they must be byte-identical copies, and the
first in the order above is read; if they differ, building the dataset raises ValueError
naming both files (delete or rename one). None of them: FileNotFoundError naming every
file looked for.

`<data_dir>` is `set_data_dir(path)` if called (the Gin edge binds it to the macro
DOWNSTREAM_DATA_DIR), else the environment variable SYNTHPRE_DOWNSTREAM_DATA_DIR. It is
read when a dataset is requested, not when the tasks are registered (at import), so it
can be set after `import tasks`. Every file access goes through `tf.io.gfile`, so
`gs://bucket/dir` works like a local path.

Bad input:
- data directory unset, missing, or lacking a split's file: FileNotFoundError (or
  ValueError when unset) naming every file looked for and how to set the directory,
  raised when the dataset is built, before the first batch. Two different files for one
  split: ValueError naming both.
- a line without exactly one tab, with an empty input or target, or not valid UTF-8:
  skipped, and the number of such lines and the first few line numbers are logged as a
  warning when the file is read (all lines are checked up front, so nothing fails
  mid-epoch). A file with no usable line at all is an error.
- examples longer than the feature lengths. Policy: training TRUNCATES them (SeqIO
  trims each feature to its length, EOS kept last) and does not drop them;
  `length_report` / `overlong_warnings` count them, and the training entry point logs the
  count. Evaluation decodes from the (truncated) input but scores the prediction against
  the full, untruncated target text (`targets_pretokenized`, kept by the tokenizer and
  returned by `postprocess_text` for targets).

Lower-casing: cnndm_10k is the paper's lower-cased CNN/DailyMail sample. The LOADER
lower-cases its inputs and targets (`str.lower`, Unicode-aware), so original-case files
work and already lower-cased files are unchanged. No other task is case-folded.

`TASK_INFO` holds the paper's recipe for all six tasks (squad's loader is in
`tasks.downstream.squad`); the Gin files in gin/finetune/ carry the same numbers.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Any, Callable, Mapping, Optional, Sequence

import gin
import numpy as np
import seqio
import tensorflow as tf

log = logging.getLogger(__name__)

ENV_VAR = "SYNTHPRE_DOWNSTREAM_DATA_DIR"
# Split name (as the trainer and SeqIO use it) -> accepted file names inside
# <data_dir>/<task>/, in the order looked for: the paper's released names, then ours.
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.txt", "train.tsv"),
    "validation": ("valid.txt", "valid.tsv"),
    "test": ("test.txt", "test.tsv")}
# Names of a task's released files, looked for before SPLIT_FILES (that task only).
TASK_SPLIT_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "cnndm_10k": {"train": ("lowercase_train.txt",),
                  "validation": ("lowercase_val.txt",),
                  "test": ("lowercase_test.txt",)}}
TEXT_FILE_TASKS = ("code_translation", "mtop", "webqsp", "retrosynthesis", "cnndm_10k")
LOWERCASE_TASKS = frozenset({"cnndm_10k"})
# How many bad line numbers a warning lists.
SHOWN_BAD_LINES = 5


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """The paper's fine-tuning recipe for one downstream task (spec: experiments.md)."""
  name: str
  description: str
  train_size: str
  metric: str                 # the paper's reported metric, in words
  metric_keys: tuple[str, ...]  # keys of the metric dict that carry it
  feature_lengths: Mapping[str, int]
  learning_rate: float
  batch_size: int
  train_steps: int
  pack: bool = False
  model_gin: str = "models/t5_1_0_small.gin"
  gin_file: str = ""

  def __post_init__(self):
    if not self.gin_file:
      object.__setattr__(self, "gin_file", f"finetune/{self.name}.gin")


def _lengths(inputs: int, targets: int) -> dict[str, int]:
  return {"inputs": inputs, "targets": targets}


TASK_INFO: dict[str, TaskInfo] = {info.name: info for info in (
    TaskInfo("code_translation", "CodeXGLUE Java -> C#", "10K", "exact match",
             ("exact_match",), _lengths(1024, 1024), 3e-3, 32, 150_000),
    TaskInfo("mtop", "MTOP English semantic parsing", "~16-17K", "exact match",
             ("exact_match",), _lengths(1024, 128), 1e-3, 128, 100_000),
    TaskInfo("webqsp", "WebQSP semantic parsing", "2.7K", "exact match",
             ("exact_match",), _lengths(2048, 256), 1e-3, 32, 50_000),
    TaskInfo("retrosynthesis", "USPTO-50K, product -> reactants SMILES", "40K",
             "exact match", ("exact_match",), _lengths(256, 256), 3e-3, 128, 400_000),
    TaskInfo("squad", "SQuAD 1.1 (validation set as test)", "87K", "SQuAD EM / F1",
             ("em", "f1"), _lengths(512, 128), 1e-3, 128, 250_000, pack=True),
    # The natural baseline of cnndm_10k is T5 v1.1 small (finetune/cnndm_10k_t5_1_1.gin).
    TaskInfo("cnndm_10k", "10K lower-cased CNN/DailyMail examples", "10K", "ROUGE-1",
             ("rouge1",), _lengths(512, 256), 1e-3, 128, 100_000),
)}


# --- the data directory ---------------------------------------------------------------

_data_dir: Optional[str] = None


@gin.configurable(module=None)
def downstream_data_dir(path: Optional[str] = None) -> Optional[str]:
  """The text-file tasks' data directory as bound in Gin: the task files in
  gin/finetune/ bind `downstream_data_dir.path = %DOWNSTREAM_DATA_DIR`."""
  return str(path) if path not in (None, "") else None


def set_data_dir(path: Optional[str]) -> None:
  """Sets the directory holding `<task>/<split files>` for this process, over the Gin
  binding (tools such as `tasks.inspect --downstream_data_dir`; None: unset)."""
  global _data_dir
  _data_dir = str(path) if path not in (None, "") else None


def get_data_dir() -> str:
  """The data directory: `set_data_dir`'s value, else the Gin binding
  (`downstream_data_dir`), else $SYNTHPRE_DOWNSTREAM_DATA_DIR."""
  path = _data_dir or downstream_data_dir() or os.environ.get(ENV_VAR)
  if not path:
    raise ValueError(
        "No downstream data directory is set. Set it with "
        "--gin.DOWNSTREAM_DATA_DIR=\"'/path/or/gs://bucket/dir'\", the environment "
        f"variable {ENV_VAR}, or tasks.downstream.text_files.set_data_dir(path). It must "
        "hold <task>/train.txt, <task>/valid.txt and <task>/test.txt (or .tsv), one "
        "'input<TAB>target' example a line.")
  return path


def split_file_names(task: str, split: str) -> tuple[str, ...]:
  """The file names accepted for `split` of the task folder `task`, in the order looked for.

  Raises ValueError for a split other than 'train', 'validation' or 'test'.
  """
  if split not in SPLIT_FILES:
    raise ValueError(f"Unknown split {split!r} for text-file task {task!r}; the splits "
                     f"are {', '.join(SPLIT_FILES)}.")
  return TASK_SPLIT_FILES.get(task, {}).get(split, ()) + SPLIT_FILES[split]


def split_candidates(task: str, split: str, data_dir: Optional[str] = None) -> list[str]:
  """The paths `split` of `task` may be read from, in the order looked for (no I/O)."""
  root = (data_dir or get_data_dir()).rstrip("/")
  return [f"{root}/{task}/{name}" for name in split_file_names(task, split)]


def _same_bytes(a: str, b: str) -> bool:
  if tf.io.gfile.stat(a).length != tf.io.gfile.stat(b).length:
    return False
  with tf.io.gfile.GFile(a, "rb") as fa, tf.io.gfile.GFile(b, "rb") as fb:
    return fa.read() == fb.read()


def find_split_file(task: str, split: str, *, data_dir: Optional[str] = None,
                    source_task: Optional[str] = None, from_where: str = "") -> str:
  """The one file to read for `split`: the first existing candidate (module docstring).

  Raises FileNotFoundError naming every candidate when none exists, and ValueError
  naming both files when two candidates exist and differ.
  """
  folder = source_task or task
  root = data_dir or get_data_dir()
  candidates = split_candidates(folder, split, root)
  present = [path for path in candidates if tf.io.gfile.exists(path)]
  if not present:
    raise FileNotFoundError(_missing_file_message(task, folder, split, candidates, root,
                                                  from_where or "the caller"))
  for other in present[1:]:
    if not _same_bytes(present[0], other):
      raise ValueError(
          f"Task {task!r}, split {split!r}: two different files hold this split, "
          f"{present[0]} and {other}. Delete or rename the one you do not mean (the "
          f"loader reads a split from one file; identical copies are allowed).")
  return present[0]


def _missing_file_message(task: str, folder: str, split: str, candidates: Sequence[str],
                          data_dir: str, from_where: str) -> str:
  task_dir = f"{data_dir.rstrip('/')}/{folder}"
  if not tf.io.gfile.isdir(data_dir):
    what = f"the data directory {data_dir} does not exist"
  elif not tf.io.gfile.isdir(task_dir):
    what = f"{data_dir} has no folder {folder}/"
  else:
    present = sorted(tf.io.gfile.listdir(task_dir))
    what = f"{task_dir}/ holds only: {', '.join(present) or 'nothing'}"
  return (f"Task {task!r}, split {split!r}: looked for {' or '.join(candidates)}, but "
          f"{what}. Each split is one 'input<TAB>target' file, one example a line; the "
          f"accepted names are, per split: "
          + "; ".join(f"{s}: {', '.join(split_file_names(folder, s))}" for s in SPLIT_FILES)
          + f". The data directory ({data_dir}) came from {from_where}; set it with "
          f"--gin.DOWNSTREAM_DATA_DIR=\"'/path'\" or the environment variable {ENV_VAR}.")


# --- reading and checking a split -----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ParsedSplit:
  """A split's usable examples and the 1-based line numbers of the lines skipped."""
  path: str
  inputs: tuple[str, ...]
  targets: tuple[str, ...]
  line_numbers: tuple[int, ...]  # source line of each example
  bad_lines: tuple[int, ...]

  def __len__(self) -> int:
    return len(self.inputs)


def parse_tsv(data: bytes, *, lowercase: bool = False, path: str = "<bytes>"
              ) -> ParsedSplit:
  """Splits `input<TAB>target` lines; malformed lines are recorded, not raised.

  A line is malformed if it has no tab or more than one, an empty input or target, or
  is not valid UTF-8. A final newline is optional; '\\r\\n' endings are accepted.
  """
  inputs, targets, numbers, bad = [], [], [], []
  lines = data.split(b"\n")
  if lines and lines[-1] == b"":
    lines.pop()  # the file's final newline
  for number, raw in enumerate(lines, start=1):
    if raw.endswith(b"\r"):
      raw = raw[:-1]
    try:
      line = raw.decode("utf-8")
    except UnicodeDecodeError:
      bad.append(number)
      continue
    parts = line.split("\t")
    if len(parts) != 2 or not parts[0] or not parts[1]:
      bad.append(number)
      continue
    if lowercase:
      parts = [p.lower() for p in parts]
    inputs.append(parts[0])
    targets.append(parts[1])
    numbers.append(number)
  return ParsedSplit(path, tuple(inputs), tuple(targets), tuple(numbers), tuple(bad))


def bad_lines_message(parsed: ParsedSplit) -> str:
  """'k of n lines of <path> ... skipped (lines 3, 9, ...)'; '' if there are none."""
  if not parsed.bad_lines:
    return ""
  total = len(parsed.bad_lines) + len(parsed)
  shown = ", ".join(str(n) for n in parsed.bad_lines[:SHOWN_BAD_LINES])
  more = ", ..." if len(parsed.bad_lines) > SHOWN_BAD_LINES else ""
  return (f"{len(parsed.bad_lines)} of {total} lines of {parsed.path} are not "
          f"'input<TAB>target' with exactly one tab and both sides non-empty (or are not "
          f"UTF-8); they are skipped (lines {shown}{more}).")


# Parsed files keyed by (path, lowercase, size, mtime): a file is read and its bad lines
# reported once per process, however often its dataset is rebuilt (each evaluation).
_CACHE: dict[tuple, ParsedSplit] = {}
_CACHE_LOCK = threading.Lock()


def read_split(task: str, split: str, *, data_dir: Optional[str] = None,
               lowercase: Optional[bool] = None, source_task: Optional[str] = None
               ) -> ParsedSplit:
  """Reads and checks one split (the file `find_split_file` picks); logs a warning
  counting the malformed lines skipped.

  `source_task` is the folder name under the data directory (default: `task`);
  `lowercase` defaults to whether the folder's task is in LOWERCASE_TASKS.
  """
  folder = source_task or task
  if lowercase is None:
    lowercase = folder in LOWERCASE_TASKS
  from_where = ("the task's registration" if data_dir else
                "set_data_dir()" if _data_dir else
                "DOWNSTREAM_DATA_DIR" if downstream_data_dir() else
                f"${ENV_VAR}")
  path = find_split_file(task, split, data_dir=data_dir, source_task=folder,
                         from_where=from_where)
  stat = tf.io.gfile.stat(path)
  key = (path, lowercase, stat.length, stat.mtime_nsec)
  with _CACHE_LOCK:
    cached = _CACHE.get(key)
  if cached is not None:
    return cached
  with tf.io.gfile.GFile(path, "rb") as f:
    parsed = parse_tsv(f.read(), lowercase=lowercase, path=path)
  if not len(parsed):
    raise ValueError(f"Task {task!r}, split {split!r}: {path} has no usable "
                     f"'input<TAB>target' line. " + bad_lines_message(parsed))
  if parsed.bad_lines:
    log.warning("Task %r, split %r: %s", task, split, bad_lines_message(parsed))
  with _CACHE_LOCK:
    _CACHE[key] = parsed
  return parsed


def make_dataset_fn(task: str, *, source_task: Optional[str] = None,
                    data_dir: Optional[str] = None, lowercase: Optional[bool] = None
                    ) -> Callable[..., tf.data.Dataset]:
  """The dataset_fn of a text-file task: {'inputs', 'targets'} strings, in file order.

  With `shuffle_files` the whole split is shuffled with `seed` (reshuffled each epoch,
  deterministically); SeqIO shards the result across processes.
  """

  def dataset_fn(split: str, shuffle_files: bool, seed: Optional[int] = None
                 ) -> tf.data.Dataset:
    parsed = read_split(task, split, data_dir=data_dir, lowercase=lowercase,
                        source_task=source_task)
    ds = tf.data.Dataset.from_tensor_slices(
        {"inputs": list(parsed.inputs), "targets": list(parsed.targets)})
    if shuffle_files:
      ds = ds.shuffle(len(parsed), seed=seed, reshuffle_each_iteration=True)
    return ds

  return dataset_fn


# --- registration ----------------------------------------------------------------------

def _as_text(value: Any) -> Any:
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalar / array
    return _as_text(value.tolist())
  if isinstance(value, list):
    return [_as_text(v) for v in value]
  return value


def postprocess_text(output: Any, example: Optional[Mapping[str, Any]] = None,
                     is_target: bool = False) -> Any:
  """Decoded text as str; a target is the example's full `targets_pretokenized` text."""
  if is_target and example is not None and "targets_pretokenized" in example:
    return _as_text(example["targets_pretokenized"])
  return _as_text(output)


def _metric(name: str) -> Callable[[Sequence[Any], Sequence[Any]], dict]:
  """`synthpre_jax.evaluation.metrics.<name>`, imported when first called (keeps import light)."""

  def metric_fn(targets: Sequence[Any], predictions: Sequence[Any]) -> dict:
    from synthpre_jax.evaluation import metrics  # pylint: disable=g-import-not-at-top
    return getattr(metrics, name)(targets, predictions)

  metric_fn.__name__ = name
  metric_fn.__qualname__ = name
  return metric_fn


METRIC_FNS: dict[str, Callable] = {
    "exact_match": _metric("exact_match"),
    "token_f1": _metric("token_f1"),
    "squad": _metric("squad"),
    "rouge": _metric("rouge"),
}


def default_vocabulary() -> seqio.Vocabulary:
  """The project's text vocabulary (`tasks.text_vocab.get_vocabulary()`)."""
  from tasks import text_vocab  # pylint: disable=g-import-not-at-top
  return text_vocab.get_vocabulary()


class LazyVocabulary(seqio.Vocabulary):
  """A vocabulary that calls `factory()` on first use and delegates everything to it.

  Tasks are registered at import, but the SentencePiece model path may be configured
  later (Gin edge, environment); the downstream tasks share this one proxy, so they
  see the vocabulary configured when their data is first tokenized.
  """

  def __init__(self, factory: Callable[[], seqio.Vocabulary]):
    self._factory = factory
    self._target: Optional[seqio.Vocabulary] = None
    self._lock = threading.Lock()
    super().__init__(extra_ids=0)

  @property
  def target(self) -> seqio.Vocabulary:
    if self._target is None:
      with self._lock:
        if self._target is None:
          self._target = self._factory()
    return self._target

  # Public interface: straight to the target (its own extra-id and EOS handling).
  bos_id = property(lambda self: self.target.bos_id)
  eos_id = property(lambda self: self.target.eos_id)
  pad_id = property(lambda self: self.target.pad_id)
  unk_id = property(lambda self: self.target.unk_id)
  extra_ids = property(lambda self: self.target.extra_ids)
  vocab_size = property(lambda self: self.target.vocab_size)
  _base_vocab_size = property(lambda self: self.target._base_vocab_size)  # pylint: disable=protected-access

  def encode(self, s):
    return self.target.encode(s)

  def decode(self, ids):
    return self.target.decode(ids)

  def encode_tf(self, s):
    return self.target.encode_tf(s)

  def decode_tf(self, ids):
    return self.target.decode_tf(ids)

  def _encode(self, s):
    return self.target._encode(s)  # pylint: disable=protected-access

  def _decode(self, ids):
    return self.target._decode(ids)  # pylint: disable=protected-access

  def _encode_tf(self, s):
    return self.target._encode_tf(s)  # pylint: disable=protected-access

  def _decode_tf(self, ids):
    return self.target._decode_tf(ids)  # pylint: disable=protected-access

  def __getattr__(self, name: str) -> Any:  # e.g. sp_model, sentencepiece_model_file
    if name.startswith("_"):
      raise AttributeError(name)
    return getattr(self.target, name)

  def __eq__(self, other: Any) -> bool:
    if self is other:
      return True
    if isinstance(other, LazyVocabulary):
      other = other.target
    return isinstance(other, seqio.Vocabulary) and self.target == other

  def __hash__(self) -> int:
    return id(self)

  def __repr__(self) -> str:
    state = repr(self._target) if self._target is not None else "not loaded yet"
    return f"LazyVocabulary({state})"


# The text vocabulary of every downstream task (resolved on first use).
TEXT_VOCABULARY = LazyVocabulary(default_vocabulary)


def text_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
  return {k: seqio.Feature(vocabulary, add_eos=True, dtype=tf.int32)
          for k in ("inputs", "targets")}


# Names of the tasks registered by this package, for `overlong_warnings`.
DOWNSTREAM_TASK_NAMES: set[str] = set()


def register_text_file_task(name: str, *, source_task: Optional[str] = None,
                            vocabulary: Optional[seqio.Vocabulary] = None,
                            metric_fns: Optional[Sequence[Callable]] = None,
                            data_dir: Optional[str] = None,
                            lowercase: Optional[bool] = None) -> seqio.Task:
  """Registers the text-file task `name` reading `<data_dir>/<source_task or name>/`.

  `data_dir=None` resolves the directory when a dataset is built; the default metric
  is exact match (ROUGE for cnndm_10k); `lowercase` defaults to the LOWERCASE_TASKS rule.
  """
  folder = source_task or name
  if metric_fns is None:
    metric_fns = [METRIC_FNS["rouge"] if folder == "cnndm_10k" else
                  METRIC_FNS["exact_match"]]
  vocabulary = vocabulary if vocabulary is not None else TEXT_VOCABULARY
  DOWNSTREAM_TASK_NAMES.add(name)
  return seqio.TaskRegistry.add(
      name,
      source=seqio.FunctionDataSource(
          make_dataset_fn(name, source_task=folder, data_dir=data_dir,
                          lowercase=lowercase),
          splits=tuple(SPLIT_FILES)),
      output_features=text_features(vocabulary),
      preprocessors=[seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=postprocess_text,
      metric_fns=list(metric_fns),
  )


# --- examples longer than the feature lengths ----------------------------------------

@dataclasses.dataclass(frozen=True)
class LengthReport:
  """How many examples of a split exceed the feature lengths (token counts with EOS).

  `lossy_targets` counts targets whose text does not come back from tokenize -> decode
  (characters outside the vocabulary, whitespace the tokenizer normalizes): exact match
  cannot credit them even for a perfect model. None when the task keeps no target text.
  """
  task: str
  split: str
  examples: int
  feature_lengths: Mapping[str, int]
  too_long: Mapping[str, int]   # feature -> examples longer than its length
  longest: Mapping[str, int]    # feature -> longest example, in tokens
  lossy_targets: Optional[int] = None

  def message(self) -> str:
    """One line per problem found (overlong feature, lossy targets); '' if none."""
    where = f"Task {self.task!r}, split {self.split!r}"
    lines = []
    for feature, count in self.too_long.items():
      if count:
        lines.append(
            f"{where}: {count} of {self.examples} examples have {feature} longer than "
            f"{self.feature_lengths[feature]} tokens (EOS included; longest "
            f"{self.longest[feature]}). Training truncates them to that length; "
            f"evaluation scores the full target text.")
    if self.lossy_targets:
      lines.append(
          f"{where}: {self.lossy_targets} of {self.examples} targets do not decode back "
          f"to their text after tokenization (characters outside the vocabulary or "
          f"normalized whitespace); exact match cannot credit them.")
    return "\n".join(lines)


# (task, split, features) -> per-example token counts and lossy flags (one per process).
_EXAMPLE_LENGTHS: dict[tuple[str, str, tuple[str, ...]], dict[str, np.ndarray]] = {}


def _example_lengths(task_name: str, split: str, features: Sequence[str]
                     ) -> dict[str, np.ndarray]:
  """Per example of `split`, in order: token count of each feature (EOS included, no
  trimming) and, when the task keeps target text, `_lossy` (1 where tokenize -> decode
  does not give the text back). Computed once per process."""
  key = (task_name, split, tuple(features))
  if key in _EXAMPLE_LENGTHS:
    return _EXAMPLE_LENGTHS[key]
  task = seqio.get_mixture_or_task(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; report its tasks one by one.")
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, num_epochs=1,
                        trim_output_features=False, use_cached=False)
  check_text = "targets_pretokenized" in ds.element_spec and "targets" in task.output_features
  target_vocab = task.output_features["targets"].vocabulary if check_text else None

  def measure(ex):
    out = {f: tf.size(ex[f]) for f in features}
    if check_text:
      decoded = target_vocab.decode_tf(ex["targets"])
      out["_lossy"] = tf.cast(tf.not_equal(decoded, ex["targets_pretokenized"]), tf.int32)
    return out

  parts: dict[str, list[np.ndarray]] = {}
  for batch in ds.map(measure, num_parallel_calls=tf.data.AUTOTUNE).batch(
      4096).as_numpy_iterator():
    for k, v in batch.items():
      parts.setdefault(k, []).append(v)
  out = {k: np.concatenate(parts.get(k, [np.zeros(0, np.int32)]))
         for k in list(features) + (["_lossy"] if check_text else [])}
  _EXAMPLE_LENGTHS[key] = out
  return out


def length_report(task_name: str, split: str, feature_lengths: Mapping[str, int]
                  ) -> LengthReport:
  """Counts the examples of `split` whose tokenized features exceed `feature_lengths`.

  Works for any registered seqio Task: it runs the task's own preprocessing (and so
  its vocabulary and EOS rule) without trimming over the whole split, so it costs one
  pass of tokenization and of decoding the targets (seconds for 10K-100K examples). The
  counts are kept per process, and a seeded train subset (`<task>_train<N>_seed<S>`) of
  an in-memory task (one example per record) reads its rows of its base task's counts,
  so a study measures each split once.
  """
  from tasks import subsets  # pylint: disable=g-import-not-at-top
  task = seqio.get_mixture_or_task(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture; report its tasks one by one.")
  features = [f for f in feature_lengths if f in task.output_features]
  parsed = subsets.parse_subset_name(task_name)
  source = task.source
  # Only where the base keeps one example per record (immutable in-memory tasks): a
  # preprocessor that drops records (e.g. amazon_books_polarity's 3-star reviews) would
  # shift the subset's record positions against the base's example counts.
  if (split == "train" and parsed is not None and
      isinstance(source, subsets.TrainSubsetSource) and source.indices is not None and
      getattr(source.base, "immutable_examples", False)):
    rows = source.indices
    lengths = {k: v[rows] for k, v in _example_lengths(parsed.base, split,
                                                        features).items()}
  else:
    lengths = _example_lengths(task_name, split, features)
  total = len(lengths[features[0]]) if features else 0
  too_long = {f: int((lengths[f] > feature_lengths[f]).sum()) for f in features}
  longest = {f: int(lengths[f].max()) if len(lengths[f]) else 0 for f in features}
  lossy = int(lengths["_lossy"].sum()) if "_lossy" in lengths else None
  return LengthReport(task_name, split, total, dict(feature_lengths), too_long, longest,
                      lossy)


def overlong_warnings(task_name: str, feature_lengths: Mapping[str, int],
                      splits: Sequence[str] = ("train",)) -> list[str]:
  """Warnings counting overlong examples (and lossy targets) of a downstream task's
  splits; [] for other tasks.

  For the training entry point: call it for any task name and log what comes back.
  Non-downstream tasks (synthetic ones have exact maximum lengths, checked elsewhere)
  return [] at no cost.
  """
  if task_name not in DOWNSTREAM_TASK_NAMES:
    return []
  found = []
  for split in splits:
    message = length_report(task_name, split, feature_lengths).message()
    if message:
      found.append(message)
  return found


def register_all() -> None:
  """Registers the five paper tasks (called at import)."""
  for name in TEXT_FILE_TASKS:
    register_text_file_task(name)


register_all()
