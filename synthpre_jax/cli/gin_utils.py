"""T5X-style Gin command lines: `--gin_file`, `--gin.NAME=value`, `--gin_search_paths`.

Gin files ship inside the package (`synthpre_jax_gin`, built from the repo's `gin/`), so
`--gin_file=quickstart/pretrain_set.gin` works from any directory and in a
non-editable install; a path that exists relative to the working directory wins.
Every command registers the configurables of all entry points before parsing
(`ENTRY_POINT_MODULES`), so a training file may bind `evaluate.*`: the binding is
kept in the run's config.gin and applies when `evaluate` reads that file. A macro that
no binding uses is refused as a misspelling (`check_unused_macros`) unless
--allow_unused_macros or SYNTHPRE_ALLOW_UNUSED_MACROS=1.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import inspect
import os
import re
import sys
import textwrap
import time
from typing import Any, Callable, Optional, Sequence

import gin
from etils import epath

from synthpre_jax.cli import console
from synthpre_jax.data import task_modules

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

# Set (to 1) by --allow_unused_macros; runs started from this process inherit it.
ALLOW_UNUSED_MACROS_ENV = "SYNTHPRE_ALLOW_UNUSED_MACROS"
GIN_USAGE = (
    "Gin: --gin_file=FILE (repeatable, in order) then --gin.NAME=VALUE bindings, e.g.\n"
    "  --gin.TRAIN_STEPS=100 --gin.MODEL_DIR=\"'/tmp/run'\"  (strings in inner quotes)\n"
    "NAME is a macro of the files (TRAIN_STEPS) or CONFIGURABLE.PARAMETER\n"
    "(train.batch_size). A macro that nothing uses is refused (a typo) unless\n"
    "--allow_unused_macros.")

# Modules whose Gin configurables a run's files may bind (none imports TensorFlow).
ENTRY_POINT_MODULES = ("synthpre_jax.cli.train", "synthpre_jax.cli.evaluate")


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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """The epilog's line breaks kept; a flag's default shown unless its help gives it or
  it is empty (None, False, [])."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
      return text
    return text + " (default: %(default)s)"


def settings_help(fn: Callable[..., Any]) -> str:
  """`fn`'s keyword parameters with their defaults, one per line (for --help)."""
  name = getattr(fn, "__name__", "fn")
  lines = [f"Settings of `{name}` (--gin.{name}.NAME=VALUE, or the macro a file binds "
           "to it):"]
  for param in inspect.signature(fn).parameters.values():
    if param.name == "devices" or param.kind is not param.KEYWORD_ONLY:
      continue
    default = "REQUIRED" if param.default is gin.REQUIRED else repr(param.default)
    lines.append(f"  {param.name} = {default}")
  return "\n".join(lines)


def parse_args(argv: Sequence[str], description: str, *, prog: Optional[str] = None,
               configurable: Optional[Callable[..., Any]] = None,
               parents: Sequence[argparse.ArgumentParser] = ()
               ) -> tuple[argparse.Namespace, list[str]]:
  """Parses the flags; `--gin.NAME=value` becomes the binding `NAME = value`. `--help`
  shows `prog`, the flags of `parents` (parsed by the caller), the Gin usage and
  `configurable`'s settings. Applies --verbose_third_party (`console.configure`) and
  --allow_unused_macros (sets SYNTHPRE_ALLOW_UNUSED_MACROS=1)."""
  bindings, rest = [], []
  for arg in argv:
    if arg.startswith("--gin.") and "=" in arg:
      name, value = arg[len("--gin."):].split("=", 1)
      bindings.append(f"{name} = {value}")
    else:
      rest.append(arg)
  epilog = GIN_USAGE + ("\n\n" + settings_help(configurable) if configurable else "")
  parser = argparse.ArgumentParser(prog=prog, description=textwrap.fill(description, 88),
                                   epilog=epilog, formatter_class=_HelpFormatter,
                                   parents=list(parents))
  parser.add_argument("--gin_file", action="append", default=[],
                      help="Gin file(s), in order; relative to the working directory or a "
                           "search path.")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="Extra bindings, e.g. \"TRAIN_STEPS = 100\".")
  parser.add_argument("--gin_search_paths", action="append", default=None,
                      help="Where included Gin files are looked up (default: the "
                           "packaged gin/ directory).")
  parser.add_argument("--mixture_or_task_module", default=None,
                      help="Module(s) registering tasks, imported before the task is "
                           "resolved ('a,b' for several): the binding "
                           "MIXTURE_OR_TASK_MODULE = '<value>', as T5X's.")
  parser.add_argument("--allow_unused_macros", action="store_true",
                      help="Accept macros that no binding uses (default: refused as "
                           f"typos; also {ALLOW_UNUSED_MACROS_ENV}=1).")
  parser.add_argument(console.VERBOSE_FLAG, action="store_true",
                      help="Show the third-party messages hidden by default (TensorFlow "
                           "start-up lines, Orbax/seqio/gin notices); also "
                           f"{console.VERBOSE_ENV}=1.")
  args = parser.parse_args(rest)
  if args.allow_unused_macros:
    os.environ[ALLOW_UNUSED_MACROS_ENV] = "1"
  console.configure(args.verbose_third_party)
  if args.mixture_or_task_module:
    bindings.append(f"MIXTURE_OR_TASK_MODULE = {args.mixture_or_task_module!r}")
  return args, bindings + args.gin_bindings


