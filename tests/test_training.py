"""Training behaviour on the tiny Set task: learning, exact resume, transfer, divergence."""

import dataclasses
import logging

import jax.numpy as jnp
import numpy as np
import pytest

from synthpre_jax.training import parts as parts_lib
from synthpre_jax.training import trainer
from tests import train_utils as tu


def test_loss_falls_and_token_accuracy_rises_on_tiny_set(tmp_path):
  # Same seed and data: the 10-step run is the first 10 steps of the 300-step run.
  early = tu.run(str(tmp_path / "a"), steps=10, ckpt_period=10, eval_period=10,
                 log_period=10, lr=1e-2, eval_steps=4)
  late = tu.run(str(tmp_path / "b"), steps=300, ckpt_period=300, eval_period=300,
                log_period=100, lr=1e-2, eval_steps=4)
  assert late.eval_metrics["loss"] < early.eval_metrics["loss"] - 0.4
  assert late.eval_metrics["token_accuracy"] > early.eval_metrics["token_accuracy"] + 0.005
  assert late.train_metrics["tokens_per_second"] > 0


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
  whole = tu.run(str(tmp_path / "whole"), steps=12)
  tu.run(str(tmp_path / "split"), steps=6)  # checkpoints at 4 and 6, then stops
  resumed = tu.run(str(tmp_path / "split"), steps=12)
  assert "resuming" in "\n".join(resumed.restore_log)
  assert tu.same_bits(tu.flat_numpy(whole.state.params), tu.flat_numpy(resumed.state.params))
  assert tu.same_bits(tu.load_step_params(str(tmp_path / "whole")),
                      tu.load_step_params(str(tmp_path / "split")))


WALL_CLOCK = ("steps_per_second", "tokens_per_second", "mfu")


def _train_log(model_dir) -> list[dict]:
  from synthpre_jax.training import metric_writers
  return [{k: v for k, v in r.items() if k not in WALL_CLOCK}
          for r in metric_writers.read_jsonl(model_dir / "train" / "metrics.jsonl")]


def test_each_train_record_covers_its_log_period_across_checkpoints_and_resume(
    tmp_path, monkeypatch):
  """Checkpoints every 3 steps, logs every 4: a run killed after its checkpoint at step 6
  (not a log step) and resumed logs exactly what a run without intermediate
  checkpoints logs."""
  reference = tmp_path / "reference"
  tu.run(str(reference), steps=12, ckpt_period=12, eval_period=12, log_period=4)

  real_data_fns = tu.data_fns

  def crashing_data_fns(task, batch_size):
    train_data, eval_data = real_data_fns(task, batch_size)

    def train(start):
      for i, batch in enumerate(train_data(start), start):
        if i == 6:  # drawing step 7's batch: killed after checkpoint 6 was saved
          raise RuntimeError("killed")
        yield batch
    return train, eval_data

  split = tmp_path / "split"
  monkeypatch.setattr(tu, "data_fns", crashing_data_fns)
  with pytest.raises(RuntimeError, match="killed"):
    tu.run(str(split), steps=12, ckpt_period=3, eval_period=12, log_period=4)
  monkeypatch.setattr(tu, "data_fns", real_data_fns)
  assert [r["step"] for r in _train_log(split)] == [4]
  resumed = tu.run(str(split), steps=12, ckpt_period=3, eval_period=12, log_period=4)
  assert "resuming" in "\n".join(resumed.restore_log)
  assert [r["step"] for r in _train_log(reference)] == [4, 8, 12]
  assert _train_log(split) == _train_log(reference)


def test_all_but_embeddings_keeps_fresh_embedding_and_copies_the_rest(tmp_path, caplog):
  source = str(tmp_path / "pretrain")
  tu.run(source, steps=4, seed=5)
  src = tu.load_step_params(source)
  caplog.set_level(logging.INFO, logger="synthpre_jax")
  fine = tu.run(str(tmp_path / "ft"), steps=1, lr=0.0, initial=source,
                transfer_mode="all_but_embeddings", task="identity_tiny")
  fresh = tu.run(str(tmp_path / "scratch"), steps=1, lr=0.0, task="identity_tiny")
  got, scratch = tu.flat_numpy(fine.state.params), tu.flat_numpy(fresh.state.params)
  emb = "token_embedder/embedding"
  np.testing.assert_array_equal(got[emb], scratch[emb])          # fresh, same seed as scratch
  assert not np.array_equal(got[emb], src[emb])
  for name in src:
    if name != emb:
      np.testing.assert_array_equal(got[name], src[name], err_msg=name)
  log = "\n".join(fine.restore_log)
  assert "loaded 46 tensors" in log and "kept fresh (seed 0): token_embedder/embedding" in log
  assert "Restore decisions" in caplog.text

  everything = tu.run(str(tmp_path / "ft_all"), steps=1, lr=0.0, initial=source,
                      transfer_mode="all", task="identity_tiny")
  np.testing.assert_array_equal(tu.flat_numpy(everything.state.params)[emb], src[emb])

  # A checkpoint in MODEL_DIR beats INITIAL_CHECKPOINT_PATH, and the log says so.
  again = tu.run(str(tmp_path / "ft"), steps=2, lr=0.0, initial=source,
                 transfer_mode="all_but_embeddings", task="identity_tiny")
  assert "IGNORED" in "\n".join(again.restore_log)
  np.testing.assert_array_equal(tu.flat_numpy(again.state.params)[emb], got[emb])


def test_nan_loss_stops_with_a_clear_message_and_keeps_last_good_checkpoint(tmp_path):
  model_dir = str(tmp_path / "nan")
  # The update of step 6 (a checkpoint step) makes the parameters NaN while that step's
  # loss, computed before the update, is still finite: it must not be saved.
  schedule = lambda step: jnp.where(step < 5, 3e-3, jnp.nan)  # noqa: E731
  with pytest.raises(trainer.TrainingDivergedError,
                     match="diverged.*step 6.*last good checkpoint, step 3, is kept"):
    tu.run(model_dir, steps=20, lr=schedule, ckpt_period=3, eval_period=3, log_period=100)
  steps = sorted(int(p.name) for p in (tmp_path / "nan" / "checkpoints").iterdir()
                 if p.name.isdigit())
  assert steps == [3]
  assert all(np.isfinite(v).all() for v in tu.load_step_params(model_dir, 3).values())


def test_runs_in_one_process_reuse_the_compiled_parts_and_match(tmp_path):
  """A second run with the same configs reuses the traced step functions (a study's
  cells run in one process) and trains to the same parameters as the first."""
  import jax
  parts_lib.clear()
  first = tu.run(str(tmp_path / "a"), steps=3, ckpt_period=3, eval_period=3)
  assert len(parts_lib.cached()) == 1
  parts = parts_lib.cached()[0]
  second = tu.run(str(tmp_path / "b"), steps=3, ckpt_period=3, eval_period=3)
  assert len(parts_lib.cached()) == 1 and parts_lib.cached()[0] is parts
  for x, y in zip(jax.tree.leaves(first.state.params), jax.tree.leaves(second.state.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  tu.run(str(tmp_path / "c"), steps=1, ckpt_period=1, eval_period=1, lr=1e-2)
  assert len(parts_lib.cached()) == 2  # another optimizer config: other parts
  tu.run(str(tmp_path / "d"), steps=1, ckpt_period=1, eval_period=1,
         model=dataclasses.replace(tu.TINY, mlp_dim=128))
  assert len(parts_lib.cached()) == 3  # another model config: other parts
  assert parts_lib.config_key({"unhashable": [1]}) == ("dict", "{'unhashable': [1]}")
