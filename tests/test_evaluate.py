"""`python -m synthpre_jax.evaluate`: decode, score, and record the best checkpoint's result."""
import json

import pytest

from synthpre_jax import evaluate as evaluate_cli
from synthpre_jax import results
from synthpre_jax import train as train_cli

STEPS = 12
RUN = ["--gin_file=gin/quickstart/finetune_scan.gin", "--gin.INITIAL_CHECKPOINT_PATH=None",
       "--gin.BATCH_SIZE=8", f"--gin.TRAIN_STEPS={STEPS}", "--gin.EVAL_PERIOD=4",
       "--gin.CHECKPOINT_PERIOD=4", "--gin.EVAL_STEPS=2", "--gin.LOG_PERIOD=4",
       "--gin.LEARNING_RATE=0.01"]


@pytest.fixture(scope="module")
def scan_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("scan_run")
  assert train_cli.main(RUN + [f"--gin.MODEL_DIR='{model_dir}'"]) == 0
  return model_dir


def test_evaluate_scores_the_best_validation_checkpoint(scan_run):
  argv = [f"--gin_file={scan_run}/config.gin", "--gin.evaluate.max_examples=12",
          "--gin.evaluate.batch_size=8"]
  assert evaluate_cli.main(argv) == 0
  record = results.read_result(str(scan_run))
  best, value = results.best_step(str(scan_run))
  assert record["step"] == best and record["validation_token_accuracy"] == value
  assert record["selection"] == "best_validation_token_accuracy"
  assert record["task"] == "scan_simple" and record["split"] == "test"
  assert record["num_examples"] == 12 and record["decoding"]["num_beams"] == 1
  rows = [json.loads(line) for line in
          (scan_run / "eval" / f"test_step{best}.predictions.jsonl").read_text().splitlines()]
  assert len(rows) == 12 and all(r["target"] and r["input"] for r in rows)
  # The task's metric (raw string equality) agrees with the written predictions.
  matches = 100.0 * sum(r["prediction"] == r["target"] for r in rows) / len(rows)
  assert record["metrics"]["exact_match"] == pytest.approx(matches)
  assert 0.0 <= record["metrics"]["sequence_accuracy"] <= 100.0


def test_evaluate_beam_search_on_a_given_step_keeps_the_run_result(scan_run):
  before = results.read_result(str(scan_run)) if (scan_run / "results.json").exists() else None
  argv = [f"--gin_file={scan_run}/config.gin", "--gin.evaluate.max_examples=8",
          "--gin.evaluate.num_beams=2", "--gin.evaluate.checkpoint_step=8",
          "--gin.evaluate.split='validation'", "--gin.evaluate.write_result=False"]
  assert evaluate_cli.main(argv) == 0
  metrics = json.loads((scan_run / "eval" / "validation_step8.metrics.json").read_text())
  assert metrics["decoding"]["num_beams"] == 2 and metrics["num_examples"] == 8
  after = results.read_result(str(scan_run)) if (scan_run / "results.json").exists() else None
  assert before == after


def test_evaluate_bad_input_messages(scan_run, capfd):
  base = [f"--gin_file={scan_run}/config.gin"]
  assert evaluate_cli.main(base + ["--gin.evaluate.checkpoint_step=5"]) == 1
  err = capfd.readouterr().err
  assert "No checkpoint for step 5" in err and "saved steps: [4, 8, 12]" in err
  assert evaluate_cli.main(base + ["--gin.evaluate.split='dev'"]) == 1
  assert "has no split 'dev'" in capfd.readouterr().err
  assert evaluate_cli.main(base + ["--gin.evaluate.num_beams=0"]) == 1
  assert "num_beams must be >= 1" in capfd.readouterr().err


def test_two_processes_evaluate_like_one(scan_run, tmp_path):
  """Two processes x 4 CPU devices (the run's data mesh spans both) decode and score
  exactly as one process with 8; process 0 alone writes the files."""
  import shutil
  import subprocess
  import sys

  from tests.test_multihost import REPO, free_port, worker_env

  flags = ["--gin.evaluate.max_examples=12", "--gin.evaluate.batch_size=8",
           "--gin.evaluate.split='validation'", "--gin.evaluate.checkpoint_step=12",
           "--gin.evaluate.write_result=False"]
  pair_dir = tmp_path / "pair"
  shutil.copytree(scan_run, pair_dir, ignore=shutil.ignore_patterns("eval"))
  assert evaluate_cli.main([f"--gin_file={scan_run}/config.gin"] + flags) == 0
  port = free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "synthpre_jax.evaluate", f"--coordinator_address=localhost:{port}",
       "--num_processes=2", f"--process_id={i}", "--initialization_timeout=120",
       f"--gin_file={pair_dir}/config.gin", f"--gin.MODEL_DIR='{pair_dir}'"] + flags,
      cwd=REPO, env=worker_env(4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  try:
    errs = [p.communicate(timeout=400)[1] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for i, (p, err) in enumerate(zip(procs, errs)):
    assert p.returncode == 0, f"process {i} failed:\n{err[-4000:]}"
  assert "[process 0/2]" in errs[0] and "decoded 12/12 examples" in errs[0]
  one, two = scan_run / "eval", pair_dir / "eval"
  assert sorted(x.name for x in two.iterdir()) == [
      "validation_step12.metrics.json", "validation_step12.predictions.jsonl"]
  assert ((two / "validation_step12.predictions.jsonl").read_text()
          == (one / "validation_step12.predictions.jsonl").read_text())
  assert (json.loads((two / "validation_step12.metrics.json").read_text())
          == json.loads((one / "validation_step12.metrics.json").read_text()))
