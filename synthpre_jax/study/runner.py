"""The study runner: pre-training sources x downstream tasks x training-set sizes x seeds.

    python -m synthpre_jax.study --gin_file=gin/studies/quickstart.gin \\
        [--study_dir=DIR] [--only=GLOB,...] [--print_commands] [--dry_run] [--collect]

A study (a Gin file binding `study.*`, see gin/studies/) names pre-training *sources*,
downstream *tasks*, training-set *sizes* and *seeds*; every combination is a *cell*:
fine-tune from the source on a seeded random subset of `size` training examples (all
of them for None) with SEED = seed, then evaluate the test split at the checkpoint with
the best validation token accuracy (the paper's rule). The cell's seed also draws its
subset (`<task>_train<N>_seed<S>`, nested across sizes) and its data order
(DATA_SEED), unless the study pins them with `study.subset_seed` / `study.data_seed`.
Sources are plain data, so new kinds need no code:

  key                what it does
  pretrain           Gin files of a pre-training recipe: the source is pre-trained ONCE,
                     in <study_dir>/pretrain/<source>, before its cells
  pretrain_bindings  extra bindings for that run ("NAME = value" strings)
  checkpoint         an existing checkpoint instead (e.g. a converted public T5)
  load_checkpoint    start fine-tuning from the source's checkpoint (INITIAL_CHECKPOINT_
                     PATH); default: True when it has one (pretrain or checkpoint)
  transfer_mode      'all' | 'all_but_embeddings' (default; the paper's drivers used
                     'all' for natural only)
  checkpoint_step    which step of the source's run its cells read: 'first_ge:0.99'
                     (default, the paper's rule: the first with >= 99% validation token
                     accuracy, else the best), 'best', 'latest' or a step; recorded
  allow_vocab_mismatch  let the source's vocabulary differ from the task's (default:
                     True exactly when its embedding is re-learned, all_but_embeddings)
  stats_of           moment matching: gin/init/moment_matching.gin with
                     INIT_STATS_CHECKPOINT = that source's checkpoint; `grouping`
                     (default 'per_param') and `stats_fn` (default 'mean_std')
  gin_files          extra fine-tuning Gin files, after the task's (an LSTM model file,
                     an init transform such as init/pre_attention_norm_constant.gin)
  bindings           extra fine-tuning bindings, after everything else
  token_steps        natural-token equivalence, e.g. [0, 250, 500, 1000, 2000, 4000] on a
                     source with `pretrain`: it is pre-trained ONCE to the largest step
                     (TRAIN_STEPS, bound after every other pre-training binding) keeping
                     each listed step's checkpoint (CheckpointConfig.keep_steps; step 0 is
                     the run's untrained initial state, saved before its first step), and
                     expands into one source `<name>@<step>` per step (same settings,
                     checkpoint_step = that step, no run of its own). The source itself
                     then has no cells: name a step as the reference, e.g. study.natural =
                     'natural@4000'. Their records carry natural_run, natural_step and
                     natural_tokens = step x the run's tokens_per_step (batch x (inputs +
                     targets) positions, padding included, from the checkpoint's meta);
                     the report fits score vs natural_tokens (synthpre_jax.study.report)

In any binding `{checkpoint:NAME}` becomes the quoted checkpoint path of source NAME (and
makes this source wait for NAME's pre-training) and `{checkpoint_step:NAME}` NAME's
`checkpoint_step`, e.g. the LSTM with T5 embeddings:
  {'gin_files': ['models/lstm_seq2seq_tiny.gin', 'init/lstm_embedding_from_t5.gin'],
   'bindings': ['EMBEDDING_CHECKPOINT = {checkpoint:natural}',
                'EMBEDDING_CHECKPOINT_STEP = {checkpoint_step:natural}']}
Tasks: {name: {'gin_files': [...], 'metric': 'exact_match', 'train_size': 15055,
'bindings': [...], 'mixture_or_task_name': ...}}; a size N trains on the registered
subset task `<task>_train<N>_seed<S>` (tasks/subsets.py). `metric` is a key of the test metrics
in results.json, or a number of results.json itself (`validation_token_accuracy`).
A size may also be a percentage of each task's 'train' split, spelled as in subset names:
'10pct', '0.5pct' (task `<task>_train<P>pct_seed<S>`, cell `...n<P>pct...`). Every task
then needs `train_size` (that split's example count): the record's `size` and
`train_examples` are the subset's example count, floor(P% of train_size) as in
tasks/subsets.py, and `size_percent` is P.

Layout of <study_dir>:
  study.json                          the resolved matrix (the report reads its order)
  pretrain/<source>/                  a pre-training run's MODEL_DIR (+ study.log)
  cells/<source>/<task>/n<size>/seed<k>/   a fine-tuning run's MODEL_DIR (+ study.log,
                                      and study_attempts.json: the seconds of every
                                      train/evaluate attempt; the record's wall times
                                      sum them)
  records/<cell id>.json              one record per finished cell (what reports read:
                                      scores, subset and data seeds, the source
                                      checkpoint and step, vocabulary, code version and
                                      Gin config hash from the cell's run.json)
  report.md, report_files/*.png       written at the end by synthpre_jax.study.report
  xla_cache/                          JAX's persistent compilation cache (unless
                                      $JAX_COMPILATION_CACHE_DIR is set)

Cell ids are `<source>.<task>.n<size|all>.seed<k>` (e.g. `natural@250.squad.n100.seed0`
for step 250 of a source with token_steps). Resuming: a cell with a record is
never rerun; an interrupted cell re-runs `train`, which resumes from the cell's own
checkpoint; a finished step (pre-training, fine-tuning) leaves a `study_done.json`
marker and is not repeated. A failing cell is reported with its log and the study goes
on; the exit code is then 1 and the failed cells are listed. SIGTERM during training
stops the study (exit 143) after the trainer has saved a checkpoint: re-run to resume.

In-process or subprocesses: by default each `train` / `evaluate` runs in this process
(`main(argv)`; Gin state is cleared by every parse, logs go to the step's study.log).
Measured on the 2-core CPU machine: `python -m synthpre_jax.evaluate` of a quickstart
cell (200 examples) takes 14.5 s as a fresh process, 1.4-2.6 s as a repeated in-process
call (imports of JAX/TensorFlow/SeqIO, task registration and compilation are paid once;
JAX's persistent compilation cache, below, serves the rest), i.e. ~5 minutes saved on
the quickstart study's 18 steps.
`--isolation=subprocess` (or `study.isolation = 'subprocess'`) runs each as
`python -m synthpre_jax.train ...` instead, which isolates memory and crashes.
`--print_commands` prints those plain command lines (shell-quoted, in dependency order)
for a scheduler or TPU VMs; afterwards `--collect` turns their results.json files into
records and writes the report.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import decimal
import fnmatch
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import gin
from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax.cli import gin_utils
from synthpre_jax.training import provenance
from synthpre_jax.evaluation import results

RECORD_VERSION = 2
PREEMPTED_EXIT_CODE = 143
DONE_MARKER = "study_done.json"
ATTEMPTS_FILE = "study_attempts.json"
LOG_FILE = "study.log"
MOMENT_MATCHING_GIN = "init/moment_matching.gin"
TRANSFER_MODES = ("all", "all_but_embeddings")
ISOLATIONS = ("in_process", "subprocess")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_PERCENT_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)pct$")
STEP_SEPARATOR = "@"  # `<source>@<step>`: one step of a source with token_steps
_PLACEHOLDER = re.compile(r"\{checkpoint:([^}]*)\}")
_STEP_PLACEHOLDER = re.compile(r"\{checkpoint_step:([^}]*)\}")
_ANY_PLACEHOLDER = re.compile(r"\{checkpoint(?:_step)?:([^}]*)\}")
_BINDING = re.compile(r"^\s*([A-Za-z_][\w./@]*)\s*=\s*(.*?)\s*$", re.DOTALL)


# --- the matrix ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Source:
  """A pre-training source (see the module docstring for the keys)."""
  name: str
  pretrain: tuple[str, ...] = ()
  pretrain_bindings: tuple[str, ...] = ()
  checkpoint: Optional[str] = None
  load_checkpoint: Optional[bool] = None
  transfer_mode: str = "all_but_embeddings"
  stats_of: Optional[str] = None
  grouping: str = "per_param"
  stats_fn: str = "mean_std"
  gin_files: tuple[str, ...] = ()
  bindings: tuple[str, ...] = ()
  checkpoint_step: Union[str, int] = "first_ge:0.99"
  allow_vocab_mismatch: Optional[bool] = None
  token_steps: tuple[int, ...] = ()
  # Set by `expand_token_steps` on `<parent>@<step>`: the source whose run it reads.
  step_of: Optional[str] = None

  def __post_init__(self):
    if self.step_of is None:
      _check_name("source", self.name)
    elif self.name != f"{self.step_of}{STEP_SEPARATOR}{self.checkpoint_step}" or (
        self.pretrain or self.checkpoint or self.token_steps):
      raise ValueError(f"Source {self.name!r}: `step_of` is set by `token_steps` only.")
    results.parse_step_rule(self.checkpoint_step)  # raises with the accepted forms
    if self.token_steps:
      self._check_token_steps()
    if self.pretrain and self.checkpoint:
      raise ValueError(f"Source {self.name!r} has both `pretrain` and `checkpoint`: keep one.")
    if self.transfer_mode not in TRANSFER_MODES:
      raise ValueError(f"Source {self.name!r}: transfer_mode must be one of "
                       f"{TRANSFER_MODES}, got {self.transfer_mode!r}.")
    if self.load_checkpoint and not self.has_checkpoint:
      raise ValueError(f"Source {self.name!r} sets load_checkpoint but has neither "
                       "`pretrain` nor `checkpoint`.")
    for b in self.pretrain_bindings + self.bindings:
      split_binding(b, f"source {self.name!r}")

  def _check_token_steps(self) -> None:
    steps = self.token_steps
    if not self.pretrain or self.load_checkpoint is False:
      raise ValueError(f"Source {self.name!r}: `token_steps` needs `pretrain` (the run "
                       "whose steps its cells read) and a loaded checkpoint.")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in steps) or \
        len(set(steps)) != len(steps) or max(steps) < 1:
      raise ValueError(f"Source {self.name!r}: token_steps must be distinct step numbers "
                       f">= 0, one of them > 0 (the run's length), got {list(steps)}.")
    if any(split_binding(b, self.name)[0] == "TRAIN_STEPS" for b in self.pretrain_bindings):
      raise ValueError(f"Source {self.name!r}: `token_steps` sets TRAIN_STEPS to its "
                       f"largest step ({max(steps)}); drop TRAIN_STEPS from its "
                       "pretrain_bindings.")
    object.__setattr__(self, "token_steps", tuple(sorted(steps)))

  @property
  def has_checkpoint(self) -> bool:
    return bool(self.pretrain) or self.checkpoint is not None or self.step_of is not None

  @property
  def loads_checkpoint(self) -> bool:
    return self.has_checkpoint if self.load_checkpoint is None else self.load_checkpoint

  def finetune_gin_files(self) -> tuple[str, ...]:
    return self.gin_files + ((MOMENT_MATCHING_GIN,) if self.stats_of else ())

  @property
  def allows_vocab_mismatch(self) -> bool:
    """Default: a loaded checkpoint whose embedding is re-learned may have another
    vocabulary (a synthetic source fine-tuned on text); the run logs that it was used."""
    if self.allow_vocab_mismatch is not None:
      return self.allow_vocab_mismatch
    return self.loads_checkpoint and self.transfer_mode == "all_but_embeddings"

  def finetune_bindings(self) -> tuple[str, ...]:
    extra = ()
    if self.stats_of:
      extra = (f"INIT_STATS_CHECKPOINT = {{checkpoint:{self.stats_of}}}",
               f"INIT_STATS_CHECKPOINT_STEP = {{checkpoint_step:{self.stats_of}}}",
               f"GROUPING = {self.grouping!r}", f"STATS_FN = {self.stats_fn!r}")
    return extra + self.bindings

  def finetune_dependencies(self) -> list[str]:
    """Sources whose checkpoint this source's fine-tuning needs (itself included)."""
    deps = [self.step_of or self.name] if self.loads_checkpoint else []
    deps += [n for b in self.finetune_bindings() for n in _ANY_PLACEHOLDER.findall(b)]
    return list(dict.fromkeys(deps))


