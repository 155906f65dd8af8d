"""`tasks.inspect` on any registered task, and its TensorFlow-free start."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tasks import inspect as inspect_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_does_not_import_tensorflow():
  t0 = time.perf_counter()
  res = subprocess.run([sys.executable, "-X", "importtime", "-m", "tasks.inspect",
                        "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
  seconds = time.perf_counter() - t0
  assert res.returncode == 0 and "--mixture_or_task_module" in res.stdout
  imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()
              if line.startswith("import time:")]
  assert "numpy" in imported  # the -X importtime listing is there
  assert not [m for m in imported if m.startswith(("tensorflow", "seqio"))]
  print(f"python -m tasks.inspect --help: {seconds:.2f} s")


def test_synthetic_examples_do_not_import_tensorflow():
  res = subprocess.run([sys.executable, "-c",
                        "import runpy, sys; sys.argv = ['x', 'set_tiny', '--num', '1']; "
                        "sys.orig_argv = [sys.executable, '-m', 'tasks.inspect']; "
                        "sys.argv[0] = '-m'; import tasks; sys.argv[0] = 'x'; "
                        "runpy.run_module('tasks.inspect', run_name='__main__')"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert res.returncode == 0, res.stderr
  assert "== set_tiny: 1 example(s)" in res.stdout


def test_scan_examples_with_decoded_text(capsys):
  assert inspect_cli.main(["scan_simple", "--num", "2"]) == 0
  out = capsys.readouterr().out
  assert "== scan_simple: 2 example(s) of split 'train'" in out
  assert "SentencePieceVocabulary" in out
  assert "  inputs  text: 'walk twice'" in out and "  targets text: 'walk walk'" in out


def test_scan_stats_and_subset(capsys):
  assert inspect_cli.main(["scan_simple_train100_seed0", "--stats", "--num", "50"]) == 0
  out = capsys.readouterr().out
  assert re.search(r"^inputs length \(EOS excluded\): min \d+, mean [\d.]+, max \d+$", out,
                   re.M)
  assert "duplicate inputs: 0.00% (0 of 50" in out


def test_natural_task_decodes_sentinels(capsys):
  assert inspect_cli.main(["corpus_span_corruption", "--num", "1",
                           "--split", "validation"]) == 0
  out = capsys.readouterr().out
  assert "  targets text: '<extra_id_0>" in out


def test_downstream_text_file_task(tmp_path, capsys):
  from tasks.downstream import text_files
  folder = tmp_path / "mtop"
  folder.mkdir()
  for name in ("train.tsv", "valid.tsv", "test.tsv"):
    (folder / name).write_text("set an alarm\t[IN:CREATE_ALARM ]\nwake me up\t[IN:X ]\n")
  try:
    assert inspect_cli.main(["mtop", "--num", "2", "--split", "test",
                             "--downstream_data_dir", str(tmp_path)]) == 0
  finally:
    text_files.set_data_dir(None)
  out = capsys.readouterr().out
  assert "  inputs  text: 'set an alarm'" in out and "  inputs  text: 'wake me up'" in out


def test_unknown_task_lists_registered_tasks(capsys):
  assert inspect_cli.main(["scan_simpel", "--num", "1"]) == 2
  err = capsys.readouterr().err
  assert "'scan_simpel'" in err and "scan_simple" in err  # pipeline.resolve_task's list
  assert inspect_cli.main(["scan_simple", "--config", "tiny"]) == 2
  assert "--config applies to synthetic tasks only" in capsys.readouterr().err
