"""A study's matrix as plain data: sources, tasks, cells, and the runs each one needs.

`Study` is validated when built (names, sizes, references between sources, cycles) and
builds the typed `RunConfig` of every pre-training, fine-tuning and evaluation run, with
its checkpoint references resolved. The keys of sources and tasks, and the layout of a
study directory: docs/studies.md.
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import re
from typing import Any, Mapping, Optional, Sequence, Union

from synthpre_jax.checkpoints import transfer_modes
from synthpre_jax.evaluation import results
from synthpre_jax.study.run_config import Binding, CheckpointRef, RunConfig, parse_bindings

MOMENT_MATCHING_GIN = "init/moment_matching.gin"
ISOLATIONS = ("in_process", "subprocess")
STEP_SEPARATOR = "@"  # `<source>@<step>`: one step of a source with token_steps
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_PERCENT_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)pct$")


def _check_name(kind: str, name: Any) -> None:
  if not isinstance(name, str) or not _NAME.match(name):
    raise ValueError(f"Bad {kind} name {name!r}: use letters, digits, '_' and '-' (it "
                     "becomes part of directory names and cell ids).")


def _set(obj: Any, **values: Any) -> None:
  """Normalises fields of a frozen dataclass in its __post_init__."""
  for name, value in values.items():
    object.__setattr__(obj, name, value)


def _references(bindings: Sequence[Binding]) -> list[str]:
  return [b.reference.source for b in bindings if b.reference is not None]


def _json_value(value: Any) -> Any:
  """A field as study.json writes it: bindings as the text a study file writes."""
  if isinstance(value, Binding):
    return value.text
  if isinstance(value, (tuple, list)):
    return [_json_value(v) for v in value]
  return value


def _to_json(obj: Any) -> dict[str, Any]:
  return {f.name: _json_value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


@dataclasses.dataclass(frozen=True)
class Source:
  """A pre-training source (its keys: docs/studies.md). Bindings given as 'NAME = value'
  strings are parsed into `Binding`s; ValueError for an inconsistent source."""
  name: str
  pretrain: tuple[str, ...] = ()
  pretrain_bindings: tuple[Binding, ...] = ()
  checkpoint: Optional[str] = None
  load_checkpoint: Optional[bool] = None
  transfer_mode: str = "all_but_embeddings"
  stats_of: Optional[str] = None
  grouping: str = "per_param"
  stats_fn: str = "mean_std"
  gin_files: tuple[str, ...] = ()
  bindings: tuple[Binding, ...] = ()
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
    where = f"source {self.name!r}"
    _set(self, pretrain_bindings=parse_bindings(self.pretrain_bindings, where),
         bindings=parse_bindings(self.bindings, where))
    results.parse_step_rule(self.checkpoint_step)  # raises with the accepted forms
    if self.token_steps:
      self._check_token_steps()
    if self.pretrain and self.checkpoint:
      raise ValueError(f"Source {self.name!r} has both `pretrain` and `checkpoint`: keep one.")
    try:
      transfer_modes.check(self.transfer_mode)
    except ValueError as e:
      raise ValueError(f"Source {self.name!r}: transfer_mode must be one of "
                       f"{transfer_modes.FORMS}, got {self.transfer_mode!r} ({e})") from e
    if self.load_checkpoint and not self.has_checkpoint:
      raise ValueError(f"Source {self.name!r} sets load_checkpoint but has neither "
                       "`pretrain` nor `checkpoint`.")

  def _check_token_steps(self) -> None:
    steps = self.token_steps
    if not self.pretrain or self.load_checkpoint is False:
      raise ValueError(f"Source {self.name!r}: `token_steps` needs `pretrain` (the run "
                       "whose steps its cells read) and a loaded checkpoint.")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in steps) or \
        len(set(steps)) != len(steps) or max(steps) < 1:
      raise ValueError(f"Source {self.name!r}: token_steps must be distinct step numbers "
                       f">= 0, one of them > 0 (the run's length), got {list(steps)}.")
    if any(b.name == "TRAIN_STEPS" for b in self.pretrain_bindings):
      raise ValueError(f"Source {self.name!r}: `token_steps` sets TRAIN_STEPS to its "
                       f"largest step ({max(steps)}); drop TRAIN_STEPS from its "
                       "pretrain_bindings.")
    _set(self, token_steps=tuple(sorted(steps)))

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
    return (self.loads_checkpoint
            and transfer_modes.parse(self.transfer_mode).keeps_embeddings_fresh)

  def finetune_bindings(self) -> tuple[Binding, ...]:
    extra = ()
    if self.stats_of:
      extra = (Binding("INIT_STATS_CHECKPOINT", CheckpointRef(self.stats_of, "path")),
               Binding("INIT_STATS_CHECKPOINT_STEP", CheckpointRef(self.stats_of, "step")),
               Binding("GROUPING", repr(self.grouping)),
               Binding("STATS_FN", repr(self.stats_fn)))
    return extra + self.bindings

  def finetune_dependencies(self) -> list[str]:
    """Sources whose checkpoint this source's fine-tuning needs (itself included)."""
    deps = [self.step_of or self.name] if self.loads_checkpoint else []
    return list(dict.fromkeys(deps + _references(self.finetune_bindings())))

  def pretrain_dependencies(self) -> list[str]:
    """Sources whose checkpoint this source's pre-training refers to."""
    return list(dict.fromkeys(_references(self.pretrain_bindings)))

  def to_json(self) -> dict[str, Any]:
    return _to_json(self)


