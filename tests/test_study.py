"""`python -m synthpre_jax.study`: the matrix, its commands, and a small study run end to end
(interrupted, resumed, with a failing source) whose report matches its records."""
import io
import json
import os
import shlex

import pytest

from synthpre_jax.study import report
from synthpre_jax.study import runner as study_lib

FAST = ["TRAIN_STEPS = 4", "BATCH_SIZE = 8", "EVAL_PERIOD = 4", "CHECKPOINT_PERIOD = 4",
        "EVAL_STEPS = 1", "LOG_PERIOD = 4"]


def _write_study(tmp_path, sources: str, sizes="[16, 32]", name="mini.gin") -> str:
  path = tmp_path / name
  path.write_text(f"""
study.sources = {{{sources}}}
study.tasks = {{'scan_simple': {{'gin_files': ['quickstart/finetune_scan.gin'],
                                'metric': 'exact_match', 'train_size': 15055}}}}
study.sizes = {sizes}
study.seeds = [0]
study.pretrain_bindings = {FAST!r}
study.finetune_bindings = {FAST!r}
study.evaluate_bindings = ['evaluate.max_examples = 8', 'evaluate.batch_size = 8']
study.natural = 'set'
""")
  return str(path)


MINI_SOURCES = """
    'scratch': {},
    'set': {'pretrain': ['quickstart/pretrain_set_text.gin']},
    'broken': {'gin_files': ['init/no_such_file.gin']},
"""


def test_matrix_commands_and_dependency_order(tmp_path, capsys):
  gin_file = _write_study(tmp_path, MINI_SOURCES + """
    'set_mm': {'stats_of': 'set', 'grouping': 'whole_model'},
    'lstm_emb': {'gin_files': ['models/lstm_seq2seq_tiny.gin', 'init/lstm_embedding_from_t5.gin'],
                 'bindings': ['EMBEDDING_CHECKPOINT = {checkpoint:set}']},
  """)
  argv = [f"--gin_file={gin_file}", f"--study_dir={tmp_path / 'st'}"]
  assert study_lib.main(argv + ["--print_commands", "--only=set_mm.*.n16.*,lstm_emb.*"]) == 0
  lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
  argvs = [shlex.split(line) for line in lines]
  assert [a[:3] for a in argvs] == [["python", "-m", "synthpre_jax.train"]] + [
      ["python", "-m", "synthpre_jax.train"], ["python", "-m", "synthpre_jax.evaluate"]] * 3
  st = str(tmp_path / "st")
  # The set source is pre-trained first (both selected sources need its checkpoint).
  assert argvs[0][3:] == ["--gin_file=quickstart/pretrain_set_text.gin", *[
      "--gin." + b.replace(" = ", "=") for b in FAST], f"--gin.MODEL_DIR='{st}/pretrain/set'"]
  cell = f"{st}/cells/set_mm/scan_simple/n16/seed0"
  assert argvs[1][3:] == [
      "--gin_file=quickstart/finetune_scan.gin", "--gin_file=init/moment_matching.gin",
      "--gin.MIXTURE_OR_TASK_NAME='scan_simple_train16_seed0'", "--gin.SEED=0",
      "--gin.DATA_SEED=0",
      "--gin.INITIAL_CHECKPOINT_PATH=None", "--gin.TRANSFER_MODE='all_but_embeddings'",
      *["--gin." + b.replace(" = ", "=") for b in FAST],
      f"--gin.INIT_STATS_CHECKPOINT='{st}/pretrain/set'",
      "--gin.INIT_STATS_CHECKPOINT_STEP='first_ge:0.99'", "--gin.GROUPING='whole_model'",
      "--gin.STATS_FN='mean_std'", f"--gin.MODEL_DIR='{cell}'"]
  assert argvs[2][3:] == [f"--gin_file={cell}/config.gin", "--gin.evaluate.split='test'",
                          "--gin.evaluate.max_examples=8", "--gin.evaluate.batch_size=8"]
  lstm = argvs[3][3:]
  assert lstm[:3] == ["--gin_file=quickstart/finetune_scan.gin",
                      "--gin_file=models/lstm_seq2seq_tiny.gin",
                      "--gin_file=init/lstm_embedding_from_t5.gin"]
  assert f"--gin.EMBEDDING_CHECKPOINT='{st}/pretrain/set'" in lstm
  assert "--gin.INITIAL_CHECKPOINT_PATH=None" in lstm  # no own checkpoint to load
  assert "--gin.MIXTURE_OR_TASK_NAME='scan_simple_train32_seed0'" in argvs[5]


