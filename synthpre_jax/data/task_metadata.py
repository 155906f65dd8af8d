"""What a task module tells the library about its tasks beyond SeqIO's Task.

Task modules (the project's `tasks/`, or a user's MIXTURE_OR_TASK_MODULE) call these
when they register a task; the library reads them and never imports a task module.

- `set_max_lengths(name, lengths)`: the longest `inputs` / `targets` (EOS included) a
  task can produce, so that `pipeline.check_feature_lengths` refuses lengths SeqIO
  would silently truncate to. A Mapping, so it may be measured lazily on first read.
- `add_name_resolver(resolve, hint)`: names registered on demand (for example the
  training subsets `<task>_train<N>_seed<S>`): `resolve(name)` registers `name` and
  returns True if it can; `hint(name)` returns a sentence for an unknown name, or None;
  `base(name)` the registered name it was derived from (used to suggest close names).
- `set_id_limit(name, limit)`: a task that emits ids up to `limit - 1`, beyond its
  vocabulary's size (ids placed in a model's spare embedding rows, as
  tasks/procedural_in_text.py does), so `pipeline.check_vocabulary` needs that many rows.
- `add_length_warnings(warnings)`: a check of examples longer than the feature lengths
  (for example the downstream tasks' overlong counts), run before training.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Sequence

_MAX_LENGTHS: dict[str, Mapping[str, int]] = {}


@dataclasses.dataclass(frozen=True)
class NameResolver:
  """Registers task names on demand (`resolve`) and explains unknown ones (`hint`,
  `base`)."""
  resolve: Callable[[str], bool]
  hint: Optional[Callable[[str], Optional[str]]] = None
  base: Optional[Callable[[str], Optional[str]]] = None


_RESOLVERS: list[NameResolver] = []
_ID_LIMITS: dict[str, int] = {}


def set_max_lengths(task_name: str, lengths: Mapping[str, int]) -> None:
  """Records task `task_name`'s maximum feature lengths (EOS included)."""
  _MAX_LENGTHS[task_name] = lengths


def max_lengths(task_name: str) -> Optional[Mapping[str, int]]:
  """The maximum lengths recorded for `task_name`, or None when it has none."""
  return _MAX_LENGTHS.get(task_name)


def has_max_lengths(task_name: str) -> bool:
  """True when `task_name` recorded maximum lengths (without measuring lazy ones)."""
  return task_name in _MAX_LENGTHS


def set_id_limit(task_name: str, limit: int) -> None:
  """Records that task (or mixture) `task_name` emits ids below `limit`, which may
  exceed its vocabulary's size."""
  _ID_LIMITS[task_name] = int(limit)


def id_limit(task_name: str) -> Optional[int]:
  """The id limit recorded for `task_name`, or None (its vocabulary's size holds)."""
  return _ID_LIMITS.get(task_name)


def add_name_resolver(resolve: Callable[[str], bool],
                      hint: Optional[Callable[[str], Optional[str]]] = None,
                      base: Optional[Callable[[str], Optional[str]]] = None) -> None:
  """Adds an on-demand name resolver (once per `resolve` function)."""
  if not any(r.resolve is resolve for r in _RESOLVERS):
    _RESOLVERS.append(NameResolver(resolve, hint, base))


def resolve_on_demand(name: str) -> bool:
  """True when a resolver registered `name` just now (the first that could)."""
  return any(r.resolve(name) for r in _RESOLVERS)


def base_name(name: str) -> str:
  """The name `name` was derived from, per the first resolver that knows; else `name`."""
  for r in _RESOLVERS:
    found = r.base(name) if r.base is not None else None
    if found:
      return found
  return name


def unknown_name_hints(name: str) -> list[str]:
  """The resolvers' sentences about the unknown name `name`."""
  hints = [r.hint(name) for r in _RESOLVERS if r.hint is not None]
  return [h for h in hints if h]


# warnings(task_name, feature_lengths) -> sentences about examples longer than them.
LengthWarnings = Callable[[str, Mapping[str, int]], Sequence[str]]
_LENGTH_WARNINGS: list[LengthWarnings] = []


def add_length_warnings(warnings: LengthWarnings) -> None:
  """Adds a check the training entry point runs once per run (once per function):
  `warnings(task_name, feature_lengths)` returns sentences about the task's examples
  longer than `feature_lengths` (training truncates them), [] for tasks it ignores."""
  if not any(w is warnings for w in _LENGTH_WARNINGS):
    _LENGTH_WARNINGS.append(warnings)


def length_warnings(task_name: str, feature_lengths: Mapping[str, int]) -> list[str]:
  """Every registered check's sentences about `task_name` at `feature_lengths`."""
  return [w for check in _LENGTH_WARNINGS for w in check(task_name, feature_lengths)]
