"""`python -m synthpre_jax.evaluate`: decode, score, and record the best checkpoint's result;
which examples it scores and the encoder ids it feeds (synthpre_jax/data/examples.py)."""
import json
import subprocess
import sys

import gin
import numpy as np
import pytest

from synthpre_jax.cli import evaluate as evaluate_cli
from synthpre_jax.cli import gin_utils
from synthpre_jax.evaluation import results
from synthpre_jax.cli import train as train_cli
from synthpre_jax.data import examples as examples_lib
from synthpre_jax.data import pipeline

STEPS = 12
RUN = ["--gin_file=gin/quickstart/finetune_scan.gin", "--gin.INITIAL_CHECKPOINT_PATH=None",
       "--gin.BATCH_SIZE=8", f"--gin.TRAIN_STEPS={STEPS}", "--gin.EVAL_PERIOD=4",
       "--gin.CHECKPOINT_PERIOD=4", "--gin.EVAL_STEPS=2", "--gin.LOG_PERIOD=4",
       "--gin.LEARNING_RATE=0.01"]
DECODE_LENGTH = 9
SCAN_TEST_SIZE = 4182


@pytest.fixture(scope="module")
def scan_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("scan_run")
  # An evaluate setting in a training Gin file: kept in config.gin, honoured by evaluate.
  settings = tmp_path_factory.mktemp("gin") / "evaluate_settings.gin"
  settings.write_text(f"evaluate.max_decode_length = {DECODE_LENGTH}\n")
  assert train_cli.main(RUN + [f"--gin_file={settings}",
                               f"--gin.MODEL_DIR='{model_dir}'"]) == 0
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
  sample = {"selection": "seeded_uniform", "num_examples": 12,
            "split_size": SCAN_TEST_SIZE, "seed": 0}
  assert record["sample"] == sample and record["inputs_truncated"] == 0
  assert record["run"]["vocabulary"]["name"].startswith("synthpre_en_8k:")  # run.json
  stem = f"test_step{best}.greedy_len{DECODE_LENGTH}_sample12_seed0"
  assert record["setting"] == stem
  metrics = json.loads((scan_run / "eval" / f"{stem}.metrics.json").read_text())
  assert metrics["sample"] == sample and metrics["decoding"] == record["decoding"]
  # The training file's evaluate.max_decode_length, through config.gin.
  assert f"evaluate.max_decode_length = {DECODE_LENGTH}" in (
      scan_run / "config.gin").read_text()
  assert record["decoding"]["max_decode_length"] == DECODE_LENGTH
  rows = [json.loads(line) for line in
          (scan_run / "eval" / f"{stem}.predictions.jsonl").read_text().splitlines()]
  assert len(rows) == 12 and all(r["target"] and r["input"] for r in rows)
  assert all(len(r["prediction"].split()) <= DECODE_LENGTH for r in rows)
  want = examples_lib.eval_sample("scan_simple", "test", max_examples=12).examples
  assert [r["input"] for r in rows] == [ex["inputs_pretokenized"] for ex in want]
  # The task's metric (raw string equality) agrees with the written predictions.
  matches = 100.0 * sum(r["prediction"] == r["target"] for r in rows) / len(rows)
  assert record["metrics"]["exact_match"] == pytest.approx(matches)
  assert 0.0 <= record["metrics"]["sequence_accuracy"] <= 100.0


def test_evaluate_beam_search_on_a_given_step_keeps_the_run_result(scan_run):
  before = results.read_result(str(scan_run)) if (scan_run / "results.json").exists() else None
  argv = [f"--gin_file={scan_run}/config.gin", "--gin.evaluate.max_examples=8",
          "--gin.evaluate.num_beams=2", "--gin.evaluate.checkpoint_step=8",
          "--gin.evaluate.split='validation'", "--gin.evaluate.write_result=False",
          "--gin.evaluate.max_decode_length=5", "--gin.evaluate.sample_seed=3"]
  assert evaluate_cli.main(argv) == 0
  metrics = json.loads((scan_run / "eval" /
                        "validation_step8.beam2_alpha0.6_len5_sample8_seed3.metrics.json"
                        ).read_text())
  assert metrics["decoding"]["num_beams"] == 2 and metrics["num_examples"] == 8
  assert metrics["decoding"]["max_decode_length"] == 5
  assert metrics["sample"]["seed"] == 3 and metrics["sample"]["num_examples"] == 8
  after = results.read_result(str(scan_run)) if (scan_run / "results.json").exists() else None
  assert before == after


