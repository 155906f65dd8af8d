"""Run a study: `python -m synthpre_jax.study --gin_file=gin/studies/quickstart.gin`.

    python -m synthpre_jax.study --gin_file=FILE [--study_dir=DIR] [--only=GLOB,...]
        [--print_commands] [--dry_run] [--collect] [--no_report]
        [--isolation=in_process|subprocess]

`run_study` runs the selected cells and the pre-training runs they need, dependencies
first, each run a `RunConfig` built by the `Study`: in this process through
`synthpre_jax.cli.train.run_from_gin` / `synthpre_jax.cli.evaluate.run_from_gin` (its
log lines in the run's study.log), or as `python -m synthpre_jax.<train|evaluate>`
subprocesses. Exit codes: 0 done; 1 a cell or run failed (listed; the others went on) or
bad input; 143 stopped by SIGTERM after a checkpoint (re-run to resume); 130 Ctrl-C.
The manual (sources, layout of the study directory, resuming, in-process vs
subprocess): docs/studies.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import time
from typing import Callable, Iterator, Optional, Sequence, TextIO, Union

import jax

from synthpre_jax import distributed
from synthpre_jax.cli import evaluate as evaluate_cli
from synthpre_jax.cli import gin_utils
from synthpre_jax.cli import train as train_cli
from synthpre_jax.evaluation import results
from synthpre_jax.study import commands
from synthpre_jax.study import records
from synthpre_jax.study import report as report_lib
from synthpre_jax.study.loading import load_study, select_cells, study
from synthpre_jax.study.progress import Progress
from synthpre_jax.study.records import make_record, read_attempts, write_study_json
from synthpre_jax.study.run_config import RunConfig
from synthpre_jax.study.spec import ISOLATIONS, Cell, Source, Study, Task, size_examples

# The public names of the study runner, importable from here: the matrix, the records,
# the progress lines (the imports above) and the running below.
__all__ = ["Cell", "Source", "Study", "Task", "RunConfig", "Progress", "load_study",
           "select_cells", "study", "size_examples", "make_record", "read_attempts",
           "write_study_json", "PREEMPTED_EXIT_CODE", "LOG_FILE", "run_step", "run_study",
           "enable_compilation_cache", "main"]

PREEMPTED_EXIT_CODE = distributed.PREEMPTED_EXIT_CODE
LOG_FILE = "study.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # as the command lines' log lines
# The in-process entry points: (Gin files, 'NAME = value' bindings) -> exit code.
IN_PROCESS: dict[str, Callable[[Sequence[str], Sequence[str]], int]] = {
    "train": train_cli.run_from_gin, "evaluate": evaluate_cli.run_from_gin}


@contextlib.contextmanager
def logging_to(path: str) -> Iterator[None]:
  """For the duration, the 'synthpre_jax' logger's records from INFO up go to `path`
  (appended) and not to this process's own handlers."""
  logger = logging.getLogger("synthpre_jax")
  handler = logging.FileHandler(path)
  handler.setFormatter(logging.Formatter(LOG_FORMAT))
  level, propagate = logger.level, logger.propagate
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  logger.propagate = False
  try:
    yield
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate
    handler.close()


def run_step(module: str, run: Union[RunConfig, Sequence[str]], log_path: str,
             isolation: str) -> int:
  """Runs `python -m synthpre_jax.<module>` (train or evaluate) for `run` (a RunConfig,
  or its command-line arguments) in this process or, with `isolation` 'subprocess', in
  a child, appending its command line and log to `log_path`. Returns its exit code (1
  for an unexpected exception, whose traceback is logged)."""
  if not isinstance(run, RunConfig):
    run = RunConfig.from_argv(module, run)
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, "a") as log:
    log.write(f"\n$ {run.command_line()}\n")
    log.flush()
    if isolation == "subprocess":
      return subprocess.run([sys.executable, "-m", f"synthpre_jax.{module}", *run.argv()],
                            stdout=log, stderr=subprocess.STDOUT, check=False).returncode
  with logging_to(log_path):
    try:
      return int(IN_PROCESS[module](run.gin_files, run.gin_bindings()))
    except Exception:  # pylint: disable=broad-except
      logging.getLogger("synthpre_jax").exception("%s stopped by an unexpected error:",
                                                  module)
      return 1


def _run_attempt(cell_dir: str, what: str, module: str, run: RunConfig, log_path: str,
                 isolation: str) -> int:
  """`run_step`, with its duration recorded as an attempt of the cell even when it
  fails or is interrupted (exit_code None: an exception such as Ctrl-C)."""
  t0, rc = time.time(), None
  try:
    rc = run_step(module, run, log_path, isolation)
    return rc
  finally:
    records.record_attempt(cell_dir, what, time.time() - t0, rc)


def enable_compilation_cache(spec: Study) -> str:
  """Points JAX's persistent compilation cache at `<study_dir>/xla_cache` (unless
  $JAX_COMPILATION_CACHE_DIR is set), for this process and the subprocesses; returns
  the directory in use."""
  path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(spec.study_dir,
                                                                     "xla_cache")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = path  # for subprocesses
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", path)
  return jax.config.jax_compilation_cache_dir


