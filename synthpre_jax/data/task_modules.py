"""Imports the modules that register SeqIO tasks, by name (T5X's MIXTURE_OR_TASK_MODULE).

The entry points call `import_task_modules(MIXTURE_OR_TASK_MODULE)` before they resolve a
task: the project's `tasks` package first, then the user's module(s), so a task defined
in a user's file (README, "Adding a task") is registered exactly as the project's are.
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence, Union

# The project's own task package, always imported.
PROJECT_TASKS = "tasks"

ModuleNames = Optional[Union[str, Sequence[str]]]


def module_names(names: ModuleNames) -> list[str]:
  """`names` as a list: None -> [], 'a' or 'a,b' -> ['a'] / ['a', 'b'], a sequence as is."""
  if names is None:
    return []
  if isinstance(names, str):
    return [n.strip() for n in names.split(",") if n.strip()]
  return [str(n) for n in names]


def _is_missing(error: ModuleNotFoundError, name: str) -> bool:
  """True if `error` says `name` (or a parent package of it) itself is not found."""
  missing = error.name or ""
  return missing == name or name.startswith(missing + ".")


def import_task_modules(names: ModuleNames = None) -> list[str]:
  """Imports `tasks`, then each module in `names`; returns the names imported.

  Raises ValueError naming the module and sys.path when a module cannot be found
  (errors raised inside a module that exists propagate unchanged).
  """
  imported = []
  for name in [PROJECT_TASKS] + module_names(names):
    try:
      importlib.import_module(name)
    except ModuleNotFoundError as e:
      if not _is_missing(e, name):
        raise
      raise ValueError(
          f"Cannot import MIXTURE_OR_TASK_MODULE {name!r}: no module of that name on "
          f"sys.path ({', '.join(repr(p) for p in sys.path)}). Put the directory holding "
          f"{name.replace('.', '/')}.py on PYTHONPATH (or run from it), or fix the name "
          f"(--gin.MIXTURE_OR_TASK_MODULE=\"'my_tasks'\").") from e
    imported.append(name)
  return imported
