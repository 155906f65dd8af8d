"""Verified checkpoints: checksums recorded once a save finished, checked before every
read; damaged or incomplete steps moved aside and the previous one resumed; a changed
model refused before anything is written; relative paths; a failed save stops at once."""

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import recovery as checkpoint_recovery
from synthpre_jax.checkpoints import saver as checkpoint_saver
from synthpre_jax.checkpoints import checksums
from synthpre_jax import partitioning
from synthpre_jax.cli import gin_utils
from synthpre_jax.training import optimizers
from synthpre_jax.evaluation import results
from synthpre_jax.init import moment_matching as mm
from synthpre_jax.init import param_stats
from synthpre_jax.cli import train as train_cli
from synthpre_jax.training import train_state as state_lib
from synthpre_jax.convert import __main__ as convert_cli
from synthpre_jax.models import registry
from tests import train_utils as tu

CHANGED = dataclasses.replace(tu.TINY, emb_dim=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
  """A TINY run with checkpoints at steps 4 and 8, trained with a *relative* MODEL_DIR
  (today that fails at the first save)."""
  base = tmp_path_factory.mktemp("integrity")
  cwd = os.getcwd()
  os.chdir(base)
  try:
    tu.run("run", steps=8)
  finally:
    os.chdir(cwd)
  return base / "run"


def _copy(trained: Path, tmp_path: Path) -> Path:
  dest = tmp_path / "run"
  shutil.copytree(trained, dest)
  return dest


def _biggest_file(step_dir: Path, part: str = "params") -> Path:
  return max((p for p in (step_dir / part).rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)


def _flip_one_bit(path: Path) -> None:
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x04
  path.write_bytes(bytes(data))


def _abstract_tiny(model=tu.TINY):
  mesh = partitioning.make_mesh(partitioning.MeshConfig())
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig(schedule="constant",
                                                            learning_rate=3e-3))
  shapes, shardings = state_lib.abstract_state(registry.build_model(model), tx, mesh)
  return shapes, shardings


def _small_sealed_step(tmp_path: Path) -> Path:
  step_dir = tmp_path / "checkpoints" / "5"
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(step_dir / "params", {"w": np.arange(4096, dtype=np.float32)})
  ckpt.wait_until_finished()
  checksums.seal(step_dir)
  return step_dir


def test_a_flipped_bit_a_truncated_and_a_deleted_file_are_named(tmp_path):
  step_dir = _small_sealed_step(tmp_path)
  checksums.verify(step_dir)
  target = _biggest_file(step_dir)
  rel = str(target.relative_to(step_dir))
  _flip_one_bit(target)
  with pytest.raises(checksums.CorruptCheckpointError, match=f"{rel}: contents changed"):
    mm.read_params(checkpoints.resolve_params_path(str(tmp_path)))  # today: read silently
  checksums.verify(step_dir, mode="sizes")  # the cheap mode sees sizes only
  target.write_bytes(target.read_bytes()[:10])
  with pytest.raises(checksums.CorruptCheckpointError, match=f"{rel}: 10 bytes instead"):
    checksums.verify(step_dir, mode="sizes")
  target.unlink()
  with pytest.raises(checksums.CorruptCheckpointError, match=f"{rel}: file missing"):
    checksums.verify(step_dir)


def test_metadata_is_verified_before_shapes_are_read(tmp_path):
  step_dir = _small_sealed_step(tmp_path)
  assert checkpoints.params_metadata(step_dir / "params") == {"w": (4096,)}
  _flip_one_bit(step_dir / "params" / "_METADATA")
  with pytest.raises(checksums.CorruptCheckpointError,
                     match="params/_METADATA: contents changed"):
    checkpoints.params_metadata(step_dir / "params")


def test_one_definition_of_a_complete_checkpoint(trained, tmp_path):
  run = _copy(trained, tmp_path)
  root = run / "checkpoints"
  (root / "12").mkdir()                                     # empty: a save never finished
  shutil.copytree(root / "8", root / "10")
  (root / "10" / checksums.CHECKSUMS_FILE).unlink()          # not sealed yet
  assert checkpoints.complete_steps(root) == results.saved_steps(str(run)) == [4, 8]
  assert checkpoints.resolve_params_path(str(run)) == root / "8" / "params"
  # The trainer tidies up (seals 10, which Orbax had finished; moves 12 aside), after
  # which Orbax's manager and results.saved_steps agree.
  shapes, shardings = _abstract_tiny()
  state, lines = checkpoint_recovery.restore_newest(root, shapes, shardings)
  assert int(state.step) == 10
  assert any("step 12: INCOMPLETE" in line and "moved to" in line for line in lines)
  manager = checkpoints.make_manager(str(run), checkpoints.CheckpointConfig())
  assert manager.latest_step() == results.saved_steps(str(run))[-1] == 10
  assert [p.name.split("-")[0] for p in (root / "corrupt").iterdir()] == ["12"]


@pytest.mark.parametrize("damage", ["truncate", "no_opt_state", "empty", "bad_checksums"])
def test_a_damaged_newest_step_is_moved_aside_and_the_previous_one_resumed(
    trained, tmp_path, damage):
  run = _copy(trained, tmp_path)
  root = run / "checkpoints"
  bad = _biggest_file(root / "8")
  if damage == "truncate":
    bad.write_bytes(bad.read_bytes()[:7])
  elif damage == "no_opt_state":
    shutil.rmtree(root / "8" / "opt_state")
  elif damage == "empty":
    shutil.rmtree(root / "8")
    (root / "8").mkdir()
  else:
    (root / "8" / checksums.CHECKSUMS_FILE).write_text("{not json")
    shutil.rmtree(root / "8" / "opt_state")
  shapes, shardings = _abstract_tiny()
  state, lines = checkpoint_recovery.restore_newest(root, shapes, shardings)
  log = "\n".join(lines)
  assert int(state.step) == 4
  assert "step 8:" in log and "moved to" in log and str(root / "corrupt" / "8-") in log
  if damage == "truncate":
    assert str(bad.relative_to(root / "8")) in log and "7 bytes instead" in log
  if damage == "no_opt_state":
    assert "opt_state/" in log and "file missing" in log
  [moved] = list((root / "corrupt").iterdir())
  assert moved.name.startswith("8-") and not (root / "8").exists()  # kept, not deleted
  assert results.saved_steps(str(run)) == [4]


def test_resume_after_a_bit_flip_continues_from_the_previous_step(trained, tmp_path,
                                                                  caplog):
  run = _copy(trained, tmp_path)
  bad = _biggest_file(run / "checkpoints" / "8")
  _flip_one_bit(bad)
  caplog.set_level(logging.INFO, logger="synthpre_jax")
  resumed = tu.run(str(run), steps=9)
  log = "\n".join(resumed.restore_log)
  assert "step 8: DAMAGED" in log and bad.name in log and "contents changed" in log
  assert "found checkpoint step 4" in log
  assert results.saved_steps(str(run))[-1] == 9
  assert int(resumed.state.step) == 9
  assert "step 8: DAMAGED" in caplog.text


def test_resume_into_a_changed_model_is_refused_before_anything_is_written(trained,
                                                                           tmp_path):
  run = _copy(trained, tmp_path)
  before = sorted(p.name for p in (run / "checkpoints").iterdir())
  with pytest.raises(ValueError, match=r"checkpoints/8 does not match the model: "
                     r"parameter '.*' has shape \(64,\) in the checkpoint but \(32,\)"):
    tu.run(str(run), steps=9, model=CHANGED)
  assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_cli_resume_into_a_changed_model_keeps_config_gin(trained, tmp_path, capsys):
  run = _copy(trained, tmp_path)
  (run / "config.gin").write_text("# the run's config\n")
  argv = ["--gin_file=gin/quickstart/pretrain_set.gin", "--gin.BATCH_SIZE=8",
          f"--gin.MODEL_DIR='{run}'", "--gin.TRAIN_STEPS=9", "--gin.EVAL_STEPS=1",
          "--gin.T5Config.num_encoder_layers=1", "--gin.T5Config.num_decoder_layers=1"]
  assert train_cli.main(argv) == 1
  err = capsys.readouterr().err
  assert "does not match the model" in err and "Traceback" not in err
  assert (run / "config.gin").read_text() == "# the run's config\n"
  assert not list(run.glob("config.*.gin"))


def test_write_config_keeps_the_earlier_config_when_settings_change(tmp_path):
  import gin  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  gin.parse_config("train.batch_size = 8")
  gin_utils.write_config(str(tmp_path))
  gin_utils.write_config(str(tmp_path))  # same settings: nothing kept
  assert not list(tmp_path.glob("config.*.gin"))
  first = (tmp_path / "config.gin").read_text()
  gin.parse_config("train.batch_size = 16")
  gin_utils.write_config(str(tmp_path))
  [kept] = list(tmp_path.glob("config.*.gin"))
  assert kept.read_text() == first and "16" in (tmp_path / "config.gin").read_text()
  gin.clear_config()


def test_relative_paths_for_readers(trained, tmp_path, monkeypatch):
  shutil.copytree(trained, tmp_path / "src")
  monkeypatch.chdir(tmp_path)
  path, step, _ = results.resolve_checkpoint("src")
  assert path.is_absolute() and step == 8
  shapes, shardings = _abstract_tiny()
  loaded = checkpoints.load_params(checkpoints.resolve_params_path("src/checkpoints/4"),
                                   shapes.params, shardings.params)
  assert tu.same_bits(tu.flat_numpy(loaded), tu.load_step_params(str(trained), 4))
  assert param_stats.main(["src", "--output_dir", "stats", "--labels", "s",
                           "--groupings", "whole_model"]) == 0
  assert (tmp_path / "stats" / "s.param_stats.csv").exists()
  assert convert_cli.main(["to-hf", "src", "hf"]) == 0
  assert (tmp_path / "hf" / "config.json").exists()


class _FailingFuture:
  """A commit future whose write failed, as when the disk is full."""

  def result(self, timeout=None):
    raise OSError(28, "No space left on device")


def test_a_failed_save_stops_at_once_and_keeps_the_previous_checkpoint(trained, tmp_path,
                                                                       monkeypatch):
  run = _copy(trained, tmp_path)
  handler = ocp.StandardCheckpointHandler
  original = handler.async_save

  async def failing_at_step_12(self, directory, *args, **kwargs):
    futures = await original(self, directory, *args, **kwargs)
    if Path(str(directory)).parent.name.startswith("12."):
      return list(futures or []) + [_FailingFuture()]
    return futures

  monkeypatch.setattr(handler, "async_save", failing_at_step_12)
  drawn = []
  train_data, eval_data = tu.data_fns("set_tiny", 16)

  def counting(start):
    for i, batch in enumerate(train_data(start), start):
      drawn.append(i)
      yield batch

  monkeypatch.setattr(tu, "data_fns", lambda *a, **k: (counting, eval_data))
  with pytest.raises(checkpoint_saver.CheckpointSaveError,
                     match=r"step 12 .*No space left on device.*previous checkpoint, "
                           r"step 8, is intact"):
    tu.run(str(run), steps=40, ckpt_period=12, eval_period=40)
  assert max(drawn) < 24 - 1  # noticed before the next save (step 24) was due
  assert results.saved_steps(str(run))[-1] == 8
  checksums.verify(run / "checkpoints" / "8")


@pytest.mark.slow
def test_fault_sweep(tmp_path):
  from tests import fault_sweep  # pylint: disable=g-import-not-at-top
  assert fault_sweep.main(["--work_dir", str(tmp_path)]) == 0
