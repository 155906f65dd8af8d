"""The length curriculum: stage switching at the threshold, the stage's own stream,
resuming from a checkpoint, the Gin wiring and its errors, and the stage tasks."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

from synthpre_jax.cli import train as train_cli
from synthpre_jax.training import curriculum
from synthpre_jax.training.hooks import StepInfo
from tasks.synthetic import catalog
from tasks.synthetic.formal_config import FORMAL_TASKS, curriculum_stage_lengths

REPO = pathlib.Path(__file__).resolve().parents[1]
CUR = curriculum.LengthCurriculum(stages=("a_short", "a_mid"), threshold=0.9)


def _stream(task, start):
  """A fake stage stream: batch j of `task` is (task, j)."""
  j = start
  while True:
    yield (task, j)
    j += 1


def _eval(step, acc):
  return StepInfo(step=step, train_steps=100, state=None,
                  eval_metrics={"token_accuracy": acc, "sequence_accuracy": 0.0})


def test_stages_advance_at_the_threshold_and_read_their_own_stream(tmp_path):
  run = curriculum.CurriculumRun(CUR, "a", str(tmp_path), eval_period=2)
  batches = run.train_batches(_stream, 0)
  got = [next(batches) for _ in range(2)]
  run.advance(_eval(2, 0.89))  # below the threshold: stays
  run.advance(StepInfo(step=3, train_steps=100, state=None))  # no evaluation: stays
  got += [next(batches) for _ in range(2)]
  run.advance(_eval(4, 0.9))  # reaches it: the next step is stage 2's first batch
  got += [next(batches) for _ in range(2)]
  assert run.eval_batches(lambda task: task) == "a_mid"
  run.advance(_eval(6, 0.95))
  got.append(next(batches))
  run.advance(_eval(7, 1.0))  # the last stage is kept to the end
  got.append(next(batches))
  assert got == [("a_short", 0), ("a_short", 1), ("a_short", 2), ("a_short", 3),
                 ("a_mid", 0), ("a_mid", 1), ("a", 0), ("a", 1)]
  saved = json.loads((tmp_path / curriculum.STATE_FILE).read_text())
  assert saved["tasks"] == ["a_short", "a_mid", "a"] and saved["starts"] == [0, 4, 6]
  assert curriculum.stage_summary(str(tmp_path)) == saved
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

  # Resuming from checkpoint 5 (stage 2 began at 4; stage 3's start, 6, is later and
  # dropped): the same batches as the uninterrupted run from step 5 on.
  again = curriculum.CurriculumRun(CUR, "a", str(tmp_path), eval_period=2)
  resumed = again.train_batches(_stream, 5)
  assert next(resumed) == ("a_mid", 1) and again.starts == [0, 4]
  again.advance(_eval(6, 0.99))
  assert next(resumed) == ("a", 0)
  # From step 0 the file is ignored (a fresh run).
  fresh = curriculum.CurriculumRun(CUR, "a", str(tmp_path), eval_period=2)
  assert next(fresh.train_batches(_stream, 0)) == ("a_short", 0)


def test_bad_curricula_are_refused(tmp_path):
  with pytest.raises(ValueError, match="stages must list task names"):
    curriculum.LengthCurriculum(stages=())
  with pytest.raises(ValueError, match="threshold must be in"):
    curriculum.LengthCurriculum(stages=("a",), threshold=1.5)
  with pytest.raises(ValueError, match="metric must be"):
    curriculum.LengthCurriculum(stages=("a",), metric="loss")
  with pytest.raises(ValueError, match="the run's own task"):
    curriculum.CurriculumRun(CUR, "a_mid", str(tmp_path), 2)
  (tmp_path / curriculum.STATE_FILE).write_text(json.dumps({"tasks": ["x", "a"],
                                                            "starts": [0, 3]}))
  run = curriculum.CurriculumRun(CUR, "a", str(tmp_path), 2)
  with pytest.raises(ValueError, match="same LengthCurriculum"):
    next(run.train_batches(_stream, 4))


def test_stage_tasks_are_the_task_cut_shorter():
  for task in curriculum_stage_names():
    base, length = task.rsplit("_len", 1)
    for suffix, cfg in FORMAL_TASKS[task].items():
      full = FORMAL_TASKS[base][suffix]
      assert cfg == full.__class__(**{**full.__dict__, "max_len": int(length)})
      assert int(length) in curriculum_stage_lengths(full)
      entry = catalog.get(task + suffix)
      lengths = [len(entry.generate(entry.task, entry.cfg, "train", 0, i)[0])
                 for i in range(200)]
      assert max(lengths) <= entry.max_lengths()["inputs"] - 1
      # Shorter than the full task's bound, and the stage's own stream.
      assert entry.max_lengths()["inputs"] < catalog.get(base + suffix).max_lengths()[
          "inputs"]
      full_entry = catalog.get(base + suffix)
      assert not np.array_equal(
          entry.generate(entry.task, entry.cfg, "train", 0, 0)[0],
          full_entry.generate(full_entry.task, full_entry.cfg, "train", 0, 0)[0])
  assert "shuffle_dyck_len15_tiny" in catalog.synthetic_tasks()


def curriculum_stage_names():
  return [t for t in FORMAL_TASKS if "_len" in t]


def _main(capsys, *args):
  capsys.readouterr()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    rc = train_cli.main(list(args))
  finally:
    os.chdir(cwd)
  return rc, capsys.readouterr().err


def test_gin_file_trains_through_the_stages(tmp_path, capsys):
  base = ["--gin_file=gin/procedural/length_curriculum.gin",
          "--gin_file=models/decoder_only_tiny.gin", "--gin.REQUIRED_TEXT_VOCABULARY=None",
          "--gin.TRAIN_STEPS=6", "--gin.BATCH_SIZE=8", "--gin.EVAL_PERIOD=2",
          "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=2", "--gin.CHECKPOINT_PERIOD=2"]
  model_dir = tmp_path / "run"
  rc, err = _main(capsys, *base, f"--gin.MODEL_DIR='{model_dir}'",
                  "--gin.LengthCurriculum.threshold=0.0")
  assert rc == 0, err[-3000:]
  saved = curriculum.stage_summary(str(model_dir))
  assert saved["tasks"] == ["shuffle_dyck_len15_tiny", "shuffle_dyck_len31_tiny",
                            "shuffle_dyck_tiny"]
  assert saved["starts"] == [0, 2, 4]
  assert "length curriculum: validation token_accuracy" in err
  assert "stage 3/3 (shuffle_dyck_tiny) from the next step" in err
  # Its validation accuracy is per stage: only 'latest' or a step may pick a checkpoint.
  from synthpre_jax.evaluation import results  # pylint: disable=g-import-not-at-top
  for rule in ("best", "first_ge:0.99"):
    with pytest.raises(ValueError, match="length-curriculum run"):
      results.select_step(str(model_dir), rule)
  assert results.select_step(str(model_dir), "latest")[0] == 6
  # A stage of another vocabulary is refused before any training.
  rc, err = _main(capsys, *base, f"--gin.MODEL_DIR='{tmp_path / 'bad'}'",
                  "--gin.LengthCurriculum.stages=['set_tiny']")
  assert rc == 1 and "has another vocabulary" in err