@pytest.mark.parametrize("name", ["quickstart.gin", "paper_table1.gin",
                                  "cpu_reproduction.gin", "quickstart_decoder_only.gin"])
def test_shipped_studies_parse_and_print_commands(name, capsys):
  assert study_lib.main([f"--gin_file=gin/studies/{name}", "--print_commands"]) == 0
  out = capsys.readouterr().out
  commands = [shlex.split(line) for line in out.splitlines() if not line.startswith("#")]
  assert commands and all(c[:2] == ["python", "-m"] for c in commands)
  spec = study_lib.load_study([f"gin/studies/{name}"])
  assert sum(c[2] == "synthpre_jax.evaluate" for c in commands) == len(spec.cells())
  if name == "paper_table1.gin":
    assert len(spec.cells()) == 5 * 6
    natural = spec.finetune_argv(study_lib.Cell("natural", "squad", None, 0))
    assert "--gin.INITIAL_CHECKPOINT_PATH='/ckpt/t5_1_0_small'" in natural
    assert "--gin.TRANSFER_MODE='all'" in natural and "--gin_file=finetune/squad.gin" in natural
    assert "--gin.evaluate.num_beams=4" in out
  if name in ("quickstart.gin", "cpu_reproduction.gin"):  # the offline demonstrations
    assert len(spec.seeds) >= 5  # the fewest with which p <= 0.05 can be reached
    assert all(t.metric == "reference_log_likelihood" for t in spec.tasks.values())
    evaluates = [c for c in commands if c[2] == "synthpre_jax.evaluate"]
    assert all("--gin.evaluate.split='test'" in c for c in evaluates)  # the test split
  if name == "quickstart.gin":
    assert len(spec.cells()) == 4 * 5
  if name == "quickstart_decoder_only.gin":  # the quickstart, every run on another model
    quick = study_lib.load_study(["gin/studies/quickstart.gin"])
    assert [c.cell_id for c in spec.cells()] == [c.cell_id for c in quick.cells()]
    model = "models/decoder_only_tiny_text.gin"
    assert spec.model_gin_files == (model,) and quick.model_gin_files == ()
    assert spec.pretrain_run("set").gin_files == (
        quick.pretrain_run("set").gin_files + (model,))
    moments = study_lib.Cell("set_moments", "wordnet_definitions", 1000, 0)
    assert spec.finetune_run(moments).gin_files == (
        "quickstart/finetune_wordnet.gin", model, "init/moment_matching.gin")
    assert spec.to_json()["model_gin_files"] == [model]
    assert all(f"--gin_file={model}" in c for c in commands if c[2] == "synthpre_jax.train")
  if name == "cpu_reproduction.gin":
    assert len(spec.sizes) >= 3 and len(spec.tasks) >= 2 and "wordnet_definitions" in spec.tasks
    sources = {c.source for c in spec.cells()}
    assert sources == {"scratch", "natural", "identity", "set", "lime", "nonsense",
                       "nesting", "set_moments", "set_whole_model_moments",
                       "norm_constant", "lstm", "lstm_natural_emb"}
    assert len(spec.cells()) == 12 * 2 * 3 * 5
    # The report tests the paper's findings head to head.
    assert {("natural", "lime"), ("lime", "set"), ("set", "set_moments"),
            ("set_moments", "scratch"), ("natural", "lstm")} <= set(spec.comparisons)


