"""Robust and friendly command lines: misspelled macros, missing files, unknown tasks,
third-party noise, progress, --help of every entry point, nothing left in /tmp."""

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from synthpre_jax.cli import console
from synthpre_jax.cli import gin_utils
from synthpre_jax.cli import train as train_cli

REPO = Path(__file__).resolve().parents[1]
GIN = REPO / "gin"
QUICK = ["--gin_file=gin/quickstart/pretrain_set.gin", "--gin.BATCH_SIZE=8",
         "--gin.CHECKPOINT_PERIOD=2", "--gin.EVAL_PERIOD=2", "--gin.EVAL_STEPS=1",
         "--gin.LOG_PERIOD=1", "--gin.TRAIN_STEPS=2"]
# What a first run printed before (TensorFlow start-up, Orbax, seqio, TF runtime, gin).
NOISE = ("oneDNN custom operations", "cudart_stub", "failed call to cuInit",
         "absl::InitializeLog", "_CHECKPOINT_METADATA", "uncached FunctionDataset",
         "did not fully read the dataset", "Path not found")


@pytest.fixture(autouse=True)
def _restore_root_log_handlers():
  """An entry point's main() points the root handler at this test's captured stderr."""
  root = logging.getLogger()
  handlers, level = root.handlers[:], root.level
  yield
  root.handlers[:] = handlers
  root.setLevel(level)


def _main(capsys, module, *args):
  capsys.readouterr()
  rc = module.main(list(args))
  return rc, capsys.readouterr().err


def _in_repo(monkeypatch):
  monkeypatch.chdir(REPO)
  monkeypatch.delenv(gin_utils.ALLOW_UNUSED_MACROS_ENV, raising=False)


def test_a_misspelled_macro_is_refused_naming_the_closest(monkeypatch, capsys, tmp_path):
  _in_repo(monkeypatch)
  with pytest.raises(ValueError, match=r"TRAIN_STEP \(did you mean TRAIN_STEPS\?\)"):
    gin_utils.parse_gin(["quickstart/pretrain_set.gin"],
                        ["MODEL_DIR = '/x'", "TRAIN_STEP = 20"])
  gin_utils.parse_gin(["quickstart/pretrain_set.gin"], ["MODEL_DIR = '/x'", "EXTRA = 1"],
                      allow_unused_macros=True)
  monkeypatch.setenv(gin_utils.ALLOW_UNUSED_MACROS_ENV, "1")
  gin_utils.parse_gin(["quickstart/pretrain_set.gin"], ["MODEL_DIR = '/x'", "EXTRA = 1"])
  monkeypatch.delenv(gin_utils.ALLOW_UNUSED_MACROS_ENV)

  rc, err = _main(capsys, train_cli, *QUICK, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                  "--gin.TRAIN_STEP=20")
  assert rc == 1 and "did you mean TRAIN_STEPS?" in err and "--allow_unused_macros" in err
  assert not (tmp_path / "run").exists()


def test_unused_macros_reads_references_anywhere():
  text = "A = 1\nB = %A\nC = [%B, {'x': %gin.REQUIRED}]\nD = 2\nf.x = %C\n"
  assert gin_utils.unused_macros(text) == ["D"]


def _shipped_combinations() -> list[list[str]]:
  rel = lambda p: str(p.relative_to(GIN))
  combos = [[rel(p)] for d in ("quickstart", "finetune")
            for p in sorted((GIN / d).glob("*.gin"))]
  combos += [[rel(p), "pretrain.gin"] for p in sorted((GIN / "models").glob("*.gin"))]
  combos += [[rel(p)] for p in sorted((GIN / "models").glob("*.gin"))]
  combos += [["finetune/squad.gin", rel(p)] for p in sorted((GIN / "init").glob("*.gin"))]
  return combos


def test_every_shipped_gin_file_uses_all_its_macros():
  import gin
  from synthpre_jax.study import runner as study  # noqa: F401  (registers `study` for the study files)
  gin_utils.register_entry_points()
  combos = _shipped_combinations() + [
      [str(p.relative_to(GIN))] for p in sorted((GIN / "studies").glob("*.gin"))]
  false_alarms = {}
  for files in combos:
    gin.clear_config()
    gin.add_config_file_search_path(str(GIN))
    gin.parse_config_files_and_bindings([str(GIN / files[0])] + files[1:], [],
                                        finalize_config=False)
    if unused := gin_utils.unused_macros(gin.config_str()):
      false_alarms[" + ".join(files)] = unused
  gin.clear_config()
  assert len(combos) > 30 and not false_alarms


def test_a_missing_gin_file_is_one_line_and_exit_code_1(monkeypatch, capsys):
  _in_repo(monkeypatch)
  rc, err = _main(capsys, train_cli, "--gin_file=quickstart/pretrain_sett.gin",
                  "--gin.MODEL_DIR='/x'")
  lines = [l for l in err.splitlines() if l.strip()]
  assert rc == 1 and "Traceback" not in err
  assert len(lines) == 1 and "'quickstart/pretrain_sett.gin' not found" in lines[0]
  assert gin_utils.packaged_gin_dir() in lines[0] and str(REPO) in lines[0]


def test_an_unknown_task_shows_five_closest_and_the_subset_syntax():
  from synthpre_jax.data import pipeline
  with pytest.raises(ValueError) as e:
    pipeline.resolve_task("sett_tiny")
  text = str(e.value)
  assert "Closest of the" in text and text.index("set_tiny") < text.index("identity_tiny")
  assert len(text.split(": ", 1)[1].split(", ")) == 5 and len(text) < 300
  assert "<task>_train<N>_seed<S>" not in text
  for looks_like_subset in ("squadd_train100_seed1", "set_tiny_train_10"):
    with pytest.raises(ValueError, match=r"<task>_train<N>_seed<S>.*tasks/subsets.py"):
      pipeline.resolve_task(looks_like_subset)


