"""A study without running it here: its plain command lines, a dry run, and collecting
the results of runs done elsewhere (a scheduler, TPU VMs) into records."""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence, TextIO

from synthpre_jax.evaluation import results
from synthpre_jax.study import records
from synthpre_jax.study.run_config import shell_quote
from synthpre_jax.study.spec import Cell, Study


def print_commands(spec: Study, cells: Sequence[Cell], gin_args: Sequence[str],
                   out: Optional[TextIO] = None) -> None:
  """The plain train/evaluate command lines, in dependency order, then the command
  that collects their results (`gin_args`: the study's own --gin flags)."""
  out = out or sys.stdout
  out.write(f"# Study {spec.name}: {len(cells)} cell(s) in {spec.study_dir}\n")
  for name in spec.needed_pretrains(cells):
    out.write(f"# pretrain {name}\n{spec.pretrain_run(name).command_line()}\n")
  for cell in cells:
    out.write(f"# cell {cell.cell_id}\n{spec.finetune_run(cell).command_line()}\n"
              f"{spec.evaluate_run(cell).command_line()}\n")
  again = " ".join(["python", "-m", "synthpre_jax.study"] +
                   [shell_quote(a) for a in gin_args] +
                   [shell_quote(f"--study_dir={spec.study_dir}"), "--collect"])
  out.write(f"# then record the results and write the report:\n# {again}\n")


def dry_run(spec: Study, cells: Sequence[Cell], out: Optional[TextIO] = None) -> None:
  """Says what a run would do, without doing it."""
  out = out or sys.stdout
  for name in spec.needed_pretrains(cells):
    state = "done" if records.is_done(spec.pretrain_dir(name)) else "to run"
    out.write(f"pretrain {name:<30} {state:<10} {spec.pretrain_dir(name)}\n")
  for cell in cells:
    cell_dir = spec.cell_dir(cell)
    if os.path.exists(spec.record_path(cell)):
      state = "recorded"
    elif records.is_done(cell_dir):
      state = "evaluate"
    elif results.saved_steps(cell_dir):
      state = "resume"
    else:
      state = "to run"
    out.write(f"cell     {cell.cell_id:<30} {state:<10} {cell_dir}\n")


def collect(spec: Study, cells: Sequence[Cell], out: Optional[TextIO] = None) -> int:
  """Writes records for cells run elsewhere (from their results.json); returns how many
  cells still lack one."""
  out = out or sys.stdout
  records.write_study_json(spec)
  missing = 0
  for cell in cells:
    if os.path.exists(spec.record_path(cell)):
      continue
    try:
      result = results.read_result(spec.cell_dir(cell))
    except FileNotFoundError:
      missing += 1
      continue
    record = records.make_record(spec, cell, result, {})
    records.write_record(spec, cell, record)
    out.write(f"[study] recorded {cell.cell_id}: {record['metric']} {record['score']:.2f}\n")
  out.write(f"[study] {len(cells) - missing}/{len(cells)} cells recorded\n")
  return missing