@dataclasses.dataclass(frozen=True)
class Task:
  """A downstream task: its fine-tuning Gin files and the metric the paper reports."""
  name: str
  gin_files: tuple[str, ...]
  metric: str
  mixture_or_task_name: Optional[str] = None
  train_size: Optional[int] = None
  bindings: tuple[str, ...] = ()

  def __post_init__(self):
    _check_name("task", self.name)
    if not self.gin_files:
      raise ValueError(f"Task {self.name!r} needs `gin_files` (its fine-tuning recipe).")
    if not self.metric:
      raise ValueError(f"Task {self.name!r} needs `metric` (a key of its results.json "
                       "metrics, e.g. 'exact_match', 'rouge1', 'f1').")
    for b in self.bindings:
      split_binding(b, f"task {self.name!r}")

  @property
  def seqio_name(self) -> str:
    return self.mixture_or_task_name or self.name

  def seqio_name_for_size(self, size: Union[None, int, str], subset_seed: int = 0) -> str:
    """The registered task of a seeded random `size`-example training subset
    (`<task>_train<N>_seed<S>`, or `<task>_train<P>pct_seed<S>` for a size '<P>pct';
    tasks/subsets.py); the task itself for None."""
    if size is None:
      return self.seqio_name
    return f"{self.seqio_name}_train{size}_seed{subset_seed}"


