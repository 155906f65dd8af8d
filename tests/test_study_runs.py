"""A study's typed runs: checkpoint references parsed when the study is loaded, runs that
render as the plain command lines, in-process runs logging to their own file, and the
same record from an in-process and a subprocess run."""
import json
import logging
import shlex
import shutil

import pytest

from synthpre_jax.study import runner as study_lib
from synthpre_jax.study.run_config import Binding, CheckpointRef, RunConfig, parse_binding

FAST = ["TRAIN_STEPS = 4", "BATCH_SIZE = 8", "EVAL_PERIOD = 4", "CHECKPOINT_PERIOD = 4",
        "EVAL_STEPS = 1", "LOG_PERIOD = 4"]


def _study(tmp_path, sources: str, extra: str = "") -> str:
  path = tmp_path / "runs.gin"
  path.write_text(f"""
study.sources = {{{sources}}}
study.tasks = {{'scan_simple': {{'gin_files': ['quickstart/finetune_scan.gin'],
                                'metric': 'exact_match', 'train_size': 15055}}}}
study.sizes = [None]
study.seeds = [0]
study.pretrain_bindings = {FAST!r}
study.finetune_bindings = {FAST!r}
study.evaluate_bindings = ['evaluate.max_examples = 8', 'evaluate.batch_size = 8']
study.natural = 'set'
{extra}
""")
  return str(path)


SOURCES = """
    'scratch': {},
    'set': {'pretrain': ['quickstart/pretrain_set_text.gin']},
    'emb': {'bindings': ['EMBEDDING_CHECKPOINT = {checkpoint:set}',
                         'EMBEDDING_CHECKPOINT_STEP = {checkpoint_step:set}']},
"""


def test_references_are_typed_when_loaded_and_resolved_in_the_run(tmp_path):
  spec = study_lib.load_study([_study(tmp_path, SOURCES)], study_dir=str(tmp_path / "st"))
  assert spec.sources["emb"].bindings == (
      Binding("EMBEDDING_CHECKPOINT", CheckpointRef("set", "path")),
      Binding("EMBEDDING_CHECKPOINT_STEP", CheckpointRef("set", "step")))
  assert spec.sources["emb"].finetune_dependencies() == ["set"]
  run = spec.finetune_run(study_lib.Cell("emb", "scan_simple", None, 0))
  bindings = dict(run.bindings)
  assert bindings["EMBEDDING_CHECKPOINT"] == repr(str(tmp_path / "st" / "pretrain" / "set"))
  assert bindings["EMBEDDING_CHECKPOINT_STEP"] == "'first_ge:0.99'"
  assert run.gin_bindings()[-1] == (
      f"MODEL_DIR = {str(tmp_path / 'st' / 'cells' / 'emb' / 'scan_simple' / 'nall' / 'seed0')!r}")
  # study.json keeps the bindings as the study file wrote them.
  assert spec.to_json()["sources"]["emb"]["bindings"] == [
      "EMBEDDING_CHECKPOINT = {checkpoint:set}",
      "EMBEDDING_CHECKPOINT_STEP = {checkpoint_step:set}"]


@pytest.mark.parametrize("binding, message", [
    ("X = [{checkpoint:set}]", "must be the whole value"),
    ("X", "Bad binding 'X'"),
])
def test_bad_bindings_are_refused_when_parsed(binding, message):
  with pytest.raises(ValueError, match=message):
    parse_binding(binding, "a test")


def test_a_study_level_reference_is_checked_when_loaded(tmp_path, capsys):
  gin_file = _study(tmp_path, SOURCES,
                    "study.evaluate_bindings = ['X = {checkpoint:nope}']")
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x", "--dry_run"]) == 1
  assert "refers to source 'nope'" in capsys.readouterr().err


def test_a_run_is_its_command_line(tmp_path):
  spec = study_lib.load_study([_study(tmp_path, SOURCES)], study_dir=str(tmp_path / "st"))
  for run in (spec.pretrain_run("set"),
              spec.finetune_run(study_lib.Cell("emb", "scan_simple", None, 0)),
              spec.evaluate_run(study_lib.Cell("emb", "scan_simple", None, 0))):
    words = shlex.split(run.command_line())
    assert words[:3] == ["python", "-m", f"synthpre_jax.{run.entry_point}"]
    assert words[3:] == run.argv()
    assert RunConfig.from_argv(run.entry_point, run.argv()) == run
  with pytest.raises(ValueError, match="--gin_file=FILE and --gin.NAME=VALUE"):
    RunConfig.from_argv("train", ["--study_dir=x"])


def test_an_in_process_run_logs_to_its_file_only(tmp_path, monkeypatch, caplog):
  """The run's `synthpre_jax` log lines and an unexpected error's traceback go to its
  study.log (after its command line); the logger is left as it was."""
  def failing_train(gin_files, bindings):
    logging.getLogger("synthpre_jax.something").info("training %s with %s", gin_files,
                                                     bindings)
    raise RuntimeError("boom")

  monkeypatch.setitem(study_lib.IN_PROCESS, "train", failing_train)
  logger = logging.getLogger("synthpre_jax")
  before = (list(logger.handlers), logger.level, logger.propagate)
  log_path = tmp_path / "run" / "study.log"
  run = RunConfig("train", ("a.gin",), (("TRAIN_STEPS", "4"),))
  with caplog.at_level(logging.INFO):
    assert study_lib.run_step("train", run, str(log_path), "in_process") == 1
  text = log_path.read_text()
  assert text.startswith("\n$ python -m synthpre_jax.train --gin_file=a.gin --gin.TRAIN_STEPS=4\n")
  assert "INFO training ('a.gin',) with ['TRAIN_STEPS = 4']" in text
  assert "Traceback" in text and "RuntimeError: boom" in text
  assert not caplog.records  # nothing reached this process's own handlers
  assert (list(logger.handlers), logger.level, logger.propagate) == before


VOLATILE = ("written_at", "wall_time_s", "train_time_s", "eval_time_s", "result",
            "code_version")


@pytest.mark.slow  # ~60 s on the 2-core CPU machine: one cell trained twice
def test_in_process_and_subprocess_runs_give_the_same_record(tmp_path):
  """The same cell in the same study directory, run in this process and then, its files
  removed, as subprocesses: the records agree on everything but times and code version."""
  gin_file = _study(tmp_path, "'scratch': {}")
  st = tmp_path / "st"
  got = {}
  for isolation in ("in_process", "subprocess"):
    for folder in ("cells", "records"):
      shutil.rmtree(st / folder, ignore_errors=True)
    assert study_lib.main([f"--gin_file={gin_file}", f"--study_dir={st}", "--no_report",
                           f"--isolation={isolation}"]) == 0
    got[isolation] = json.loads(
        (st / "records" / "scratch.scan_simple.nall.seed0.json").read_text())
  a, b = ({k: v for k, v in r.items() if k not in VOLATILE} for r in got.values())
  assert a == b and a["gin_config_hash"]
  for key in ("metrics", "step", "split", "num_examples"):
    assert got["in_process"]["result"][key] == got["subprocess"]["result"][key]
