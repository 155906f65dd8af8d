"""The command line: quickstart outputs, kill -9 and resume, and bad input messages."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthpre_jax.cli import train as train_cli
from tests import train_utils as tu

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--gin_file=gin/quickstart/pretrain_set.gin", "--gin.BATCH_SIZE=8",
         "--gin.CHECKPOINT_PERIOD=4", "--gin.EVAL_PERIOD=8", "--gin.EVAL_STEPS=1",
         "--gin.LOG_PERIOD=4"]


def _cmd(model_dir, steps):
  return [sys.executable, "-m", "synthpre_jax.train", *QUICK,
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}"]


def _env():
  env = dict(os.environ)
  env["XLA_FLAGS"] = ""  # one CPU device, like a user's laptop
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _finished_steps(model_dir):
  root = Path(model_dir) / "checkpoints"
  return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


def test_quickstart_writes_outputs_and_survives_kill_9(tmp_path):
  steps = 40
  whole = tmp_path / "whole"
  done = subprocess.run(_cmd(whole, steps), cwd=REPO, env=_env(), capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Restore decisions" in done.stderr and "tokens/s" in done.stderr
  assert "MFU" in done.stderr
  assert "MODEL_DIR" in (whole / "config.gin").read_text()
  assert _finished_steps(whole)[-1] == steps
  train_log = [json.loads(l) for l in (whole / "train" / "metrics.jsonl").read_text().splitlines()]
  assert {"loss", "token_accuracy", "steps_per_second", "tokens_per_second"} <= train_log[-1].keys()
  eval_log = [json.loads(l) for l in (whole / "validation" / "metrics.jsonl").read_text().splitlines()]
  assert eval_log[-1]["step"] == steps and "sequence_accuracy" in eval_log[-1]
  assert list((whole / "train").glob("events.out.tfevents*")), "no TensorBoard summaries"

  killed = tmp_path / "killed"
  proc = subprocess.Popen(_cmd(killed, steps), cwd=REPO, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not _finished_steps(killed) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.02)
  assert proc.poll() is None, "the run ended before it could be killed"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  at_kill = _finished_steps(killed)
  assert at_kill and at_kill[-1] < steps
  resumed = subprocess.run(_cmd(killed, steps), cwd=REPO, env=_env(), capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resuming" in resumed.stderr
  assert tu.same_bits(tu.load_step_params(str(whole), steps),
                      tu.load_step_params(str(killed), steps))


def _main(capsys, *args):
  capsys.readouterr()
  rc = train_cli.main(list(args))
  return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
  path = tmp_path_factory.mktemp("src") / "run"
  tu.run(str(path), steps=2, ckpt_period=2, eval_period=2, log_period=2)
  return path


def test_bad_inputs_get_clear_errors_and_leave_no_checkpoint(tmp_path, capsys, pretrained):
  quick = ["--gin_file=gin/quickstart/pretrain_set.gin", "--gin.TRAIN_STEPS=2"]
  ft = ["--gin_file=gin/quickstart/finetune_identity.gin", "--gin.TRAIN_STEPS=2"]
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    run = tmp_path / "run"
    rc, text = _main(capsys, *quick, "--gin.MIXTURE_OR_TASK_NAME='sett_tiny'",
                     f"--gin.MODEL_DIR='{run}'")
    assert rc == 1 and "Unknown task or mixture 'sett_tiny'" in text
    assert text.index("set_tiny") < text.index("identity_tiny")  # closest first

    rc, text = _main(capsys, *quick)
    assert rc == 1 and "MODEL_DIR: usually set by the command line" in text

    rc, text = _main(capsys, *ft, f"--gin.MODEL_DIR='{run}'")
    assert rc == 1 and "INITIAL_CHECKPOINT_PATH: usually set by" in text

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc, text = _main(capsys, *quick, f"--gin.MODEL_DIR='{blocker / 'run'}'")
    assert rc == 1 and "cannot be written" in text

    rc, text = _main(capsys, *ft, f"--gin.MODEL_DIR='{run}'",
                     f"--gin.INITIAL_CHECKPOINT_PATH='{tmp_path / 'nowhere'}'")
    assert rc == 1 and "does not exist" in text

    rc, text = _main(capsys, *ft, f"--gin.MODEL_DIR='{run}'",
                     f"--gin.INITIAL_CHECKPOINT_PATH='{pretrained}'", "--gin.T5Config.mlp_dim=128")
    assert rc == 1
    assert "'decoder/layers_0/mlp/wi/kernel' has shape (64, 256) in the checkpoint but (64, 128)" in text

    rc, text = _main(capsys, *quick, f"--gin.MODEL_DIR='{run}'",
                     "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 68}")
    assert rc == 1 and "truncat" in text.lower() and "inputs" in text

    rc, text = _main(capsys, *quick, f"--gin.MODEL_DIR='{run}'",
                     "--gin.MIXTURE_OR_TASK_NAME='set'",
                     "--gin.TASK_FEATURE_LENGTHS={'inputs': 224, 'targets': 224}")
    assert rc == 1 and "vocabulary of 32128 ids but the model's vocab_size is 512" in text

    # No finished step and no half-written (temporary) one either.
    leftovers = list((run / "checkpoints").glob("*")) if (run / "checkpoints").exists() else []
    assert leftovers == []
  finally:
    os.chdir(cwd)