@pytest.mark.parametrize("sources, message", [
    ("'a': {'pretrain_steps': 3}", "unknown key(s) ['pretrain_steps']"),
    ("'a': {'stats_of': 'b'}", "refers to source 'b'"),
    ("'a': {}, 'b': {'stats_of': 'a'}", "needs the checkpoint of 'a'"),
    ("'a': {'transfer_mode': 'some'}", "transfer_mode must be one of"),
    ("'a': {'bindings': ['TRAIN_STEPS']}", "Bad binding 'TRAIN_STEPS'"),
    ("'a b': {}", "Bad source name 'a b'"),
    ("'a': {'pretrain': ['x.gin'], 'pretrain_bindings': ['X = {checkpoint:b}']},"
     "'b': {'pretrain': ['x.gin'], 'pretrain_bindings': ['X = {checkpoint:a}']}", "cycle"),
])
def test_bad_studies_get_clear_errors(tmp_path, capsys, sources, message):
  gin_file = _write_study(tmp_path, sources)
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x", "--dry_run"]) == 1
  assert message in capsys.readouterr().err


@pytest.mark.parametrize("comparison, message", [
    ("set:nope", "nope is not a source of the study"),
    ("set:set", "a source compared with itself"),
    ("set", "A comparison is 'source_a:source_b'"),
])
def test_bad_comparisons_get_clear_errors(tmp_path, capsys, comparison, message):
  gin_file = _write_study(tmp_path, MINI_SOURCES)
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x", "--dry_run",
                         f"--gin.study.comparisons=['{comparison}']"]) == 1
  assert message in capsys.readouterr().err


def test_comparisons_reach_study_json(tmp_path):
  gin_file = _write_study(tmp_path, MINI_SOURCES)
  spec = study_lib.load_study([gin_file], ["study.comparisons = ['set:scratch']"],
                              study_dir=str(tmp_path / "st"))
  assert spec.comparisons == (("set", "scratch"),)
  assert spec.to_json()["comparisons"] == [["set", "scratch"]]


def test_only_pattern_matching_nothing(tmp_path, capsys):
  gin_file = _write_study(tmp_path, MINI_SOURCES)
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x",
                         "--only=natural.*", "--dry_run"]) == 1
  assert "--only pattern 'natural.*' matches no cell" in capsys.readouterr().err


def test_seed_draws_subset_and_data_order_unless_pinned(tmp_path):
  gin_file = _write_study(tmp_path, "'scratch': {}, 'set': {'pretrain': ['x.gin']}")
  spec = study_lib.load_study([gin_file], ["study.seeds = [0, 3]"],
                              study_dir=str(tmp_path / "st"))
  argv = spec.finetune_argv(study_lib.Cell("set", "scan_simple", 16, 3))
  assert "--gin.MIXTURE_OR_TASK_NAME='scan_simple_train16_seed3'" in argv
  assert "--gin.SEED=3" in argv and "--gin.DATA_SEED=3" in argv
  # A source loading a checkpoint it re-embeds: the paper's step rule, mismatch allowed.
  assert "--gin.INITIAL_CHECKPOINT_STEP='first_ge:0.99'" in argv
  assert "--gin.ALLOW_VOCAB_MISMATCH=True" in argv
  scratch = spec.finetune_argv(study_lib.Cell("scratch", "scan_simple", 16, 3))
  assert not any("ALLOW_VOCAB_MISMATCH" in a or "CHECKPOINT_STEP" in a for a in scratch)
  pinned = study_lib.load_study([gin_file], ["study.seeds = [0, 3]", "study.subset_seed = 7",
                                             "study.data_seed = 5"],
                                study_dir=str(tmp_path / "st"))
  argv = pinned.finetune_argv(study_lib.Cell("set", "scan_simple", 16, 3))
  assert "--gin.MIXTURE_OR_TASK_NAME='scan_simple_train16_seed7'" in argv
  assert "--gin.SEED=3" in argv and "--gin.DATA_SEED=5" in argv