@dataclasses.dataclass(frozen=True)
class Cell:
  source: str
  task: str
  size: Optional[int]
  seed: int

  @property
  def size_label(self) -> str:
    return "nall" if self.size is None else f"n{self.size}"

  @property
  def cell_id(self) -> str:
    return f"{self.source}.{self.task}.{self.size_label}.seed{self.seed}"


@dataclasses.dataclass(frozen=True)
class Study:
  """A resolved study: plain data, no Gin needed once built."""
  name: str
  study_dir: str
  sources: Mapping[str, Source]
  tasks: Mapping[str, Task]
  sizes: tuple[Optional[int], ...]
  seeds: tuple[int, ...]
  pretrain_bindings: tuple[str, ...] = ()
  finetune_bindings: tuple[str, ...] = ()
  evaluate_bindings: tuple[str, ...] = ()
  natural: str = "natural"
  scratch: str = "scratch"
  isolation: str = "in_process"
  # None: a cell's seed also draws its training subset / its data order; an int pins it.
  subset_seed: Optional[int] = None
  data_seed: Optional[int] = None
  # (a, b) source pairs the report compares head to head (its "Pairwise comparisons").
  comparisons: tuple[tuple[str, str], ...] = ()

  def __post_init__(self):
    if not self.sources or not self.tasks:
      raise ValueError("A study needs at least one source and one task.")
    if not self.sizes or not self.seeds:
      raise ValueError("A study needs at least one size (None = the full training set) "
                       "and one seed.")
    for size in self.sizes:
      if size is not None and size_percent(size) is None and (
          isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"study.sizes holds {size!r}: use positive integers, "
                         "percentages such as '10pct' or None (the full training set).")
    if any(size_percent(n) is not None for n in self.sizes):
      unknown = [t.name for t in self.tasks.values() if not t.train_size]
      if unknown:
        raise ValueError(f"study.sizes holds percentages, so every task needs its "
                         f"'train_size' (the examples of its 'train' split); missing for "
                         f"{', '.join(unknown)}.")
    if len(set(self.sizes)) != len(self.sizes) or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f"Repeated sizes or seeds: {self.sizes}, {self.seeds}.")
    if self.isolation not in ISOLATIONS:
      raise ValueError(f"study.isolation must be one of {ISOLATIONS}.")
    for b in self.pretrain_bindings + self.finetune_bindings + self.evaluate_bindings:
      split_binding(b, "the study")
    for source in self.sources.values():
      needed = source.finetune_dependencies() + [
          n for b in source.pretrain_bindings for n in _ANY_PLACEHOLDER.findall(b)]
      for dep in needed:
        if dep not in self.sources:
          raise ValueError(f"Source {source.name!r} refers to source {dep!r}, which the "
                           f"study does not declare (sources: {', '.join(self.sources)}).")
        if not self.sources[dep].has_checkpoint:
          raise ValueError(f"Source {source.name!r} needs the checkpoint of {dep!r}, which "
                           "has neither `pretrain` nor `checkpoint`.")
      if source.step_of is not None and source.checkpoint_step not in getattr(
          self.sources.get(source.step_of), "token_steps", ()):
        raise ValueError(f"Source {source.name!r} reads a step that {source.step_of!r} "
                         "does not list in its token_steps.")
    ref = self.sources.get(self.natural)
    if ref is not None and ref.token_steps:
      raise ValueError(f"study.natural = {self.natural!r} has token_steps, so it has no "
                       "cells of its own: name one of its steps, e.g. study.natural = "
                       f"'{self.natural}{STEP_SEPARATOR}{ref.token_steps[-1]}'.")
    for a, b in self.comparisons:
      unknown = [n for n in (a, b) if n not in self.sources]
      if unknown or a == b:
        raise ValueError(f"study.comparisons holds '{a}:{b}': "
                         + (f"{', '.join(unknown)} is not a source of the study (sources: "
                            f"{', '.join(self.sources)})." if unknown
                            else "a source compared with itself."))
    self.pretrain_order(list(self.sources))  # raises on cycles

  # -- paths
  def pretrain_dir(self, source: str) -> str:
    return os.path.join(self.study_dir, "pretrain", source)

  def checkpoint_of(self, source: str) -> str:
    s = self.sources[source]
    if s.step_of is not None:
      return self.pretrain_dir(s.step_of)
    return s.checkpoint if s.checkpoint is not None else self.pretrain_dir(source)

  def cell_dir(self, cell: Cell) -> str:
    return os.path.join(self.study_dir, "cells", cell.source, cell.task, cell.size_label,
                        f"seed{cell.seed}")

  def record_path(self, cell: Cell) -> str:
    return os.path.join(self.study_dir, "records", f"{cell.cell_id}.json")

  # -- the matrix
  def cells(self) -> list[Cell]:
    """Every cell, source-major (a source's cells run right after its pre-training); a
    source with token_steps has none itself (its `<name>@<step>` sources have them)."""
    return [Cell(s, t, n, k) for s in self.sources if not self.sources[s].token_steps
            for t in self.tasks for n in self.sizes for k in self.seeds]

  def pretrain_order(self, needed: Sequence[str]) -> list[str]:
    """The sources among `needed` (and what they need) that pre-train, dependencies
    first."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
      if name in order:
        return
      if name in path:
        raise ValueError(f"Sources depend on each other in a cycle: {' -> '.join(path + (name,))}")
      source = self.sources[name]
      for b in source.pretrain_bindings:
        for dep in _ANY_PLACEHOLDER.findall(b):
          visit(dep, path + (name,))
      if source.pretrain:
        order.append(name)

    for name in needed:
      visit(name, ())
    return order

  def resolve(self, binding: str) -> str:
    """Replaces `{checkpoint:NAME}` with the quoted checkpoint path of source NAME and
    `{checkpoint_step:NAME}` with its checkpoint-step rule."""
    binding = _STEP_PLACEHOLDER.sub(
        lambda m: repr(self.sources[m.group(1)].checkpoint_step), binding)
    return _PLACEHOLDER.sub(lambda m: repr(self.checkpoint_of(m.group(1))), binding)

  def cell_subset_seed(self, cell: "Cell") -> int:
    return cell.seed if self.subset_seed is None else self.subset_seed

  def cell_data_seed(self, cell: "Cell") -> int:
    return cell.seed if self.data_seed is None else self.data_seed

  def cell_task_name(self, cell: "Cell") -> str:
    return self.tasks[cell.task].seqio_name_for_size(cell.size, self.cell_subset_seed(cell))

  # -- command lines (argv of train / evaluate main)
  def pretrain_argv(self, source: str) -> list[str]:
    s = self.sources[source]
    steps = ([f"TRAIN_STEPS = {s.token_steps[-1]}",
              f"CheckpointConfig.keep_steps = {list(s.token_steps)}"]
             if s.token_steps else [])
    return ([f"--gin_file={f}" for f in s.pretrain] +
            _binding_flags([self.resolve(b) for b in
                            self.pretrain_bindings + s.pretrain_bindings] + steps)
            + [f"--gin.MODEL_DIR={self.pretrain_dir(source)!r}"])

  def finetune_argv(self, cell: Cell) -> list[str]:
    s, t = self.sources[cell.source], self.tasks[cell.task]
    initial = self.checkpoint_of(s.name) if s.loads_checkpoint else None
    bindings = [f"MIXTURE_OR_TASK_NAME = {self.cell_task_name(cell)!r}",
                f"SEED = {cell.seed}", f"DATA_SEED = {self.cell_data_seed(cell)}",
                f"INITIAL_CHECKPOINT_PATH = {initial!r}",
                f"TRANSFER_MODE = {s.transfer_mode!r}"]
    if initial is not None:
      bindings.append(f"INITIAL_CHECKPOINT_STEP = {s.checkpoint_step!r}")
    if s.allows_vocab_mismatch:
      bindings.append("ALLOW_VOCAB_MISMATCH = True")
    bindings += [self.resolve(b) for b in
                 self.finetune_bindings + t.bindings + s.finetune_bindings()]
    return ([f"--gin_file={f}" for f in t.gin_files + s.finetune_gin_files()] +
            _binding_flags(bindings) + [f"--gin.MODEL_DIR={self.cell_dir(cell)!r}"])

  def evaluate_argv(self, cell: Cell) -> list[str]:
    return ([f"--gin_file={os.path.join(self.cell_dir(cell), 'config.gin')}",
             "--gin.evaluate.split='test'"] + _binding_flags(self.evaluate_bindings))

  def to_json(self) -> dict[str, Any]:
    return {"name": self.name, "study_dir": self.study_dir,
            "sources": {k: dataclasses.asdict(v) for k, v in self.sources.items()},
            "tasks": {k: dataclasses.asdict(v) for k, v in self.tasks.items()},
            "sizes": list(self.sizes), "seeds": list(self.seeds),
            "natural": self.natural, "scratch": self.scratch,
            "subset_seed": self.subset_seed, "data_seed": self.data_seed,
            "comparisons": [list(pair) for pair in self.comparisons],
            # JSON objects are written with sorted keys: the declared order is kept here.
            "source_order": list(self.sources), "task_order": list(self.tasks),
            "cells": [c.cell_id for c in self.cells()]}


def size_percent(size: Any) -> Optional[str]:
  """P of a percentage size '<P>pct' (canonical, 0 < P <= 100, e.g. '10pct', '0.5pct'),
  None for anything else; ValueError for a non-canonical or out-of-range percentage."""
  m = _PERCENT_SIZE.match(size) if isinstance(size, str) else None
  if m is None:
    return None
  value = decimal.Decimal(m.group(1))
  canonical = format(value.normalize(), "f")
  if not 0 < value <= 100 or canonical != m.group(1):
    raise ValueError(f"study.sizes holds {size!r}: write a percentage in (0, 100] "
                     f"without leading or trailing zeros, e.g. '{canonical}pct'.")
  return m.group(1)


def size_examples(size: Union[None, int, str], train_size: Optional[int]) -> Optional[int]:
  """Training examples of a cell of `size`: N, `train_size` for None, floor(P% of
  train_size) for '<P>pct' (tasks/subsets.py's count); None when unknown."""
  percent = size_percent(size)
  if percent is None:
    return size if size is not None else train_size
  if not train_size:
    return None
  return int(decimal.Decimal(train_size) * decimal.Decimal(percent) / 100)


def _check_name(kind: str, name: Any) -> None:
  if not isinstance(name, str) or not _NAME.match(name):
    raise ValueError(f"Bad {kind} name {name!r}: use letters, digits, '_' and '-' (it "
                     "becomes part of directory names and cell ids).")


def split_binding(binding: Any, where: str) -> tuple[str, str]:
  """'NAME = value' -> ('NAME', 'value'); a clear error otherwise."""
  m = _BINDING.match(binding) if isinstance(binding, str) else None
  if not m or not m.group(2):
    raise ValueError(f"Bad binding {binding!r} in {where}: write 'NAME = value', e.g. "
                     "'TRAIN_STEPS = 300' or \"GROUPING = 'per_param'\".")
  return m.group(1), m.group(2)


def _binding_flags(bindings) -> list[str]:
  return [f"--gin.{name}={value}" for name, value in
          (split_binding(b, "the study") for b in bindings)]


def _tuple(value: Any, what: str) -> tuple:
  if value is None:
    return ()
  if isinstance(value, str):
    return (value,)
  if not isinstance(value, (list, tuple)):
    raise ValueError(f"{what} must be a list, got {value!r}.")
  return tuple(value)


def _from_dict(cls, name: str, entry: Any, kind: str):
  if entry is None:
    entry = {}
  if not isinstance(entry, Mapping):
    raise ValueError(f"study.{kind}[{name!r}] must be a dict of settings, got {entry!r}.")
  fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
  unknown = sorted(set(entry) - fields)
  if unknown:
    raise ValueError(f"study.{kind}[{name!r}]: unknown key(s) {unknown}; known: "
                     f"{sorted(fields)}.")
  tuple_fields = {"pretrain", "pretrain_bindings", "gin_files", "bindings", "token_steps"}
  values = {k: (_tuple(v, f"study.{kind}[{name!r}][{k!r}]") if k in tuple_fields else v)
            for k, v in entry.items()}
  return cls(name=name, **values)


def expand_token_steps(sources: Mapping[str, Source]) -> dict[str, Source]:
  """The sources, each one with `token_steps` followed by one source `<name>@<step>` per
  step: its settings, reading that step of its pre-training run (no run of its own)."""
  out: dict[str, Source] = {}
  for name, source in sources.items():
    out[name] = source
    for step in source.token_steps:
      child = f"{name}{STEP_SEPARATOR}{step}"
      if child in sources:
        raise ValueError(f"Source {child!r} is declared twice: by name and by the "
                         f"token_steps of {name!r}.")
      out[child] = dataclasses.replace(source, name=child, pretrain=(),
                                       pretrain_bindings=(), token_steps=(), step_of=name,
                                       checkpoint_step=step)
  return out


@gin.configurable(module=None)
def study(*, sources: Mapping[str, Any] = gin.REQUIRED,
          tasks: Mapping[str, Any] = gin.REQUIRED,
          sizes: Sequence[Optional[int]] = (None,), seeds: Sequence[int] = (0,),
          study_dir: Optional[str] = None, name: Optional[str] = None,
          pretrain_bindings: Sequence[str] = (), finetune_bindings: Sequence[str] = (),
          evaluate_bindings: Sequence[str] = (), natural: str = "natural",
          scratch: str = "scratch", isolation: str = "in_process",
          subset_seed: Optional[int] = None, data_seed: Optional[int] = None,
          comparisons: Sequence[str] = ()) -> Study:
  """Builds the study from its Gin bindings (see gin/studies/*.gin). `comparisons`:
  'a:b' strings, source pairs the report tests head to head."""
  if not study_dir:
    raise ValueError("No study directory: pass --study_dir=DIR or bind "
                     "study.study_dir = '/path' in the study's Gin file.")
  for what, value in (("sources", sources), ("tasks", tasks)):
    if not isinstance(value, Mapping):
      raise ValueError(f"study.{what} must be a dict {{name: {{settings}}}}, got {value!r}.")
  def absolute(entry: Any) -> Any:  # local checkpoint paths relative to the working dir
    if isinstance(entry, Mapping) and isinstance(entry.get("checkpoint"), str) and \
        "://" not in entry["checkpoint"]:
      return {**entry, "checkpoint": os.path.abspath(entry["checkpoint"])}
    return entry

  return Study(
      name=name or os.path.basename(os.path.normpath(study_dir)),
      study_dir=os.path.abspath(study_dir),
      sources=expand_token_steps(
          {k: _from_dict(Source, k, absolute(v), "sources") for k, v in sources.items()}),
      tasks={k: _from_dict(Task, k, v, "tasks") for k, v in tasks.items()},
      sizes=tuple(sizes), seeds=tuple(int(s) for s in seeds),
      pretrain_bindings=_tuple(pretrain_bindings, "study.pretrain_bindings"),
      finetune_bindings=_tuple(finetune_bindings, "study.finetune_bindings"),
      evaluate_bindings=_tuple(evaluate_bindings, "study.evaluate_bindings"),
      natural=natural, scratch=scratch, isolation=isolation,
      subset_seed=None if subset_seed is None else int(subset_seed),
      data_seed=None if data_seed is None else int(data_seed),
      comparisons=tuple(parse_comparison(c) for c in
                        _tuple(comparisons, "study.comparisons")))


def parse_comparison(text: Any) -> tuple[str, str]:
  """'a:b' -> ('a', 'b'): a pair of source names for the report to compare."""
  parts = text.split(":") if isinstance(text, str) else []
  if len(parts) != 2 or not all(p.strip() for p in parts):
    raise ValueError(f"A comparison is 'source_a:source_b' (e.g. 'natural:set'), got "
                     f"{text!r}.")
  return parts[0].strip(), parts[1].strip()


def load_study(gin_files: Sequence[str], bindings: Sequence[str] = (),
               search_paths: Optional[Sequence[str]] = None,
               study_dir: Optional[str] = None) -> Study:
  """Parses a study's Gin files and returns the resolved Study (Gin is cleared after)."""
  extra = [f"study.study_dir = {study_dir!r}"] if study_dir else []
  gin_utils.parse_gin(gin_files, list(bindings) + extra, search_paths)
  try:
    spec = study()
  finally:
    gin.clear_config()
  if spec.name == os.path.basename(spec.study_dir) and gin_files:
    spec = dataclasses.replace(spec, name=os.path.splitext(os.path.basename(gin_files[0]))[0])
  return spec


def select_cells(spec: Study, only: Optional[str]) -> list[Cell]:
  """The cells matching `only` (comma-separated cell ids or globs); all without it."""
  cells = spec.cells()
  if not only:
    return cells
  patterns = [p.strip() for p in only.split(",") if p.strip()]
  chosen = []
  for p in patterns:
    hits = [c for c in cells if fnmatch.fnmatchcase(c.cell_id, p)]
    if not hits:
      raise ValueError(f"--only pattern {p!r} matches no cell. Cell ids look like "
                       f"{cells[0].cell_id!r}; all: {', '.join(c.cell_id for c in cells)}")
    chosen += hits
  return [c for c in cells if c in set(chosen)]


# --- running steps ------------------------------------------------------------------------

@dataclasses.dataclass
class StepOutcome:
  rc: int
  seconds: float
  log: str


def _entry_point(module: str) -> Callable[[list[str]], int]:
  if module == "train":
    from synthpre_jax.cli import train as train_lib  # pylint: disable=g-import-not-at-top
    return train_lib.main
  from synthpre_jax.cli import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  return evaluate_lib.main


def run_step(module: str, argv: list[str], log_path: str, isolation: str) -> int:
  """Runs `python -m synthpre_jax.<module> argv` (in this process or a child), appending
  its output to `log_path`; returns its exit code (1 for an unexpected exception)."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, "a") as log:
    log.write(f"\n$ {command_line(module, argv)}\n")
    log.flush()
    if isolation == "subprocess":
      return subprocess.run([sys.executable, "-m", f"synthpre_jax.{module}", *argv],
                            stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
        _redirect_fd(2, log):  # TensorFlow's and XLA's C++ logs too
      try:
        return int(_entry_point(module)(list(argv)))
      except Exception:  # pylint: disable=broad-except
        traceback.print_exc(file=log)
        return 1
      finally:
        _reset_logging()


@contextlib.contextmanager
def _redirect_fd(fd: int, file):
  """Points the OS-level file descriptor `fd` at `file` for the duration."""
  sys.stderr.flush()
  saved = os.dup(fd)
  try:
    os.dup2(file.fileno(), fd)
    yield
  finally:
    file.flush()
    os.dup2(saved, fd)
    os.close(saved)


def _reset_logging() -> None:
  """Train/evaluate point the root logger at the (now closed) step log; undo that."""
  root = logging.getLogger()
  for handler in list(root.handlers):
    root.removeHandler(handler)
  logging.basicConfig(level=logging.WARNING, stream=sys.__stderr__, force=True)


def shell_quote(arg: str) -> str:
  """Quotes one argument for a POSIX shell, keeping `--gin.NAME="'value'"` readable."""
  if shlex.quote(arg) == arg:
    return arg
  m = re.match(r"^(--[\w.@/]+=)(.*)$", arg, re.DOTALL)
  if m and not re.search(r"[\"$`\\!\n]", m.group(2)):
    return f'{m.group(1)}"{m.group(2)}"'
  return shlex.quote(arg)


def command_line(module: str, argv: Sequence[str]) -> str:
  return " ".join(["python", "-m", f"synthpre_jax.{module}"] + [shell_quote(a) for a in argv])


class Progress:
  """Prints `done/total, elapsed, estimated remaining` after each step. Pre-training
  runs and cells are timed apart (one pre-training run can cost as much as dozens of
  cells): the estimate is each kind's steps left x that kind's mean time so far, and
  says "unknown" while a kind with steps left has none timed yet."""

  def __init__(self, pretrains: int, cells: int, already_done: int = 0, out=None):
    self.total, self.done, self.t0 = pretrains + cells, already_done, time.time()
    self.left = {"pretrain": pretrains, "cell": cells - already_done}
    self.seconds: dict[str, list[float]] = {"pretrain": [], "cell": []}
    self.out = out or sys.stdout

  def remaining(self) -> Optional[float]:
    """Estimated seconds left, or None while a kind with steps left is untimed."""
    total = 0.0
    for kind, left in self.left.items():
      if left > 0:
        if not self.seconds[kind]:
          return None
        total += left * sum(self.seconds[kind]) / len(self.seconds[kind])
    return total

  def step(self, what: str, status: str, seconds: float, kind: str = "cell",
           timed: bool = True) -> None:
    """Counts one finished step of `kind` ('pretrain' or 'cell'); `timed=False` (a
    skipped step) leaves it out of the mean times."""
    self.done += 1
    self.left[kind] -= 1
    if timed:
      self.seconds[kind].append(seconds)
    left = self.remaining()
    estimate = ("unknown until a cell is timed" if left is None and self.left["cell"]
                and not self.seconds["cell"] else
                "unknown" if left is None else _hms(left))
    self.out.write(f"[study] {self.done}/{self.total} done | {what}: {status} "
                   f"({_hms(seconds)}) | elapsed {_hms(time.time() - self.t0)} | "
                   f"est. remaining {estimate}\n")
    self.out.flush()


def _hms(seconds: float) -> str:
  s = int(round(seconds))
  return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else \
      f"{s // 60}m{s % 60:02d}s"


def _done(path: str) -> bool:
  return os.path.exists(os.path.join(path, DONE_MARKER))


def _mark_done(path: str, seconds: float) -> None:
  results.write_json_atomic(epath.Path(path) / DONE_MARKER, {"seconds": round(seconds, 3)})


def record_attempt(cell_dir: str, what: str, seconds: float, exit_code: Optional[int]
                   ) -> None:
  """Appends one train/eval attempt to `<cell_dir>/study_attempts.json` (atomically)."""
  path = epath.Path(cell_dir) / ATTEMPTS_FILE
  attempts = read_attempts(cell_dir)
  attempts.append({"step": what, "seconds": round(seconds, 3), "exit_code": exit_code,
                   "ended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
  results.write_json_atomic(path, {"attempts": attempts})


def read_attempts(cell_dir: str) -> list[dict[str, Any]]:
  """The cell's recorded attempts ([] when none); ValueError naming a corrupt file."""
  path = epath.Path(cell_dir) / ATTEMPTS_FILE
  if not path.exists():
    return []
  try:
    return list(json.loads(path.read_text())["attempts"])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{path} is not a list of attempts ({e}); delete it to restart "
                     "the cell's wall-time count.") from e


