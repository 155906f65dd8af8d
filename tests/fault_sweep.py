"""Fault sweep: damages a real run's checkpoints and checks what the command lines do.

    python tests/fault_sweep.py [--work_dir /tmp/sweep] [--keep]

Trains a 1-layer model on the quickstart Set task through `python -m
synthpre_jax.cli.train` with a *relative* MODEL_DIR, then, each on a copy of that run:
a flipped bit, a truncated file, an empty step directory and a missing opt_state/ in
the newest step (each must be named, moved to checkpoints/corrupt/ and the run resumed
from the previous step), a resume with another model (refused with a clear message,
config.gin untouched), a relative INITIAL_CHECKPOINT_PATH, and relative paths for
`param_stats` and `convert to-hf`. Prints one line per scenario; exit status 0 when all
pass. Run by tests/test_checkpoint_integrity.py::test_fault_sweep (slow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
BASE_FLAGS = ["--gin_file=quickstart/pretrain_set.gin", "--gin.BATCH_SIZE=8",
              "--gin.CHECKPOINT_PERIOD=4", "--gin.EVAL_PERIOD=1000", "--gin.EVAL_STEPS=1",
              "--gin.LOG_PERIOD=1000", "--gin.T5Config.num_encoder_layers=1",
              "--gin.T5Config.num_decoder_layers=1"]


def run_module(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
  """`python -m module args` in `cwd` (the repository importable), output captured."""
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=1200)


def train(run: str, steps: int, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
  return run_module("synthpre_jax.cli.train", [*BASE_FLAGS, f"--gin.MODEL_DIR='{run}'",
                                           f"--gin.TRAIN_STEPS={steps}", *extra], cwd)


def biggest_file(step_dir: Path, part: str = "params") -> Path:
  return max((p for p in (step_dir / part).rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)


def flip_bit(step_dir: Path) -> str:
  path = biggest_file(step_dir)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x01
  path.write_bytes(bytes(data))
  return str(path.relative_to(step_dir))


def truncate(step_dir: Path) -> str:
  path = biggest_file(step_dir)
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  return str(path.relative_to(step_dir))


def empty(step_dir: Path) -> str:
  shutil.rmtree(step_dir)
  step_dir.mkdir()
  return "INCOMPLETE"


def no_opt_state(step_dir: Path) -> str:
  shutil.rmtree(step_dir / "opt_state")
  return "opt_state"


def check_fallback(work: Path, name: str, damage: Callable[[Path], str]) -> str:
  """Damages step 8 of a copy of the base run, resumes to step 10; '' when all holds."""
  run = work / name
  shutil.copytree(work / "base", run)
  named = damage(run / "checkpoints" / "8")
  done = train(name, 10, work)
  moved = list((run / "checkpoints" / "corrupt").glob("8-*"))
  problems = [p for p, bad in [
      (f"rc {done.returncode}", done.returncode != 0),
      (f"{named!r} not named", named not in done.stderr),
      ("no fallback to step 4", "found checkpoint step 4" not in done.stderr),
      ("step 8 not moved to checkpoints/corrupt/", len(moved) != 1),
      ("step 10 not saved", not (run / "checkpoints" / "10" / "checksums.json").exists())]
      if bad]
  return "; ".join(problems) + (f"\n{done.stderr[-3000:]}" if problems else "")


def check_changed_model(work: Path) -> str:
  run = work / "changed"
  shutil.copytree(work / "base", run)
  before = (run / "config.gin").read_text()
  done = train("changed", 10, work, "--gin.T5Config.emb_dim=32")
  problems = [p for p, bad in [
      (f"rc {done.returncode} (want 1)", done.returncode != 1),
      ("no 'does not match the model'", "does not match the model" not in done.stderr),
      (f"{len(done.stderr.splitlines())} lines of stderr", len(done.stderr.splitlines()) > 40),
      ("config.gin changed", (run / "config.gin").read_text() != before)] if bad]
  return "; ".join(problems) + (f"\n{done.stderr[-3000:]}" if problems else "")


def check_relative_readers(work: Path) -> str:
  finetune = train("finetune", 2, work, "--gin.INITIAL_CHECKPOINT_PATH='base'")
  stats = run_module("synthpre_jax.init.param_stats",
                     ["base", "--output_dir", "stats", "--labels", "b"], work)
  to_hf = run_module("synthpre_jax.convert", ["to-hf", "base", "hf"], work)
  problems = [f"{what}: rc {p.returncode}\n{p.stderr[-2000:]}" for what, p in
              [("INITIAL_CHECKPOINT_PATH='base'", finetune), ("param_stats base", stats),
               ("convert to-hf base hf", to_hf)] if p.returncode != 0]
  return "; ".join(problems)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--work_dir", default=None, help="default: a temporary directory")
  parser.add_argument("--keep", action="store_true", help="keep the work directory")
  args = parser.parse_args(argv)
  work = Path(args.work_dir or tempfile.mkdtemp(prefix="fault_sweep_")).resolve()
  work.mkdir(parents=True, exist_ok=True)
  base = train("base", 8, work)  # relative MODEL_DIR, resolved against `work`
  results = {"relative MODEL_DIR trains and saves": (
      "" if base.returncode == 0 and (work / "base" / "checkpoints" / "8" /
                                      "checksums.json").exists()
      else f"rc {base.returncode}\n{base.stderr[-3000:]}")}
  if results["relative MODEL_DIR trains and saves"]:
    print(f"FAIL base run: {results['relative MODEL_DIR trains and saves']}")
    return 1
  for name, damage in [("bit_flip", flip_bit), ("truncated", truncate),
                       ("empty_step", empty), ("no_opt_state", no_opt_state)]:
    results[f"{name} in the newest step: named, moved aside, resumed"] = check_fallback(
        work, name, damage)
  results["changed model: refused clearly, config.gin kept"] = check_changed_model(work)
  results["relative INITIAL_CHECKPOINT_PATH, param_stats, convert"] = (
      check_relative_readers(work))
  for name, problem in results.items():
    print(f"{'ok  ' if not problem else 'FAIL'} {name}{': ' + problem if problem else ''}")
  if not args.keep and not args.work_dir:
    shutil.rmtree(work, ignore_errors=True)
  return 0 if not any(results.values()) else 1


if __name__ == "__main__":
  sys.exit(main())