def test_the_study_cli_prints_no_false_gin_alarm(tmp_path, capsys, caplog):
  from synthpre_jax.study import runner as study
  with caplog.at_level(logging.INFO):
    rc = study.main(["--gin_file=studies/quickstart.gin", f"--study_dir={tmp_path}",
                     "--dry_run"])
  out = capsys.readouterr()
  assert rc == 0 and out.out.startswith("pretrain")
  assert not [r for r in caplog.records if "Path not found" in r.getMessage()]
  assert "Path not found" not in out.err


def test_decoding_progress_off_a_terminal_is_one_summary_line(caplog):
  with caplog.at_level(logging.INFO, logger="synthpre_jax"):
    with console.progress(10, desc="decoded", unit="examples") as advance:
      for _ in range(5):
        advance(2)
  lines = [r.getMessage() for r in caplog.records]
  assert len(lines) == 1 and re.match(r"decoded 10/10 examples in [\d.]+ s \(", lines[0])


def test_decoding_progress_on_a_terminal_is_a_bar_with_rate_and_eta(monkeypatch):
  import io

  class Terminal(io.StringIO):
    def isatty(self):
      return True

  terminal = Terminal()
  monkeypatch.setattr(sys, "stderr", terminal)
  with console.progress(10, desc="decoded", unit="examples") as advance:
    for n in (4, 6):
      time.sleep(0.15)  # tqdm redraws at most every 0.1 s
      advance(n)
  bar = terminal.getvalue()
  assert "decoded" in bar and "10/10" in bar and "examples/s" in bar and "<" in bar


def _quiet_env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_CPP_MIN_LOG_LEVEL", console.VERBOSE_ENV)}
  env["XLA_FLAGS"] = ""
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return {**env, **extra}


def _run(args, env, returncode=0):
  done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == returncode, done.stderr[-3000:]
  return done.stdout + done.stderr


def test_a_first_run_prints_no_third_party_noise_unless_asked(tmp_path):
  run = tmp_path / "run"
  text = _run(["synthpre_jax.train", *QUICK, f"--gin.MODEL_DIR='{run}'"], _quiet_env())
  text += _run(["synthpre_jax.evaluate", f"--gin_file={run}/config.gin",
                "--gin.evaluate.split='validation'", "--gin.evaluate.max_examples=12",
                "--gin.evaluate.batch_size=4", "--gin.evaluate.write_result=False"],
               _quiet_env())
  assert "step 2/2" in text and "decoded 12/12 examples in" in text
  assert [n for n in NOISE if n in text] == []
  assert len(re.findall(r"decoded \d+/12", text)) == 1

  # Stops at the unknown task, after TensorFlow was imported (quicker than a run).
  loud = _run(["synthpre_jax.train", *QUICK, f"--gin.MODEL_DIR='{tmp_path / 'loud'}'",
               "--gin.MIXTURE_OR_TASK_NAME='sett_tiny'", "--verbose_third_party"],
              _quiet_env(), returncode=1)
  assert "Unknown task" in loud
  assert "oneDNN custom operations" in loud or "cudart_stub" in loud


ENTRY_POINTS = ["synthpre_jax.train", "synthpre_jax.evaluate", "synthpre_jax.study",
                "synthpre_jax.param_stats", "synthpre_jax.convert", "synthpre_jax.report",
                "tasks.inspect"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_shows_the_command_and_its_settings(module, capsys):
  import importlib
  suffix = ".__main__" if module.endswith(("convert", "study")) else ""
  main = importlib.import_module(module + suffix)
  with pytest.raises(SystemExit) as e:
    main.main(["--help"])
  text = capsys.readouterr().out
  assert e.value.code == 0 and f"python -m {module}" in text
  if module in ("synthpre_jax.train", "synthpre_jax.evaluate", "synthpre_jax.study"):
    assert "--gin.NAME=VALUE" in text and "--allow_unused_macros" in text
    assert "--verbose_third_party" in text
  settings = {"synthpre_jax.train": ["batch_size = 128", "model_dir = REQUIRED",
                                     "--coordinator_address"],
              "synthpre_jax.evaluate": ["num_beams = 1", "checkpoint_step = 'best'"],
              "synthpre_jax.study": ["--dry_run", "seeds = "]}.get(module, [])
  assert [s for s in settings if s not in text] == []


def test_console_scripts_cover_study_and_report():
  setup = (REPO / "setup.py").read_text()
  assert '"synthpre-study=synthpre_jax.study.runner:main"' in setup
  assert '"synthpre-report=synthpre_jax.study.report:main"' in setup
  assert re.search(r'"tqdm==[\d.]+"', setup)


def test_temporary_files_go_to_the_session_folder(tmp_path_factory):
  session = Path(tempfile.gettempdir())
  assert session.parent == tmp_path_factory.getbasetemp()
  assert os.environ["TMPDIR"] == str(session)
  for var in ("JAX_COMPILATION_CACHE_DIR", "SYNTHPRE_KERNEL_CACHE"):
    assert Path(os.environ[var]).parent != Path("/tmp")
  import tensorflow as tf

  def add_one_unless_negative(x):
    return x + 1 if x >= 0 else x  # converted by autograph: a generated module file

  assert tf.function(add_one_unless_negative)(tf.constant(1)).numpy() == 2
  assert list(session.glob("__autograph_generated_file*"))