def _pretrain(spec: Study, name: str, blocked: set[str], failed: list[str],
              progress: Progress) -> Optional[int]:
  """One pre-training run; PREEMPTED_EXIT_CODE when SIGTERM stopped it, else None."""
  log_path = os.path.join(spec.pretrain_dir(name), LOG_FILE)
  deps = set(spec.sources[name].pretrain_dependencies()) & blocked
  if deps:
    blocked.add(name)
    failed.append(f"pretrain.{name} (needs failed {', '.join(sorted(deps))})")
    progress.step(f"pretrain {name}", "SKIPPED", 0.0, "pretrain", timed=False)
    return None
  t0 = time.time()
  rc = run_step("train", spec.pretrain_run(name), log_path, spec.isolation)
  seconds = time.time() - t0
  if rc == PREEMPTED_EXIT_CODE:
    progress.out.write(f"[study] stopped (SIGTERM) during pretrain {name}; re-run to "
                       "resume.\n")
    return rc
  if rc != 0:
    blocked.add(name)
    failed.append(f"pretrain.{name} (exit {rc}; log {log_path})")
    progress.step(f"pretrain {name}", f"FAILED, log {log_path}", seconds, "pretrain")
    return None
  records.mark_done(spec.pretrain_dir(name), seconds)
  progress.step(f"pretrain {name}", "ok", seconds, "pretrain")
  return None


def _cell(spec: Study, cell: Cell, blocked: set[str], failed: list[str],
          progress: Progress) -> Optional[int]:
  """One cell: train (unless done), evaluate, write its record; PREEMPTED_EXIT_CODE when
  SIGTERM stopped its training, else None."""
  cell_dir = spec.cell_dir(cell)
  log_path = os.path.join(cell_dir, LOG_FILE)
  deps = set(spec.sources[cell.source].finetune_dependencies()) & blocked
  if deps:
    failed.append(f"{cell.cell_id} (needs failed pretrain {', '.join(sorted(deps))})")
    progress.step(cell.cell_id, "SKIPPED", 0.0, timed=False)
    return None
  status, t0 = "ok", time.time()
  if not records.is_done(cell_dir):
    rc = _run_attempt(cell_dir, "train", "train", spec.finetune_run(cell), log_path,
                      spec.isolation)
    if rc == PREEMPTED_EXIT_CODE:
      progress.out.write(f"[study] stopped (SIGTERM) in cell {cell.cell_id}; re-run to "
                         "resume.\n")
      return rc
    if rc == 0:
      records.mark_done(cell_dir, time.time() - t0)
    else:
      status = f"FAILED in train (exit {rc}), log {log_path}"
  if status == "ok":
    rc = _run_attempt(cell_dir, "eval", "evaluate", spec.evaluate_run(cell), log_path,
                      spec.isolation)
    if rc != 0:
      status = f"FAILED in evaluate (exit {rc}), log {log_path}"
  if status == "ok":
    try:
      record = make_record(spec, cell, results.read_result(cell_dir),
                           records.attempt_times(cell_dir), len(read_attempts(cell_dir)))
      records.write_record(spec, cell, record)
      status = f"ok, {record['metric']} {record['score']:.2f}"
    except (ValueError, FileNotFoundError) as e:
      status = f"FAILED writing the record: {e}"
  if status.startswith("FAILED"):
    failed.append(f"{cell.cell_id} ({status[len('FAILED '):]})")
  progress.step(cell.cell_id, status, time.time() - t0)
  return None


def run_study(spec: Study, cells: Sequence[Cell], out: Optional[TextIO] = None
              ) -> tuple[int, list[str]]:
  """Runs the selected cells (and the pre-training they need). Returns (exit code,
  failed step ids): 0, 1 when something failed, PREEMPTED_EXIT_CODE on SIGTERM."""
  out = out or sys.stdout
  write_study_json(spec)
  enable_compilation_cache(spec)
  todo = [c for c in cells if not os.path.exists(spec.record_path(c))]
  skipped = len(cells) - len(todo)
  pending = [p for p in spec.needed_pretrains(todo)
             if not records.is_done(spec.pretrain_dir(p))]
  out.write(f"[study] {spec.name}: {len(cells)} cell(s) selected, {skipped} already "
            f"recorded; {len(pending)} pre-training run(s) to do; dir "
            f"{spec.study_dir} ({spec.isolation})\n")
  out.flush()
  progress = Progress(len(pending), len(cells), skipped, out)
  failed: list[str] = []
  blocked: set[str] = set()
  for name in pending:
    if _pretrain(spec, name, blocked, failed, progress) == PREEMPTED_EXIT_CODE:
      return PREEMPTED_EXIT_CODE, failed
  for cell in todo:
    if _cell(spec, cell, blocked, failed, progress) == PREEMPTED_EXIT_CODE:
      return PREEMPTED_EXIT_CODE, failed
  return (1 if failed else 0), failed


def _report(spec: Study) -> None:
  try:
    path, table = report_lib.write_report(spec.study_dir)
  except (ValueError, FileNotFoundError) as e:
    print(f"[study] no report: {e}")
    return
  print(f"\n{table}\n[study] report: {path}")


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
    records.check_study_dir(spec)
  except (ValueError, FileNotFoundError, IOError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if flags.print_commands:
    commands.print_commands(spec, cells, gin_args)
    return 0
  if flags.dry_run:
    commands.dry_run(spec, cells)
    return 0
  if flags.collect:
    commands.collect(spec, cells)
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


if __name__ == "__main__":
  sys.exit(main())
