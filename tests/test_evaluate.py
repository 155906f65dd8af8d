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
