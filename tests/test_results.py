"""Best-checkpoint selection and the per-run result record (no model involved)."""
import json

import pytest

from synthpre_jax import results


def _run_dir(tmp_path, saved, history):
  for step in saved:
    (tmp_path / "checkpoints" / str(step) / "params").mkdir(parents=True)
  (tmp_path / "validation").mkdir()
  (tmp_path / "validation" / "metrics.jsonl").write_text(
      "".join(json.dumps({"step": s, "loss": 1.0, "token_accuracy": a}) + "\n"
              for s, a in history))
  return str(tmp_path)


def test_best_step_picks_highest_validation_token_accuracy(tmp_path):
  run = _run_dir(tmp_path, [200, 400, 500], [(100, 0.2), (200, 0.61), (300, 0.5),
                                            (400, 0.6), (500, 0.58)])
  assert results.best_step(run) == (200, 0.61)


def test_best_step_ties_go_to_the_earliest_step(tmp_path):
  run = _run_dir(tmp_path, [100, 200, 300], [(100, 0.4), (200, 0.7), (300, 0.7)])
  assert results.best_step(run)[0] == 200


def test_best_step_skips_steps_without_checkpoint(tmp_path, caplog):
  run = _run_dir(tmp_path, [300, 400], [(100, 0.9), (300, 0.5), (400, 0.6)])
  assert results.best_step(run) == (400, 0.6)
  assert "no checkpoint left" in caplog.text


def test_best_step_errors_say_what_is_missing(tmp_path):
  with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
    results.best_step(str(tmp_path))
  run = _run_dir(tmp_path, [10], [])
  with pytest.raises(FileNotFoundError, match="EVAL_CHECKPOINT_STEP"):
    results.best_step(run)


def test_result_record_round_trips_and_leaves_no_temporary(tmp_path):
  path = results.write_result(
      str(tmp_path), task="scan_simple", split="test", step=300,
      metrics={"exact_match": 12.5}, selection="best_validation_token_accuracy",
      validation_value=0.61, num_examples=8, decoding={"num_beams": 4, "alpha": 0.6})
  record = results.read_result(str(tmp_path))
  assert record["metrics"] == {"exact_match": 12.5}
  assert record["step"] == 300 and record["validation_token_accuracy"] == 0.61
  assert [p.name for p in tmp_path.iterdir()] == [path.name]
  with pytest.raises(FileNotFoundError, match="synthpre_jax.evaluate"):
    results.read_result(str(tmp_path / "elsewhere"))
