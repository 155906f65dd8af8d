"""The paper's five text-file downstream tasks: data directory, split files, registration.

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
  `tasks/downstream/length_report.py` counts them. Evaluation decodes from the
  (truncated) input but scores the prediction against the full, untruncated target text
  (`targets_pretokenized`, kept by the tokenizer and returned by
  `text_features.postprocess_text` for targets).

Lower-casing: cnndm_10k is the paper's lower-cased CNN/DailyMail sample. The LOADER
lower-cases its inputs and targets (`str.lower`, Unicode-aware), so original-case files
work and already lower-cased files are unchanged. No other task is case-folded.

The table of all six paper tasks is `tasks/downstream/task_info.py`; their recipes
(learning rate, batch size, steps, lengths) are the Gin files in gin/finetune/.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Callable, Optional, Sequence

import seqio
import tensorflow as tf

from tasks.data_dirs import downstream_data_dir
from tasks.downstream import text_features

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


# --- the data directory ---------------------------------------------------------------

_data_dir: Optional[str] = None


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
    metric_fns = [text_features.METRIC_FNS["rouge"] if folder == "cnndm_10k" else
                  text_features.METRIC_FNS["exact_match"]]
  vocabulary = vocabulary if vocabulary is not None else text_features.TEXT_VOCABULARY
  text_features.DOWNSTREAM_TASK_NAMES.add(name)
  return seqio.TaskRegistry.add(
      name,
      source=seqio.FunctionDataSource(
          make_dataset_fn(name, source_task=folder, data_dir=data_dir,
                          lowercase=lowercase),
          splits=tuple(SPLIT_FILES)),
      output_features=text_features.text_features(vocabulary),
      preprocessors=[seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=text_features.postprocess_text,
      metric_fns=list(metric_fns),
  )


def register_all() -> None:
  """Registers the five paper tasks (called at import)."""
  for name in TEXT_FILE_TASKS:
    register_text_file_task(name)


register_all()
