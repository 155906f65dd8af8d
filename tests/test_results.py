"""Best-checkpoint selection and the per-run result record (no model involved)."""
import json

import pytest

from synthpre_jax.checkpoints import checksums
from synthpre_jax.evaluation import results


def _run_dir(tmp_path, saved, history):
  for step in saved:
    (tmp_path / "checkpoints" / str(step) / "params").mkdir(parents=True)
    checksums.seal(tmp_path / "checkpoints" / str(step))
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


# --- which checkpoint of a pre-training run a fine-tuning reads (the paper's rule) ---------

def test_first_ge_rule_picks_the_first_step_reaching_the_threshold(tmp_path):
  run = _run_dir(tmp_path, [5000, 10000, 15000, 80000],
                 [(5000, 0.95), (10000, 0.991), (15000, 0.995), (80000, 0.999)])
  step, how = results.select_step(run, "first_ge:0.99")
  assert step == 10000 and "first step" in how
  assert results.select_step(run, "latest")[0] == 80000
  assert results.select_step(run, "best")[0] == 80000
  assert results.select_step(run, 15000)[0] == 15000
  assert results.select_step(run, "15000")[0] == 15000


def test_first_ge_rule_falls_back_to_the_best(tmp_path):
  run = _run_dir(tmp_path, [100, 200, 300], [(100, 0.5), (200, 0.7), (300, 0.6)])
  step, how = results.select_step(run, "first_ge:0.99")
  assert step == 200 and "best instead" in how


def test_rule_never_silently_uses_another_step_when_retention_deleted_it(tmp_path):
  run = _run_dir(tmp_path, [300, 400], [(100, 0.5), (200, 0.995), (300, 0.999), (400, 1.0)])
  with pytest.raises(FileNotFoundError, match="chose step 200.*retention deleted it"):
    results.select_step(run, "first_ge:0.99")
  with pytest.raises(FileNotFoundError, match=r"No checkpoint for step 250.*saved steps: \[300, 400\]"):
    results.select_step(run, 250)


def test_a_converted_checkpoint_without_validation_records_resolves_to_its_step(tmp_path):
  (tmp_path / "checkpoints" / "1000000" / "params").mkdir(parents=True)
  checksums.seal(tmp_path / "checkpoints" / "1000000")
  params, step, how = results.resolve_checkpoint(str(tmp_path), "first_ge:0.99")
  assert step == 1000000 and params == tmp_path / "checkpoints" / "1000000" / "params"
  assert "only checkpoint" in how


def test_resolve_checkpoint_takes_a_step_directory_as_given(tmp_path):
  run = _run_dir(tmp_path, [100, 200], [(100, 0.999), (200, 0.5)])
  params, step, _ = results.resolve_checkpoint(str(tmp_path / "checkpoints" / "200"),
                                               "first_ge:0.99")
  assert step == 200 and params.parent.name == "200"
  params, step, _ = results.resolve_checkpoint(run, "first_ge:0.99")
  assert step == 100
  with pytest.raises(ValueError, match="Bad checkpoint step rule 'first:0.9'"):
    results.resolve_checkpoint(run, "first:0.9")


def test_first_reaching_policy_preserves_the_paper_checkpoint():
  from types import SimpleNamespace as NS
  from synthpre_jax import checkpoints
  infos = [NS(step=s, metrics=None if a is None else {"token_accuracy": a}) for s, a in
           [(100, 0.5), (200, 0.991), (300, None), (400, 0.999)]]
  keep = checkpoints.FirstReaching(threshold=0.99).should_preserve(infos, context=None)
  assert keep == [False, True, False, False]


# --- robust reading, and one result record per evaluation setting --------------------------

def test_validation_history_survives_a_cut_last_line_and_names_a_corrupt_file(tmp_path,
                                                                              caplog):
  run = _run_dir(tmp_path, [100, 200], [(100, 0.5), (200, 0.7)])
  path = tmp_path / "validation" / "metrics.jsonl"
  path.write_text(path.read_text() + '{"step": 300, "token_acc')
  assert [r["step"] for r in results.validation_history(run)] == [100, 200]
  assert "incomplete last line 3" in caplog.text
  assert results.best_step(run) == (200, 0.7)
  path.write_text("{\n" + path.read_text())
  with pytest.raises(ValueError, match=rf"{path}, line 1"):
    results.validation_history(run)
  (tmp_path / "results.json").write_text('{"version": 2, "resu')
  with pytest.raises(ValueError, match=rf"{tmp_path / 'results.json'} is not valid JSON"):
    results.read_result(run)


def _write(tmp_path, num_beams, metric, **kw):
  setting = results.setting_name(num_beams=num_beams, alpha=0.6, max_decode_length=20,
                                 default_decode_length=20)
  return results.write_result(
      str(tmp_path), task="scan_simple", split="test", step=300,
      metrics={"exact_match": metric}, selection="best_validation_token_accuracy",
      validation_value=0.61, num_examples=8,
      decoding={"num_beams": num_beams, "alpha": 0.6}, setting=setting, **kw)


def test_results_json_keeps_one_record_per_setting(tmp_path):
  _write(tmp_path, 1, 10.0)
  _write(tmp_path, 4, 12.0)
  doc = json.loads((tmp_path / "results.json").read_text())
  assert sorted(doc["results"]) == ["test_step300.beam4_alpha0.6", "test_step300.greedy"]
  assert doc["latest"] == "test_step300.beam4_alpha0.6"
  assert results.read_result(str(tmp_path))["metrics"] == {"exact_match": 12.0}
  assert results.read_result(str(tmp_path), setting="greedy")["metrics"] == {
      "exact_match": 10.0}
  assert results.read_result(str(tmp_path), setting="test_step300.greedy")["setting"] == (
      "test_step300.greedy")
  with pytest.raises(ValueError, match="no result for setting 'beam2'.*test_step300.greedy"):
    results.read_result(str(tmp_path), setting="beam2")
  _write(tmp_path, 1, 11.0)  # the same setting again replaces its record, and is latest
  doc = json.loads((tmp_path / "results.json").read_text())
  assert len(doc["results"]) == 2 and doc["latest"] == "test_step300.greedy"
  assert results.read_result(str(tmp_path))["metrics"] == {"exact_match": 11.0}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_version_1_results_json_is_read_and_kept(tmp_path):
  old = {"version": 1, "task": "t", "split": "test", "step": 5, "metrics": {"m": 1.0}}
  (tmp_path / "results.json").write_text(json.dumps(old))
  assert results.read_result(str(tmp_path)) == old
  _write(tmp_path, 1, 3.0)
  doc = json.loads((tmp_path / "results.json").read_text())
  assert doc["results"]["test_step5"] == old and doc["latest"] == "test_step300.greedy"


def test_setting_names_carry_decoding_and_sample():
  name = lambda **kw: results.setting_name(**{  # noqa: E731
      "num_beams": 1, "alpha": 0.6, "max_decode_length": 20, "default_decode_length": 20,
      **kw})
  assert name() == "greedy"
  assert name(num_beams=4) == "beam4_alpha0.6"
  assert name(num_beams=4, max_decode_length=148) == "beam4_alpha0.6_len148"
  sample = {"selection": "seeded_uniform", "num_examples": 200, "seed": 3}
  assert name(sample=sample) == "greedy_sample200_seed3"
  assert name(sample={"selection": "first", "num_examples": 5}) == "greedy_first5"
  assert name(sample={"selection": "all", "num_examples": 9}) == "greedy"
  assert results.result_key("test", 12, "greedy") == "test_step12.greedy"