@dataclasses.dataclass(frozen=True)
class Task:
  """A downstream task: its fine-tuning Gin files and the metric the paper reports."""
  name: str
  gin_files: tuple[str, ...]
  metric: str
  mixture_or_task_name: Optional[str] = None
  train_size: Optional[int] = None
  bindings: tuple[Binding, ...] = ()

  def __post_init__(self):
    _check_name("task", self.name)
    if not self.gin_files:
      raise ValueError(f"Task {self.name!r} needs `gin_files` (its fine-tuning recipe).")
    if not self.metric:
      raise ValueError(f"Task {self.name!r} needs `metric` (a key of its results.json "
                       "metrics, e.g. 'exact_match', 'rouge1', 'f1').")
    _set(self, bindings=parse_bindings(self.bindings, f"task {self.name!r}"))

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

  def to_json(self) -> dict[str, Any]:
    return _to_json(self)


@dataclasses.dataclass(frozen=True)
class Cell:
  source: str
  task: str
  size: Union[None, int, str]
  seed: int

  @property
  def size_label(self) -> str:
    return "nall" if self.size is None else f"n{self.size}"

  @property
  def cell_id(self) -> str:
    return f"{self.source}.{self.task}.{self.size_label}.seed{self.seed}"


@dataclasses.dataclass(frozen=True)
class Study:
  """A resolved study: plain data, no Gin needed once built. ValueError when it is
  inconsistent (says what to fix)."""
  name: str
  study_dir: str
  sources: Mapping[str, Source]
  tasks: Mapping[str, Task]
  sizes: tuple[Union[None, int, str], ...]
  seeds: tuple[int, ...]
  pretrain_bindings: tuple[Binding, ...] = ()
  finetune_bindings: tuple[Binding, ...] = ()
  evaluate_bindings: tuple[Binding, ...] = ()
  natural: str = "natural"
  scratch: str = "scratch"
  isolation: str = "in_process"
  # None: a cell's seed also draws its training subset / its data order; an int pins it.
  subset_seed: Optional[int] = None
  data_seed: Optional[int] = None
  # (a, b) source pairs the report compares head to head (its "Pairwise comparisons").
  comparisons: tuple[tuple[str, str], ...] = ()
  # Gin files read after each pre-training and fine-tuning run's own files (before
  # moment matching's): one binding swaps the model of the whole study, e.g.
  # ('models/decoder_only_tiny_text.gin',) (gin/studies/quickstart_decoder_only.gin).
  model_gin_files: tuple[str, ...] = ()

  def __post_init__(self):
    if not self.sources or not self.tasks:
      raise ValueError("A study needs at least one source and one task.")
    if not self.sizes or not self.seeds:
      raise ValueError("A study needs at least one size (None = the full training set) "
                       "and one seed.")
    self._check_sizes()
    if len(set(self.sizes)) != len(self.sizes) or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f"Repeated sizes or seeds: {self.sizes}, {self.seeds}.")
    if self.isolation not in ISOLATIONS:
      raise ValueError(f"study.isolation must be one of {ISOLATIONS}.")
    _set(self, **{k: parse_bindings(getattr(self, k), "the study") for k in (
        "pretrain_bindings", "finetune_bindings", "evaluate_bindings")})
    for source in self.sources.values():
      self._check_references(f"Source {source.name!r}", source.finetune_dependencies()
                             + source.pretrain_dependencies())
      if source.step_of is not None and source.checkpoint_step not in getattr(
          self.sources.get(source.step_of), "token_steps", ()):
        raise ValueError(f"Source {source.name!r} reads a step that {source.step_of!r} "
                         "does not list in its token_steps.")
    self._check_references("A binding of the study or of a task", _references(
        self.pretrain_bindings + self.finetune_bindings + self.evaluate_bindings
        + tuple(b for t in self.tasks.values() for b in t.bindings)))
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

  def _check_sizes(self) -> None:
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

  def _check_references(self, who: str, names: Sequence[str]) -> None:
    for dep in names:
      if dep not in self.sources:
        raise ValueError(f"{who} refers to source {dep!r}, which the study does not "
                         f"declare (sources: {', '.join(self.sources)}).")
      if not self.sources[dep].has_checkpoint:
        raise ValueError(f"{who} needs the checkpoint of {dep!r}, which has neither "
                         "`pretrain` nor `checkpoint`.")

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
    first. ValueError on a cycle."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
      if name in order:
        return
      if name in path:
        raise ValueError(f"Sources depend on each other in a cycle: {' -> '.join(path + (name,))}")
      source = self.sources[name]
      for dep in source.pretrain_dependencies():
        visit(dep, path + (name,))
      if source.pretrain:
        order.append(name)

    for name in needed:
      visit(name, ())
    return order

  def needed_pretrains(self, cells: Sequence[Cell]) -> list[str]:
    """The pre-training runs `cells` need, dependencies first."""
    sources = dict.fromkeys(d for c in cells
                            for d in self.sources[c.source].finetune_dependencies())
    return self.pretrain_order(list(sources))

  def cell_subset_seed(self, cell: Cell) -> int:
    return cell.seed if self.subset_seed is None else self.subset_seed

  def cell_data_seed(self, cell: Cell) -> int:
    return cell.seed if self.data_seed is None else self.data_seed

  def cell_task_name(self, cell: Cell) -> str:
    return self.tasks[cell.task].seqio_name_for_size(cell.size, self.cell_subset_seed(cell))

  # -- runs
  def resolve(self, binding: Binding) -> tuple[str, str]:
    """(name, Gin value text): a reference becomes the quoted checkpoint path of its
    source, or that source's checkpoint-step rule."""
    ref = binding.reference
    if ref is None:
      return binding.name, binding.value
    if ref.what == "step":
      return binding.name, repr(self.sources[ref.source].checkpoint_step)
    return binding.name, repr(self.checkpoint_of(ref.source))

  def _run(self, entry_point: str, gin_files: Sequence[str], bindings: Sequence[Binding],
           model_dir: Optional[str]) -> RunConfig:
    resolved = [self.resolve(b) for b in bindings]
    if model_dir is not None:
      resolved.append(("MODEL_DIR", repr(model_dir)))
    return RunConfig(entry_point, tuple(gin_files), tuple(resolved))

  def pretrain_run(self, source: str) -> RunConfig:
    """The source's pre-training run (into `pretrain_dir(source)`)."""
    s = self.sources[source]
    steps = ((Binding("TRAIN_STEPS", str(s.token_steps[-1])),
              Binding("CheckpointConfig.keep_steps", str(list(s.token_steps))))
             if s.token_steps else ())
    return self._run("train", s.pretrain + self.model_gin_files,
                     self.pretrain_bindings + s.pretrain_bindings + steps,
                     self.pretrain_dir(source))

  def finetune_run(self, cell: Cell) -> RunConfig:
    """The cell's fine-tuning run (into `cell_dir(cell)`)."""
    s, t = self.sources[cell.source], self.tasks[cell.task]
    initial = self.checkpoint_of(s.name) if s.loads_checkpoint else None
    bindings = [Binding("MIXTURE_OR_TASK_NAME", repr(self.cell_task_name(cell))),
                Binding("SEED", str(cell.seed)),
                Binding("DATA_SEED", str(self.cell_data_seed(cell))),
                Binding("INITIAL_CHECKPOINT_PATH", repr(initial)),
                Binding("TRANSFER_MODE", repr(s.transfer_mode))]
    if initial is not None:
      bindings.append(Binding("INITIAL_CHECKPOINT_STEP", repr(s.checkpoint_step)))
    if s.allows_vocab_mismatch:
      bindings.append(Binding("ALLOW_VOCAB_MISMATCH", "True"))
    bindings += self.finetune_bindings + t.bindings + s.finetune_bindings()
    return self._run("train", t.gin_files + self.model_gin_files + s.finetune_gin_files(),
                     bindings,
                     self.cell_dir(cell))

  def evaluate_run(self, cell: Cell) -> RunConfig:
    """The cell's evaluation on the test split, from the run's own config.gin."""
    return self._run("evaluate", [os.path.join(self.cell_dir(cell), "config.gin")],
                     (Binding("evaluate.split", "'test'"),) + self.evaluate_bindings, None)

  def pretrain_argv(self, source: str) -> list[str]:
    return self.pretrain_run(source).argv()

  def finetune_argv(self, cell: Cell) -> list[str]:
    return self.finetune_run(cell).argv()

  def evaluate_argv(self, cell: Cell) -> list[str]:
    return self.evaluate_run(cell).argv()

  def to_json(self) -> dict[str, Any]:
    return {"name": self.name, "study_dir": self.study_dir,
            "sources": {k: v.to_json() for k, v in self.sources.items()},
            "tasks": {k: v.to_json() for k, v in self.tasks.items()},
            "sizes": list(self.sizes), "seeds": list(self.seeds),
            "natural": self.natural, "scratch": self.scratch,
            "subset_seed": self.subset_seed, "data_seed": self.data_seed,
            "comparisons": [list(pair) for pair in self.comparisons],
            "model_gin_files": list(self.model_gin_files),
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