def test_beam_search_after_greedy_keeps_both_results(scan_run):
  """The README's two commands back to back: neither overwrites the other's files or
  record; results.json's latest is the beam search."""
  base = [f"--gin_file={scan_run}/config.gin", "--gin.evaluate.max_examples=4",
          "--gin.evaluate.checkpoint_step=12"]
  assert evaluate_cli.main(base) == 0
  assert evaluate_cli.main(base + ["--gin.evaluate.num_beams=2"]) == 0
  greedy = f"test_step12.greedy_len{DECODE_LENGTH}_sample4_seed0"
  beam = f"test_step12.beam2_alpha0.6_len{DECODE_LENGTH}_sample4_seed0"
  for stem in (greedy, beam):
    for suffix in ("metrics.json", "predictions.jsonl"):
      assert (scan_run / "eval" / f"{stem}.{suffix}").exists(), (stem, suffix)
  doc = json.loads((scan_run / "results.json").read_text())
  assert {greedy, beam} <= set(doc["results"]) and doc["latest"] == beam
  assert results.read_result(str(scan_run))["decoding"]["num_beams"] == 2
  assert results.read_result(str(scan_run), setting=greedy)["decoding"]["num_beams"] == 1
  assert results.read_result(
      str(scan_run), setting=greedy.split(".", 1)[1])["setting"] == greedy


def test_evaluate_bad_input_messages(scan_run, capfd):
  base = [f"--gin_file={scan_run}/config.gin"]
  assert evaluate_cli.main(base + ["--gin.evaluate.checkpoint_step=5"]) == 1
  err = capfd.readouterr().err
  assert "No checkpoint for step 5" in err and "saved steps: [4, 8, 12]" in err
  assert evaluate_cli.main(base + ["--gin.evaluate.split='dev'"]) == 1
  assert "has no split 'dev'" in capfd.readouterr().err
  assert evaluate_cli.main(base + ["--gin.evaluate.num_beams=0"]) == 1
  assert "num_beams must be >= 1" in capfd.readouterr().err
  assert evaluate_cli.main(base + ["--gin.evaluate.max_decode_length=0"]) == 1
  assert "max_decode_length must be an int >= 1" in capfd.readouterr().err
  assert evaluate_cli.main(base + ["--gin.evaluate.max_examples=0"]) == 1
  assert "max_examples must be an int >= 1" in capfd.readouterr().err


def test_evaluate_refuses_another_vocabulary_than_the_checkpoints(scan_run, capfd,
                                                                   monkeypatch):
  from synthpre_jax.data import vocabulary
  monkeypatch.setattr(vocabulary, "task_identity", lambda _: vocabulary.t5_identity())
  assert evaluate_cli.main([f"--gin_file={scan_run}/config.gin",
                            "--gin.evaluate.write_result=False"]) == 1
  err = capfd.readouterr().err
  assert "Vocabulary mismatch" in err and "trained with synthpre_en_8k:" in err
  assert "now uses t5 (sentencepiece" in err and "SYNTHPRE_VOCAB_PATH" in err


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
  stem = f"validation_step12.greedy_len{DECODE_LENGTH}_sample12_seed0"
  assert sorted(x.name for x in two.iterdir()) == [
      f"{stem}.metrics.json", f"{stem}.predictions.jsonl"]
  assert ((two / f"{stem}.predictions.jsonl").read_text()
          == (one / f"{stem}.predictions.jsonl").read_text())
  assert (json.loads((two / f"{stem}.metrics.json").read_text())
          == json.loads((one / f"{stem}.metrics.json").read_text()))


# --- which examples are scored, and what the encoder sees --------------------------------

def _commands(sample):
  return [ex["inputs_pretokenized"] for ex in sample.examples]


