"""A study from its Gin files: the `study` configurable, `load_study` and `select_cells`.

The Gin edge of the study runner: `study.*` bindings (gin/studies/*.gin; keys in
docs/studies.md) become a validated `Study`, with each source that lists `token_steps`
followed by one source `<name>@<step>` per step.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from typing import Any, Mapping, Optional, Sequence

import gin

from synthpre_jax.cli import gin_utils
from synthpre_jax.study.spec import STEP_SEPARATOR, Cell, Source, Study, Task

_TUPLE_FIELDS = ("pretrain", "pretrain_bindings", "gin_files", "bindings", "token_steps")


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
  values = {k: (_tuple(v, f"study.{kind}[{name!r}][{k!r}]") if k in _TUPLE_FIELDS else v)
            for k, v in entry.items()}
  return cls(name=name, **values)


def expand_token_steps(sources: Mapping[str, Source]) -> dict[str, Source]:
  """The sources, each one with `token_steps` followed by one source `<name>@<step>` per
  step: its settings, reading that step of its pre-training run (no run of its own).
  ValueError when such a name is also declared."""
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


def parse_comparison(text: Any) -> tuple[str, str]:
  """'a:b' -> ('a', 'b'): a pair of source names for the report to compare."""
  parts = text.split(":") if isinstance(text, str) else []
  if len(parts) != 2 or not all(p.strip() for p in parts):
    raise ValueError(f"A comparison is 'source_a:source_b' (e.g. 'natural:set'), got "
                     f"{text!r}.")
  return parts[0].strip(), parts[1].strip()


@gin.configurable(module=None)
def study(*, sources: Mapping[str, Any] = gin.REQUIRED,
          tasks: Mapping[str, Any] = gin.REQUIRED,
          sizes: Sequence[Optional[int]] = (None,), seeds: Sequence[int] = (0,),
          study_dir: Optional[str] = None, name: Optional[str] = None,
          pretrain_bindings: Sequence[str] = (), finetune_bindings: Sequence[str] = (),
          evaluate_bindings: Sequence[str] = (), natural: str = "natural",
          scratch: str = "scratch", isolation: str = "in_process",
          subset_seed: Optional[int] = None, data_seed: Optional[int] = None,
          comparisons: Sequence[str] = (), model_gin_files: Sequence[str] = ()) -> Study:
  """Builds the study from its Gin bindings (see gin/studies/*.gin). `comparisons`:
  'a:b' strings, source pairs the report tests head to head. `model_gin_files`: read
  after every training run's own Gin files (swaps the model of the whole study).
  ValueError for a study that is incomplete or inconsistent."""
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
                        _tuple(comparisons, "study.comparisons")),
      model_gin_files=_tuple(model_gin_files, "study.model_gin_files"))


def load_study(gin_files: Sequence[str], bindings: Sequence[str] = (),
               search_paths: Optional[Sequence[str]] = None,
               study_dir: Optional[str] = None) -> Study:
  """Parses a study's Gin files and returns the resolved Study (Gin is cleared after).
  ValueError / FileNotFoundError as `gin_utils.parse_gin` and `study` raise them."""
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
  """The cells matching `only` (comma-separated cell ids or globs); all without it.
  ValueError for a pattern that matches no cell."""
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