def parse_gin(gin_files: Sequence[str], bindings: Sequence[str],
              search_paths: Optional[Sequence[str]] = None,
              allow_unused_macros: Optional[bool] = None) -> None:
  """Parses files then bindings (every entry point's configurables known), and checks
  that no required macro is left unset and every macro is used (`allow_unused_macros`,
  default $SYNTHPRE_ALLOW_UNUSED_MACROS, skips that). Raises ValueError naming what to
  set, FileNotFoundError naming a missing file and where it was looked for."""
  if not gin_files:
    raise ValueError("No --gin_file given. Example: "
                     "--gin_file=gin/quickstart/pretrain_set.gin --gin.MODEL_DIR=\"'/tmp/run'\"")
  register_entry_points()
  task_modules.import_task_modules()  # the project's tasks: their configurables too
  gin.clear_config()  # a process may run several configs (tests, study runner)
  for path in (search_paths or [packaged_gin_dir()]):
    gin.add_config_file_search_path(path)
  try:
    gin.parse_config_files_and_bindings(list(gin_files), list(bindings),
                                        finalize_config=False)
  except OSError as e:
    raise _missing_file_error(e, search_paths or [packaged_gin_dir()]) from None
  check_required_macros()
  if allow_unused_macros is None:
    allow_unused_macros = os.environ.get(ALLOW_UNUSED_MACROS_ENV, "") not in ("", "0")
  if not allow_unused_macros:
    check_unused_macros()


def _missing_file_error(error: OSError, search_paths: Sequence[str]) -> OSError:
  """A one-line FileNotFoundError for gin's "Unable to open file" (else `error`)."""
  m = re.match(r"Unable to open file: (.*)\. Searched config paths:", str(error))
  if not m:
    return error
  return FileNotFoundError(
      f"Gin file {m.group(1)!r} not found in the working directory ({os.getcwd()}) or "
      f"the search paths {list(search_paths)} (add one with --gin_search_paths=DIR).")


def unused_macros(config_text: str) -> list[str]:
  """Macros bound in `config_text` (a `gin.config_str()`) that no binding references as
  %NAME, in order."""
  defined = re.findall(r"^([A-Za-z_]\w*) = ", config_text, flags=re.MULTILINE)
  used = set(re.findall(r"%([A-Za-z_][\w.]*)", config_text))
  return [name for name in dict.fromkeys(defined) if name not in used]


def check_unused_macros() -> None:
  """Raises ValueError naming each bound macro that nothing uses (usually a typo) and
  the closest used macro."""
  text = gin.config_str()
  unused = unused_macros(text)
  if not unused:
    return
  known = sorted(set(re.findall(r"%([A-Za-z_]\w*)", text)) - {"gin"})
  lines = []
  for name in unused:
    close = difflib.get_close_matches(name, known, n=1)
    lines.append(f"  {name}" + (f" (did you mean {close[0]}?)" if close else ""))
  raise ValueError("Gin macro(s) bound but used by no binding (a misspelling?):\n"
                   + "\n".join(lines) + f"\nTo keep them anyway: --allow_unused_macros "
                   f"(or {ALLOW_UNUSED_MACROS_ENV}=1).")


def forward_legacy_data_dir(path: Optional[str]) -> None:
  """Binds `downstream_data_dir.path` (tasks/data_dirs.py) to `path` when a config.gin
  written before that binding existed sets it as `train.downstream_data_dir`."""
  if path not in (None, ""):
    gin.bind_parameter("downstream_data_dir.path", path)


def check_required_macros() -> None:
  """Raises ValueError naming each macro still bound to %gin.REQUIRED."""
  unset = re.findall(r"^(\w+) = %gin\.REQUIRED$", gin.config_str(), flags=re.MULTILINE)
  if unset:
    lines = [f"  {name}: usually set by {REQUIRED_MACRO_HINTS.get(name, 'your Gin file')}"
             for name in unset]
    raise ValueError("Required Gin macro(s) not set:\n" + "\n".join(lines))


def write_config(model_dir: str) -> None:
  """Writes the resolved Gin config to MODEL_DIR/config.gin atomically (tmp + rename).
  An earlier config.gin with other settings is kept as config.<UTC timestamp>.gin."""
  final = epath.Path(model_dir) / "config.gin"
  text = gin.config_str()
  earlier = final.read_text() if final.exists() else text
  if earlier != text:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = epath.Path(model_dir) / f"config.{stamp}.gin"
    i = 1
    while kept.exists():
      kept, i = epath.Path(model_dir) / f"config.{stamp}-{i}.gin", i + 1
    kept_tmp = kept.parent / f".{kept.name}.tmp{os.getpid()}"
    kept_tmp.write_text(earlier)
    kept_tmp.replace(kept)
  tmp = epath.Path(model_dir) / f".config.gin.tmp{os.getpid()}"
  tmp.write_text(text)
  tmp.replace(final)