def test_max_examples_is_a_seeded_uniform_nested_sample_of_the_split():
  whole = examples_lib.eval_sample("scan_simple", "test", inputs_length=20)
  assert whole.info() == {"selection": "all", "num_examples": SCAN_TEST_SIZE,
                          "split_size": SCAN_TEST_SIZE, "seed": None}
  commands = _commands(whole)
  assert not any("after" in c.split() for c in commands[:200])  # why not the first k
  sample = lambda k, seed=0: examples_lib.eval_sample(  # noqa: E731
      "scan_simple", "test", max_examples=k, sample_seed=seed)
  s200 = sample(200)
  assert s200.info() == {"selection": "seeded_uniform", "num_examples": 200,
                         "split_size": SCAN_TEST_SIZE, "seed": 0}
  # The seeded positions, scored in the split's order.
  assert _commands(s200) == [commands[i] for i in
                             pipeline.sample_indices(SCAN_TEST_SIZE, 200, 0)]
  share = np.mean(["after" in c.split() for c in _commands(s200)])
  whole_share = np.mean(["after" in c.split() for c in commands])
  assert abs(share - whole_share) < 4 * np.sqrt(whole_share * (1 - whole_share) / 200)
  assert _commands(s200) == _commands(sample(200))  # deterministic
  assert set(_commands(sample(100))) < set(_commands(s200))  # nested
  assert set(_commands(sample(100, 1))) < set(_commands(sample(200, 1)))
  assert set(_commands(sample(200, 1))) != set(_commands(s200))
  assert sample(SCAN_TEST_SIZE + 1).info()["selection"] == "all"


def test_an_endless_stream_gives_its_first_examples_and_needs_max_examples():
  sample = examples_lib.eval_sample("identity_tiny", "validation", inputs_length=20,
                                    max_examples=5)
  assert sample.info() == {"selection": "first", "num_examples": 5, "split_size": None,
                           "seed": None}
  task = pipeline.resolve_task("identity_tiny")
  first = list(task.get_dataset(sequence_length={"inputs": 20, "targets": None},
                                split="validation", shuffle=False).take(5).as_numpy_iterator())
  for ex, want in zip(sample.examples, first):
    np.testing.assert_array_equal(ex["inputs"], want["inputs"])
    np.testing.assert_array_equal(ex["targets"], want["targets"])
  with pytest.raises(ValueError, match="endless generated stream.*max_examples"):
    examples_lib.eval_sample("identity_tiny", "validation", inputs_length=20)


def test_the_encoder_sees_the_training_ids_for_truncated_inputs():
  """SCAN commands are up to 18 ids with EOS: at an inputs length of 6 many are cut,
  and both paths cut them with the task's trim-then-EOS."""
  length = 6
  batches = pipeline.get_batches(
      task_name="scan_simple", feature_lengths={"inputs": length, "targets": 50},
      split="validation", global_batch_size=32, seed=None, shuffle=False, num_epochs=1,
      process_index=0, process_count=1, pad_last_batch=True)
  train_rows = np.concatenate([b["encoder_input_tokens"] for b in batches])
  sample = examples_lib.eval_sample("scan_simple", "validation", inputs_length=length)
  eval_rows = evaluate_cli.encoder_tokens(sample.examples, length, len(train_rows))
  np.testing.assert_array_equal(eval_rows, train_rows)
  untrimmed = examples_lib.eval_sample("scan_simple", "validation").examples
  long = [len(ex["inputs"]) > length for ex in untrimmed]
  assert sample.inputs_truncated == sum(long) > 100
  assert all(row[length - 1] == 1 for row, cut in zip(eval_rows, long) if cut)  # EOS kept
  for ex, full in zip(sample.examples, untrimmed):  # targets stay whole
    np.testing.assert_array_equal(ex["targets"], full["targets"])
  with pytest.raises(ValueError, match="exceeds the inputs length"):
    evaluate_cli.encoder_tokens(untrimmed, length, len(untrimmed))


def test_a_training_gin_file_may_bind_evaluate_settings(tmp_path):
  """`python -m synthpre_jax.train` (evaluate not imported by train) parses
  `evaluate.*` in its Gin files and keeps it in config.gin for evaluate."""
  from tests.test_multihost import REPO

  settings = tmp_path / "evaluate_settings.gin"
  settings.write_text("evaluate.max_decode_length = 148\nevaluate.sample_seed = 3\n")
  model_dir = tmp_path / "run"
  argv = [a for a in RUN if "STEPS" not in a and "PERIOD" not in a] + [
      "--gin.TRAIN_STEPS=1", "--gin.EVAL_PERIOD=1", "--gin.CHECKPOINT_PERIOD=1",
      "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=1", f"--gin_file={settings}",
      f"--gin.MODEL_DIR='{model_dir}'"]
  done = subprocess.run([sys.executable, "-m", "synthpre_jax.train"] + argv, cwd=REPO,
                        capture_output=True, text=True, timeout=400)
  assert done.returncode == 0, done.stderr[-3000:]
  gin_utils.parse_gin([str(model_dir / "config.gin")], [])
  try:
    assert gin.query_parameter("evaluate.max_decode_length") == 148
    assert gin.query_parameter("evaluate.sample_seed") == 3
  finally:
    gin.clear_config()