def attempt_times(cell_dir: str) -> dict[str, float]:
  """Seconds per step ('train', 'eval') summed over every recorded attempt."""
  times: dict[str, float] = {}
  for attempt in read_attempts(cell_dir):
    times[attempt["step"]] = times.get(attempt["step"], 0.0) + float(attempt["seconds"])
  return times


def _run_attempt(cell_dir: str, what: str, module: str, argv: list[str], log_path: str,
                 isolation: str) -> int:
  """`run_step`, with its duration recorded as an attempt of the cell even when it
  fails or is interrupted (exit_code None: an exception such as Ctrl-C)."""
  t0, rc = time.time(), None
  try:
    rc = run_step(module, argv, log_path, isolation)
    return rc
  finally:
    record_attempt(cell_dir, what, time.time() - t0, rc)


def token_fields(spec: Study, cell: Cell, run: Mapping[str, Any]) -> dict[str, Any]:
  """For a `<source>@<step>` cell: the run it reads (`natural_run`), the step
  (`natural_step`) and the pre-training tokens it stands for (`natural_tokens` = step x
  the checkpoint meta's `tokens_per_step`: batch x (inputs + targets) positions, padding
  included; None when the checkpoint predates that field). {} for other sources."""
  source = spec.sources[cell.source]
  if source.step_of is None:
    return {}
  ckpt = run.get("initial_checkpoint") or {}
  step = int(ckpt["step"]) if ckpt.get("step") is not None else int(source.checkpoint_step)
  params = ckpt.get("params_path") or os.path.join(
      spec.pretrain_dir(source.step_of), "checkpoints", str(step), "params")
  try:
    per_step = (checkpoints.read_meta(epath.Path(params)) or {}).get("tokens_per_step")
  except (OSError, ValueError):
    per_step = None
  return {"natural_run": source.step_of, "natural_step": step,
          "natural_tokens_per_step": per_step,
          "natural_tokens": None if per_step is None else step * int(per_step)}


