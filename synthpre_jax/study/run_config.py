"""Typed run configurations of a study: Gin bindings, checkpoint references, one run.

A study's bindings are parsed once, when the study is loaded, into `Binding`s whose
value is Gin value text or a `CheckpointRef` (the study files' `{checkpoint:NAME}` /
`{checkpoint_step:NAME}`, written as a binding's whole value). A `RunConfig` is one
`train` or `evaluate` run with every reference resolved; it renders as the plain
command line `python -m synthpre_jax.<entry point> --gin_file=... --gin.NAME=VALUE`.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Any, Sequence, Union

ENTRY_POINTS = ("train", "evaluate")
REFERENCE_KINDS = {"checkpoint": "path", "checkpoint_step": "step"}
_BINDING = re.compile(r"^\s*([A-Za-z_][\w./@]*)\s*=\s*(.*?)\s*$", re.DOTALL)
_REFERENCE = re.compile(r"^\{(checkpoint|checkpoint_step):([^}]*)\}$")
_FLAG = re.compile(r"^--gin\.([^=]+)=(.*)$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
  """Source `source`'s checkpoint directory (`what='path'`, bound as a quoted string)
  or its checkpoint-step rule (`what='step'`); resolved when a run is built."""
  source: str
  what: str

  def __post_init__(self):
    if self.what not in REFERENCE_KINDS.values():
      raise ValueError(f"CheckpointRef.what is 'path' or 'step', got {self.what!r}.")

  @property
  def text(self) -> str:
    """As a study file writes it: `{checkpoint:NAME}` or `{checkpoint_step:NAME}`."""
    kind = "checkpoint" if self.what == "path" else "checkpoint_step"
    return f"{{{kind}:{self.source}}}"


GinValue = Union[str, CheckpointRef]


@dataclasses.dataclass(frozen=True)
class Binding:
  """`name = value`: Gin value text, or a reference to another source's checkpoint."""
  name: str
  value: GinValue

  @property
  def text(self) -> str:
    value = self.value.text if isinstance(self.value, CheckpointRef) else self.value
    return f"{self.name} = {value}"

  @property
  def reference(self) -> Union[CheckpointRef, None]:
    return self.value if isinstance(self.value, CheckpointRef) else None


def parse_binding(binding: Any, where: str) -> Binding:
  """'NAME = value' (or a Binding, returned as is) -> Binding; a value that is exactly
  `{checkpoint:SOURCE}` or `{checkpoint_step:SOURCE}` becomes a CheckpointRef. Raises
  ValueError naming `where` for a malformed binding or a reference inside other text."""
  if isinstance(binding, Binding):
    return binding
  m = _BINDING.match(binding) if isinstance(binding, str) else None
  if not m or not m.group(2):
    raise ValueError(f"Bad binding {binding!r} in {where}: write 'NAME = value', e.g. "
                     "'TRAIN_STEPS = 300' or \"GROUPING = 'per_param'\".")
  name, value = m.group(1), m.group(2)
  ref = _REFERENCE.match(value)
  if ref:
    return Binding(name, CheckpointRef(ref.group(2), REFERENCE_KINDS[ref.group(1)]))
  if "{checkpoint" in value:
    raise ValueError(f"Bad binding {binding!r} in {where}: a {{checkpoint:NAME}} or "
                     "{checkpoint_step:NAME} reference must be the whole value, e.g. "
                     "'EMBEDDING_CHECKPOINT = {checkpoint:natural}'.")
  return Binding(name, value)


def parse_bindings(bindings: Sequence[Any], where: str) -> tuple[Binding, ...]:
  return tuple(parse_binding(b, where) for b in bindings)


def shell_quote(arg: str) -> str:
  """Quotes one argument for a POSIX shell, keeping `--gin.NAME="'value'"` readable."""
  if shlex.quote(arg) == arg:
    return arg
  m = re.match(r"^(--[\w.@/]+=)(.*)$", arg, re.DOTALL)
  if m and not re.search(r"[\"$`\\!\n]", m.group(2)):
    return f'{m.group(1)}"{m.group(2)}"'
  return shlex.quote(arg)


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One `train` or `evaluate` run: Gin files, then (name, Gin value text) bindings in
  order (a later binding of a name wins, as in Gin)."""
  entry_point: str
  gin_files: tuple[str, ...]
  bindings: tuple[tuple[str, str], ...]

  def __post_init__(self):
    if self.entry_point not in ENTRY_POINTS:
      raise ValueError(f"RunConfig.entry_point must be one of {ENTRY_POINTS}, got "
                       f"{self.entry_point!r}.")

  def gin_bindings(self) -> list[str]:
    """The bindings as Gin parses them: 'NAME = value'."""
    return [f"{name} = {value}" for name, value in self.bindings]

  def argv(self) -> list[str]:
    """The command-line arguments: `--gin_file=F` then `--gin.NAME=VALUE`."""
    return ([f"--gin_file={f}" for f in self.gin_files] +
            [f"--gin.{name}={value}" for name, value in self.bindings])

  def command_line(self) -> str:
    """`python -m synthpre_jax.<entry point> ...`, shell-quoted."""
    return " ".join(["python", "-m", f"synthpre_jax.{self.entry_point}"] +
                    [shell_quote(a) for a in self.argv()])

  @classmethod
  def from_argv(cls, entry_point: str, argv: Sequence[str]) -> "RunConfig":
    """The run of a command line's arguments (`--gin_file=F`, `--gin.NAME=VALUE`, as
    `argv` writes them). ValueError for any other argument."""
    files, bindings = [], []
    for arg in argv:
      flag = _FLAG.match(arg)
      if arg.startswith("--gin_file="):
        files.append(arg[len("--gin_file="):])
      elif flag:
        bindings.append((flag.group(1), flag.group(2)))
      else:
        raise ValueError(f"A study run takes --gin_file=FILE and --gin.NAME=VALUE "
                         f"arguments, got {arg!r}.")
    return cls(entry_point, tuple(files), tuple(bindings))