def test_record_names_what_defines_the_cell(tmp_path):
  gin_file = _write_study(tmp_path, "'scratch': {}")
  spec = study_lib.load_study([gin_file], ["study.seeds = [2]"], study_dir=str(tmp_path / "st"))
  cell = spec.cells()[0]
  from synthpre_jax.evaluation import provenance
  os.makedirs(spec.cell_dir(cell))
  provenance.write_run_record(
      spec.cell_dir(cell), task="scan_simple_train16_seed2", seed=2, data_seed=2,
      vocab={"name": "v", "kind": "sentencepiece"},
      initial_checkpoint={"path": "/p", "step": 300, "rule": "first_ge:0.99"},
      transfer_mode="all", allow_vocab_mismatch=False, gin_config_hash="abc")
  record = study_lib.make_record(spec, cell, {"metrics": {"exact_match": 1.0}}, {})
  assert record["subset_seed"] == 2 and record["data_seed"] == 2
  assert record["source_checkpoint"]["step"] == 300 and record["allow_vocab_mismatch"] is False
  assert record["vocabulary"]["name"] == "v" and record["gin_config_hash"] == "abc"
  assert record["code_version"]["source_sha256"]
  assert record["mixture_or_task_name"] == "scan_simple_train16_seed2"


def test_record_metric_from_test_metrics_or_results_json(tmp_path):
  gin_file = _write_study(tmp_path, "'scratch': {}")
  spec = study_lib.load_study([gin_file], study_dir=str(tmp_path / "st"))
  cell = spec.cells()[0]
  result = {"metrics": {"exact_match": 12.5}, "validation_token_accuracy": 0.75}
  record = study_lib.make_record(spec, cell, result, {"train": 2.0, "eval": 1.0})
  assert record["score"] == 12.5 and record["wall_time_s"] == 3.0
  assert record["cell_id"] == "scratch.scan_simple.n16.seed0" and record["size"] == 16
  other = study_lib.dataclasses.replace(
      spec, tasks={"scan_simple": study_lib.dataclasses.replace(
          spec.tasks["scan_simple"], metric="validation_token_accuracy")})
  assert study_lib.make_record(other, cell, result, {})["score"] == 0.75
  bad = study_lib.dataclasses.replace(
      spec, tasks={"scan_simple": study_lib.dataclasses.replace(
          spec.tasks["scan_simple"], metric="rouge1")})
  with pytest.raises(ValueError, match="reports metric 'rouge1'"):
    study_lib.make_record(bad, cell, result, {})


