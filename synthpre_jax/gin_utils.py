"""T5X-style Gin command lines: `--gin_file`, `--gin.NAME=value`, `--gin_search_paths`.

Gin files ship inside the package (`synthpre_jax_gin`, built from the repo's `gin/`), so
`--gin_file=quickstart/pretrain_set.gin` works from any directory and in a
non-editable install; a path that exists relative to the working directory wins.
Every command registers the configurables of all entry points before parsing
(`ENTRY_POINT_MODULES`), so a training file may bind `evaluate.*`: the binding is
kept in the run's config.gin and applies when `evaluate` reads that file.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from typing import Optional, Sequence

import gin
from etils import epath

# Macros every run needs, and the file that usually sets each one.
REQUIRED_MACRO_HINTS = {
    "MODEL_DIR": "the command line: --gin.MODEL_DIR=\"'/path/to/run'\"",
    "MIXTURE_OR_TASK_NAME": "the recipe file, e.g. gin/quickstart/pretrain_set.gin",
    "TASK_FEATURE_LENGTHS": "gin/pretrain.gin or gin/finetune.gin",
    "TRAIN_STEPS": "gin/pretrain.gin or gin/finetune.gin",
    "INITIAL_CHECKPOINT_PATH": ("the command line for fine-tuning: "
                                "--gin.INITIAL_CHECKPOINT_PATH=\"'/path/to/pretrain_run'\""),
    "INIT_STATS_CHECKPOINT": ("the command line with gin/init/moment_matching.gin: "
                              "--gin.INIT_STATS_CHECKPOINT=\"'/path/to/pretrain_run'\""),
}

# Modules whose Gin configurables a run's files may bind (none imports TensorFlow).
ENTRY_POINT_MODULES = ("synthpre_jax.train", "synthpre_jax.evaluate")


def _is_main(name: str) -> bool:
  """True if module `name` runs as __main__ (`python -m name` or its file)."""
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  if spec is not None:
    return spec.name == name
  path = getattr(main, "__file__", None)
  found = importlib.util.find_spec(name)
  return bool(path and found and found.origin
              and os.path.abspath(path) == os.path.abspath(found.origin))


def register_entry_points() -> None:
  """Imports `ENTRY_POINT_MODULES`, registering their configurables with Gin; a module
  running as __main__ has registered its own (a second import would register twice)."""
  for name in ENTRY_POINT_MODULES:
    if not _is_main(name):
      importlib.import_module(name)


def packaged_gin_dir() -> str:
  """Directory of the Gin files shipped with the package (or the repo's gin/)."""
  spec = importlib.util.find_spec("synthpre_jax_gin")
  if spec is not None and spec.submodule_search_locations:
    for location in spec.submodule_search_locations:
      if os.path.isdir(location):
        return location
  return str(epath.Path(__file__).parent.parent / "gin")


def parse_args(argv: Sequence[str], description: str) -> tuple[argparse.Namespace, list[str]]:
  """Parses the flags; `--gin.NAME=value` becomes the binding `NAME = value`."""
  bindings, rest = [], []
  for arg in argv:
    if arg.startswith("--gin.") and "=" in arg:
      name, value = arg[len("--gin."):].split("=", 1)
      bindings.append(f"{name} = {value}")
    else:
      rest.append(arg)
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--gin_file", action="append", default=[],
                      help="Gin file(s), in order; relative to the working directory or a "
                           "search path.")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="Extra bindings, e.g. \"TRAIN_STEPS = 100\".")
  parser.add_argument("--gin_search_paths", action="append", default=None,
                      help="Where included Gin files are looked up (default: the "
                           "packaged gin/ directory).")
  args = parser.parse_args(rest)
  return args, bindings + args.gin_bindings


def parse_gin(gin_files: Sequence[str], bindings: Sequence[str],
              search_paths: Optional[Sequence[str]] = None) -> None:
  """Parses files then bindings (every entry point's configurables known), and checks
  that no required macro is left unset. Raises ValueError naming what to set."""
  if not gin_files:
    raise ValueError("No --gin_file given. Example: "
                     "--gin_file=gin/quickstart/pretrain_set.gin --gin.MODEL_DIR=\"'/tmp/run'\"")
  register_entry_points()
  gin.clear_config()  # a process may run several configs (tests, study runner)
  for path in (search_paths or [packaged_gin_dir()]):
    gin.add_config_file_search_path(path)
  gin.parse_config_files_and_bindings(list(gin_files), list(bindings),
                                      finalize_config=False)
  check_required_macros()


def check_required_macros() -> None:
  """Raises ValueError naming each macro still bound to %gin.REQUIRED."""
  unset = re.findall(r"^(\w+) = %gin\.REQUIRED$", gin.config_str(), flags=re.MULTILINE)
  if unset:
    lines = [f"  {name}: usually set by {REQUIRED_MACRO_HINTS.get(name, 'your Gin file')}"
             for name in unset]
    raise ValueError("Required Gin macro(s) not set:\n" + "\n".join(lines))


def write_config(model_dir: str) -> None:
  """Writes the resolved Gin config to MODEL_DIR/config.gin atomically (tmp + rename)."""
  final = epath.Path(model_dir) / "config.gin"
  tmp = epath.Path(model_dir) / f".config.gin.tmp{os.getpid()}"
  tmp.write_text(gin.config_str())
  tmp.replace(final)