def test_choose_step_takes_every_rule_of_select_step(scan_run):
  assert evaluate_cli.choose_step(str(scan_run), "first_ge:0.0")[0] == 4  # first evaluated
  assert evaluate_cli.choose_step(str(scan_run), "latest")[0] == 12
  with pytest.raises(ValueError, match="Bad checkpoint step rule"):
    evaluate_cli.choose_step(str(scan_run), "first:0.5")


def test_reference_log_likelihood_is_the_models_probability_of_each_target(scan_run):
  """Teacher-forced scores over padded batches equal a direct, unbatched computation:
  the mean over target tokens of log softmax(logits)[target], EOS included."""
  import jax
  from synthpre_jax import partitioning
  from synthpre_jax.models import registry

  gin_utils.parse_gin([str(scan_run / "config.gin")], [])
  try:
    spec = evaluate_cli.run_spec_from_gin()
  finally:
    gin.clear_config()
  mesh = partitioning.make_mesh(spec.mesh_config)
  params = evaluate_cli.load_params(spec, 12, mesh)
  sample = examples_lib.eval_sample("scan_simple", "test", max_examples=5,
                                    inputs_length=spec.feature_lengths["inputs"])
  got = evaluate_cli.reference_scores(spec, params, mesh, sample.examples, batch_size=8)
  model = registry.build_model(spec.model_config)
  host = jax.device_get(params)
  logps, hits = [], []
  for ex in sample.examples:
    batch, _ = evaluate_cli.teacher_forced_batch([ex], spec.feature_lengths["inputs"],
                                                 spec.feature_lengths["targets"], 1)
    logits = model.apply({"params": host}, batch["encoder_input_tokens"],  # no mesh
                         batch["decoder_input_tokens"], None, None, enable_dropout=False)
    logp = np.asarray(jax.nn.log_softmax(np.asarray(logits, np.float64)))[0]
    target = list(ex["targets"])
    assert target[-1] == 1 and len(target) <= spec.feature_lengths["targets"]
    logps += [logp[i, t] for i, t in enumerate(target)]
    hits += [int(np.argmax(logp[i]) == t) for i, t in enumerate(target)]
  assert got["reference_log_likelihood"] == pytest.approx(np.mean(logps), abs=1e-4)
  assert got["reference_token_accuracy"] == pytest.approx(np.mean(hits))
  assert got["reference_targets_trimmed"] == 0
  record = results.read_result(str(scan_run))  # evaluate writes them with the others
  assert record["metrics"]["reference_log_likelihood"] < 0


def test_teacher_forced_batch_trims_targets_like_training():
  ex = {"inputs": np.array([5, 6, 1], np.int32), "targets": np.array([7, 8, 9, 10, 1])}
  batch, trimmed = evaluate_cli.teacher_forced_batch([ex], 4, 3, 2)
  assert trimmed == 1
  np.testing.assert_array_equal(batch["decoder_target_tokens"], [[7, 8, 1], [0, 0, 0]])
  np.testing.assert_array_equal(batch["decoder_input_tokens"], [[0, 7, 8], [0, 0, 0]])
  np.testing.assert_array_equal(batch["encoder_input_tokens"], [[5, 6, 1, 0], [0] * 4])
  no_eos = {"inputs": np.array([5], np.int32), "targets": np.array([7, 8, 9, 10])}
  batch, trimmed = evaluate_cli.teacher_forced_batch([no_eos], 4, 3, 1)
  assert trimmed == 1  # a task without EOS is cut, not given one
  np.testing.assert_array_equal(batch["decoder_target_tokens"], [[7, 8, 9]])


def test_decode_false_scores_only_the_references(scan_run):
  argv = [f"--gin_file={scan_run}/config.gin", "--gin.evaluate.max_examples=6",
          "--gin.evaluate.decode=False", "--gin.evaluate.write_result=False"]
  assert evaluate_cli.main(argv) == 0
  best, _ = results.best_step(str(scan_run))
  stem = f"test_step{best}.teacher_forced_sample6_seed0"
  metrics = json.loads((scan_run / "eval" / f"{stem}.metrics.json").read_text())
  assert set(metrics["metrics"]) == {"reference_log_likelihood", "reference_token_accuracy",
                                     "reference_targets_trimmed"}
  assert metrics["decoding"] == {"teacher_forced": True}
  assert (scan_run / "eval" / f"{stem}.predictions.jsonl").read_text() == ""