def _records(study_dir) -> dict:
  folder = study_dir / "records"
  return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_study_runs_resumes_and_reports(tmp_path, capsys):
  """2 sources x 2 sizes (+ a broken source): run one cell, leave another half-trained,
  then run the whole study: finished cells are not redone, the half-trained one resumes
  from its checkpoint, the broken cells fail without stopping the others."""
  gin_file = _write_study(tmp_path, MINI_SOURCES)
  study_dir = tmp_path / "study"
  argv = [f"--gin_file={gin_file}", f"--study_dir={study_dir}"]

  # 1. Only one cell.
  assert study_lib.main(argv + ["--only=scratch.scan_simple.n16.seed0", "--no_report"]) == 0
  out = capsys.readouterr().out
  assert "[study] 1/1 done | scratch.scan_simple.n16.seed0: ok, exact_match" in out
  assert "est. remaining" in out
  first = study_dir / "records" / "scratch.scan_simple.n16.seed0.json"
  mtime = first.stat().st_mtime_ns

  # 2. An interrupted cell: its training stopped at step 2 of 4 (as after a kill).
  spec = study_lib.load_study([gin_file], study_dir=str(study_dir))
  half = study_lib.Cell("scratch", "scan_simple", 32, 0)
  assert study_lib.run_step("train", spec.finetune_argv(half) + ["--gin.TRAIN_STEPS=2",
                            "--gin.CHECKPOINT_PERIOD=2"], str(tmp_path / "half.log"),
                            "in_process") == 0

  # 3. The whole study.
  assert study_lib.main(argv) == 1  # the broken source fails
  out = capsys.readouterr().out
  assert "4 already recorded" not in out and "6 cell(s) selected, 1 already recorded" in out
  assert first.stat().st_mtime_ns == mtime  # not redone
  assert "[study] 7/7 done" in out  # 6 cells + the set pre-training
  half_log = (study_dir / "cells/scratch/scan_simple/n32/seed0/study.log").read_text()
  assert "found checkpoint step 2" in half_log and "resuming from it" in half_log
  assert "[study] 2 failed:" in out
  for size in (16, 32):
    assert f"broken.scan_simple.n{size}.seed0 (in train (exit 1), log {study_dir}" in out
  records = _records(study_dir)
  assert sorted(records) == [f"{s}.scan_simple.n{n}.seed0" for s in ("scratch", "set")
                             for n in (16, 32)]
  for r in records.values():
    assert r["metric"] == "exact_match" and r["score"] == r["metrics"]["exact_match"]
    assert r["result"]["num_examples"] == 8 and r["result"]["split"] == "test"
    assert r["train_examples"] == r["size"] and r["wall_time_s"] > 0
  set_record = records["set.scan_simple.n16.seed0"]
  assert set_record["mixture_or_task_name"] == "scan_simple_train16_seed0"
  assert set_record["source_checkpoint"]["step"] == 4  # the set run's only checkpoint
  assert set_record["source_checkpoint"]["rule"] == "first_ge:0.99"
  assert set_record["vocabulary"]["name"].startswith("synthpre_en_8k:")

  # The report printed at the end is built from these records.
  summary = report.Summary(list(records.values()), natural="set")
  table = report.paper_table(summary)
  assert table in out and f"report: {study_dir}/report.md" in out
  for source in ("scratch", "set"):
    row = next(line for line in table.splitlines() if line.startswith(f"| {source} |"))
    score = records[f"{source}.scan_simple.n32.seed0"]["score"]
    assert f"| {report.format_score((score, None, 1))} |" in row
  assert (study_dir / "report_files" / "curves_scan_simple.png").exists()
  assert (study_dir / "report_files" / "param_stats.png").exists()  # the set checkpoint

  # 4. Again: nothing is rerun (only the broken cells are retried, and fail again).
  assert study_lib.main(argv + ["--only=s*", "--no_report"]) == 0
  out = capsys.readouterr().out
  assert "4 cell(s) selected, 4 already recorded; 0 pre-training run(s) to do" in out
  assert first.stat().st_mtime_ns == mtime


def test_wall_time_sums_every_attempt_of_a_cell(tmp_path, monkeypatch):
  """A cell preempted once, then trained and evaluated: its record's times add up all
  three attempts (kept in the cell's study_attempts.json), and say so."""
  import io
  import time

  from synthpre_jax.evaluation import results

  gin_file = _write_study(tmp_path, "'scratch': {}", sizes="[16]")
  spec = study_lib.load_study([gin_file], study_dir=str(tmp_path / "st"))
  cell = spec.cells()[0]
  exits = {"train": [study_lib.PREEMPTED_EXIT_CODE, 0], "evaluate": [0]}

  def fake_run_step(module, argv, log_path, isolation):
    time.sleep(0.2)
    if module == "evaluate":
      results.write_result(spec.cell_dir(cell), task="scan_simple", split="test", step=4,
                           metrics={"exact_match": 50.0}, selection="latest",
                           validation_value=None, num_examples=8, decoding={},
                           setting="greedy")
    return exits[module].pop(0)

  monkeypatch.setattr(study_lib, "run_step", fake_run_step)
  monkeypatch.setattr(study_lib, "enable_compilation_cache", lambda spec: "")
  assert study_lib.run_study(spec, [cell], out=io.StringIO())[0] == (
      study_lib.PREEMPTED_EXIT_CODE)
  assert study_lib.run_study(spec, [cell], out=io.StringIO()) == (0, [])
  record = json.loads(open(spec.record_path(cell)).read())
  attempts = study_lib.read_attempts(spec.cell_dir(cell))
  assert [a["step"] for a in attempts] == ["train", "train", "eval"]
  assert [a["exit_code"] for a in attempts] == [study_lib.PREEMPTED_EXIT_CODE, 0, 0]
  assert record["train_time_s"] >= 0.4 and record["eval_time_s"] >= 0.2
  assert record["wall_time_s"] == pytest.approx(sum(a["seconds"] for a in attempts),
                                                abs=0.002)
  assert record["wall_time_attempts"] == 3 and "all 3" in record["wall_time_note"]