def make_record(spec: Study, cell: Cell, result: Mapping[str, Any],
                times: Mapping[str, float], attempts: Optional[int] = None
                ) -> dict[str, Any]:
  """The cell's record: what the report reads (it never opens a model). `times`:
  seconds per step summed over the cell's `attempts` (None: not counted)."""
  task = spec.tasks[cell.task]
  metrics = dict(result.get("metrics", {}))
  if task.metric not in metrics:  # e.g. 'validation_token_accuracy' of results.json
    if isinstance(result.get(task.metric), (int, float)):
      metrics[task.metric] = float(result[task.metric])
    else:
      raise ValueError(f"Task {cell.task!r} reports metric {task.metric!r}, but the "
                       f"evaluation gave only {sorted(metrics)} (and results.json has no "
                       "such number): fix the task's `metric`.")
  source = spec.sources[cell.source]
  run = provenance.read_run_record(spec.cell_dir(cell)) or {}
  examples, percent = size_examples(cell.size, task.train_size), size_percent(cell.size)
  return {
      "version": RECORD_VERSION, "cell_id": cell.cell_id, "study": spec.name,
      "source": cell.source, "task": cell.task, "seed": cell.seed,
      "size": cell.size if percent is None else examples, "size_percent": percent,
      "subset_seed": spec.cell_subset_seed(cell) if cell.size is not None else None,
      "data_seed": spec.cell_data_seed(cell),
      "source_checkpoint": run.get("initial_checkpoint"),
      "init_source": run.get("init_transform"),
      "vocabulary": run.get("vocabulary"),
      "allow_vocab_mismatch": run.get("allow_vocab_mismatch"),
      "code_version": run.get("code_version"),
      "gin_config_hash": run.get("gin_config_hash"),
      "train_examples": examples,
      "mixture_or_task_name": spec.cell_task_name(cell),
      "metric": task.metric, "score": float(metrics[task.metric]),
      "metrics": dict(metrics), "transfer_mode": source.transfer_mode,
      "result": dict(result), "cell_dir": spec.cell_dir(cell),
      **token_fields(spec, cell, run),
      "wall_time_s": round(sum(times.values()), 3),
      **{f"{k}_time_s": round(v, 3) for k, v in times.items()},
      "wall_time_attempts": attempts,
      "wall_time_note": (f"sum of all {attempts} train/evaluate attempt(s) of this cell, "
                         f"interrupted and failed ones included ({ATTEMPTS_FILE})"
                         if attempts is not None else "not measured here"),
      "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }


def write_study_json(spec: Study) -> None:
  results.write_json_atomic(epath.Path(spec.study_dir) / "study.json", spec.to_json())


def enable_compilation_cache(spec: Study) -> str:
  """Every cell compiles the same few programs; JAX's persistent compilation cache
  (`<study_dir>/xla_cache`, unless $JAX_COMPILATION_CACHE_DIR is set) lets later cells
  and subprocesses load them instead. Returns the directory."""
  path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(spec.study_dir,
                                                                     "xla_cache")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = path  # for subprocesses
  import jax  # pylint: disable=g-import-not-at-top
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", path)
  return jax.config.jax_compilation_cache_dir


def run_study(spec: Study, cells: Sequence[Cell], out=None) -> tuple[int, list[str]]:
  """Runs the selected cells (and the pre-training they need). Returns (exit code,
  failed step ids)."""
  out = out or sys.stdout
  write_study_json(spec)
  enable_compilation_cache(spec)
  todo = [c for c in cells if not os.path.exists(spec.record_path(c))]
  skipped = len(cells) - len(todo)
  sources = list(dict.fromkeys(d for c in todo for d in
                               spec.sources[c.source].finetune_dependencies()))
  pretrains = spec.pretrain_order(sources)
  pending_pretrains = [p for p in pretrains if not _done(spec.pretrain_dir(p))]
  out.write(f"[study] {spec.name}: {len(cells)} cell(s) selected, {skipped} already "
            f"recorded; {len(pending_pretrains)} pre-training run(s) to do; dir "
            f"{spec.study_dir} ({spec.isolation})\n")
  out.flush()
  progress = Progress(len(pending_pretrains), len(cells), skipped, out)
  failed: list[str] = []
  blocked: set[str] = set()
  for name in pending_pretrains:
    deps = {d for b in spec.sources[name].pretrain_bindings for d in _ANY_PLACEHOLDER.findall(b)}
    log_path = os.path.join(spec.pretrain_dir(name), LOG_FILE)
    if deps & blocked:
      blocked.add(name)
      failed.append(f"pretrain.{name} (needs failed {', '.join(sorted(deps & blocked))})")
      progress.step(f"pretrain {name}", "SKIPPED", 0.0, "pretrain", timed=False)
      continue
    t0 = time.time()
    rc = run_step("train", spec.pretrain_argv(name), log_path, spec.isolation)
    seconds = time.time() - t0
    if rc == PREEMPTED_EXIT_CODE:
      out.write(f"[study] stopped (SIGTERM) during pretrain {name}; re-run to resume.\n")
      return PREEMPTED_EXIT_CODE, failed
    if rc != 0:
      blocked.add(name)
      failed.append(f"pretrain.{name} (exit {rc}; log {log_path})")
      progress.step(f"pretrain {name}", f"FAILED, log {log_path}", seconds, "pretrain")
      continue
    _mark_done(spec.pretrain_dir(name), seconds)
    progress.step(f"pretrain {name}", "ok", seconds, "pretrain")
  for cell in todo:
    cell_dir = spec.cell_dir(cell)
    log_path = os.path.join(cell_dir, LOG_FILE)
    deps = set(spec.sources[cell.source].finetune_dependencies()) & blocked
    if deps:
      failed.append(f"{cell.cell_id} (needs failed pretrain {', '.join(sorted(deps))})")
      progress.step(cell.cell_id, "SKIPPED", 0.0, timed=False)
      continue
    status, t0 = "ok", time.time()
    if not _done(cell_dir):
      rc = _run_attempt(cell_dir, "train", "train", spec.finetune_argv(cell), log_path,
                        spec.isolation)
      if rc == PREEMPTED_EXIT_CODE:
        out.write(f"[study] stopped (SIGTERM) in cell {cell.cell_id}; re-run to resume.\n")
        return PREEMPTED_EXIT_CODE, failed
      if rc == 0:
        _mark_done(cell_dir, time.time() - t0)
      else:
        status = f"FAILED in train (exit {rc}), log {log_path}"
    if status == "ok":
      rc = _run_attempt(cell_dir, "eval", "evaluate", spec.evaluate_argv(cell), log_path,
                        spec.isolation)
      if rc != 0:
        status = f"FAILED in evaluate (exit {rc}), log {log_path}"
    if status == "ok":
      try:
        record = make_record(spec, cell, results.read_result(cell_dir),
                             attempt_times(cell_dir), len(read_attempts(cell_dir)))
        results.write_json_atomic(epath.Path(spec.record_path(cell)), record)
        status = f"ok, {record['metric']} {record['score']:.2f}"
      except (ValueError, FileNotFoundError) as e:
        status = f"FAILED writing the record: {e}"
    if status.startswith("FAILED"):
      failed.append(f"{cell.cell_id} ({status[len('FAILED '):]})")
    progress.step(cell.cell_id, status, time.time() - t0)
  return (1 if failed else 0), failed


def collect(spec: Study, cells: Sequence[Cell], out=None) -> int:
  """Writes records for cells run elsewhere (from their results.json); returns how many
  cells still lack one."""
  out = out or sys.stdout
  write_study_json(spec)
  missing = 0
  for cell in cells:
    if os.path.exists(spec.record_path(cell)):
      continue
    try:
      result = results.read_result(spec.cell_dir(cell))
    except FileNotFoundError:
      missing += 1
      continue
    record = make_record(spec, cell, result, {})
    results.write_json_atomic(epath.Path(spec.record_path(cell)), record)
    out.write(f"[study] recorded {cell.cell_id}: {record['metric']} {record['score']:.2f}\n")
  out.write(f"[study] {len(cells) - missing}/{len(cells)} cells recorded\n")
  return missing


def print_commands(spec: Study, cells: Sequence[Cell], gin_args: Sequence[str],
                   out=None) -> None:
  """The plain train/evaluate command lines, in dependency order."""
  out = out or sys.stdout
  sources = list(dict.fromkeys(d for c in cells for d in
                               spec.sources[c.source].finetune_dependencies()))
  out.write(f"# Study {spec.name}: {len(cells)} cell(s) in {spec.study_dir}\n")
  for name in spec.pretrain_order(sources):
    out.write(f"# pretrain {name}\n{command_line('train', spec.pretrain_argv(name))}\n")
  for cell in cells:
    out.write(f"# cell {cell.cell_id}\n{command_line('train', spec.finetune_argv(cell))}\n"
              f"{command_line('evaluate', spec.evaluate_argv(cell))}\n")
  again = " ".join(["python", "-m", "synthpre_jax.study.runner"] +
                   [shell_quote(a) for a in gin_args] +
                   [shell_quote(f"--study_dir={spec.study_dir}"), "--collect"])
  out.write(f"# then record the results and write the report:\n# {again}\n")


def dry_run(spec: Study, cells: Sequence[Cell], out=None) -> None:
  """Says what a run would do, without doing it."""
  out = out or sys.stdout
  sources = list(dict.fromkeys(d for c in cells for d in
                               spec.sources[c.source].finetune_dependencies()))
  for name in spec.pretrain_order(sources):
    state = "done" if _done(spec.pretrain_dir(name)) else "to run"
    out.write(f"pretrain {name:<30} {state:<10} {spec.pretrain_dir(name)}\n")
  for cell in cells:
    cell_dir = spec.cell_dir(cell)
    if os.path.exists(spec.record_path(cell)):
      state = "recorded"
    elif _done(cell_dir):
      state = "evaluate"
    elif results.saved_steps(cell_dir):
      state = "resume"
    else:
      state = "to run"
    out.write(f"cell     {cell.cell_id:<30} {state:<10} {cell_dir}\n")


# --- command line -------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(add_help=False)
  parser.add_argument("--study_dir", default=None)
  parser.add_argument("--only", default=None)
  parser.add_argument("--print_commands", action="store_true")
  parser.add_argument("--dry_run", action="store_true")
  parser.add_argument("--collect", action="store_true")
  parser.add_argument("--no_report", action="store_true")
  parser.add_argument("--isolation", choices=ISOLATIONS, default=None)
  flags, rest = parser.parse_known_args(argv)
  args, bindings = gin_utils.parse_args(
      rest, prog="python -m synthpre_jax.study", configurable=study, parents=[parser],
      description="Run a study: pre-training sources x downstream tasks x training-set sizes x "
      "seeds. Flags: --study_dir=DIR, --only=CELL_ID_OR_GLOB[,...], --print_commands, "
      "--dry_run, --collect (records from results.json of cells run elsewhere), "
      "--no_report, --isolation=in_process|subprocess.")
  gin_args = [a for a in rest if a.startswith("--gin")]
  try:
    spec = load_study(args.gin_file, bindings, args.gin_search_paths, flags.study_dir)
    if flags.isolation:
      spec = dataclasses.replace(spec, isolation=flags.isolation)
    cells = select_cells(spec, flags.only)
  except (ValueError, FileNotFoundError, IOError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if flags.print_commands:
    print_commands(spec, cells, gin_args)
    return 0
  if flags.dry_run:
    dry_run(spec, cells)
    return 0
  if flags.collect:
    collect(spec, cells)
    rc, failed = 0, []
  else:
    try:
      rc, failed = run_study(spec, cells)
    except KeyboardInterrupt:
      print("\n[study] interrupted; re-run the same command to resume.", file=sys.stderr)
      return 130
  if rc == PREEMPTED_EXIT_CODE:
    return rc
  if not flags.no_report:
    _report(spec)
  if failed:
    print(f"[study] {len(failed)} failed:\n  " + "\n  ".join(failed))
  return rc


def _report(spec: Study) -> None:
  from synthpre_jax.study import report as report_lib  # pylint: disable=g-import-not-at-top
  try:
    path, table = report_lib.write_report(spec.study_dir)
  except (ValueError, FileNotFoundError) as e:
    print(f"[study] no report: {e}")
    return
  print(f"\n{table}\n[study] report: {path}")


if __name__ == "__main__":
  sys.exit(main())