def test_progress_times_pre_training_and_cells_apart():
  out = io.StringIO()
  progress = study_lib.Progress(pretrains=2, cells=10, already_done=1, out=out)
  progress.step("pretrain a", "ok", 300.0, "pretrain")
  assert progress.remaining() is None  # no cell timed yet
  assert "est. remaining unknown until a cell is timed" in out.getvalue()
  progress.step("pretrain b", "ok", 100.0, "pretrain")
  progress.step("c0", "SKIPPED", 0.0, timed=False)  # not in the mean
  progress.step("c1", "ok", 10.0)
  assert progress.remaining() == pytest.approx(7 * 10.0)  # 9 cells to do, 2 done
  assert out.getvalue().splitlines()[-1].startswith("[study] 5/12 done | c1: ok")
  assert out.getvalue().splitlines()[-1].endswith("est. remaining 1m10s")


def test_a_study_dir_refuses_another_model(tmp_path, capsys):
  """Runs made with one model are not reused as the runs of another."""
  args = ["--gin_file=gin/studies/quickstart.gin", f"--study_dir={tmp_path}"]
  spec = study_lib.load_study(["gin/studies/quickstart.gin"], study_dir=str(tmp_path))
  from synthpre_jax.study import records
  records.write_study_json(spec)
  assert study_lib.main(args + ["--dry_run"]) == 0
  model = "--gin_bindings=study.model_gin_files = ['models/decoder_only_tiny_text.gin']"
  assert study_lib.main(args + [model, "--dry_run"]) == 1
  assert "holds runs made with study.model_gin_files = []" in capsys.readouterr().err


def test_code_version_sees_uncommitted_changes(tmp_path):
  """git_dirty is read in the checkout that holds the package (it once looked one
  directory too deep and was always False)."""
  import subprocess
  from synthpre_jax.evaluation import provenance
  assert os.path.isfile(os.path.join(provenance.SOURCE_ROOT, "synthpre_jax", "__init__.py"))
  repo = tmp_path / "repo"
  (repo / "tasks").mkdir(parents=True)
  (repo / "tasks" / "a.py").write_text("x = 1\n")
  (repo / "notes.txt").write_text("outside the sources\n")
  git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
  subprocess.run(git[:3] + ["init", "-q"], check=True)
  subprocess.run(git + ["add", "."], check=True)
  subprocess.run(git + ["commit", "-qm", "init"], check=True)
  commit, dirty = provenance.git_state(str(repo))
  assert len(commit) == 40 and dirty is False
  (repo / "notes.txt").write_text("changed\n")  # not a source directory
  assert provenance.git_state(str(repo))[1] is False
  (repo / "tasks" / "a.py").write_text("x = 2\n")
  assert provenance.git_state(str(repo)) == (commit, True)
  (repo / "tasks" / "a.py").write_text("x = 1\n")
  (repo / "gin").mkdir()
  (repo / "gin" / "new.gin").write_text("A = 1\n")  # untracked counts
  assert provenance.git_state(str(repo))[1] is True
  assert provenance.git_state(str(tmp_path / "nowhere")) == (None, None)


def test_code_version_is_taken_once_per_process(monkeypatch):
  """An in-process study runs the code it imported: a commit made while it runs must not
  appear in its later records."""
  from synthpre_jax.evaluation import provenance
  provenance._process_code_version.cache_clear()
  first = provenance.code_version()
  calls = []
  monkeypatch.setattr(provenance.subprocess, "run",
                      lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError()))
  assert provenance.code_version() == first and not calls
  first["git_commit"] = "changed by the caller"
  assert provenance.code_version()["git_commit"] != "changed by the caller"
