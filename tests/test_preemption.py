"""SIGTERM (preemption): save a complete checkpoint at the next step boundary, stop, and
resume bit-identically with the same command; in one process and in a pair."""

import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from synthpre_jax.cli import train as train_cli
from synthpre_jax.training import trainer
from tests import train_utils as tu
from tests.test_multihost import pair_specs, run_workers

REPO = Path(__file__).resolve().parents[1]


def _steps(model_dir) -> list:
  root = Path(model_dir) / "checkpoints"
  return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())


def test_sigterm_saves_then_stops_and_resume_is_bit_identical(tmp_path):
  before = signal.getsignal(signal.SIGTERM)
  whole = tu.recorded_run(str(tmp_path / "whole"), steps=6, input_shards=1)
  # SIGTERM arrives while step 3's batch is drawn: step 3 finishes, is saved, and the
  # run stops there (the regular checkpoint would only come at step 6).
  with pytest.raises(trainer.Preempted, match="SIGTERM.*at step 3.*Re-run the same "
                     "command") as stopped:
    tu.recorded_run(str(tmp_path / "split"), steps=6, input_shards=1, sigterm_at=2)
  assert stopped.value.step == 3
  assert _steps(tmp_path / "split") == [3]
  assert [p.name for p in (tmp_path / "split" / "checkpoints").iterdir()
          if not p.name.isdigit()] == []  # nothing half-written
  assert signal.getsignal(signal.SIGTERM) is before  # handler removed again

  resumed = tu.recorded_run(str(tmp_path / "split"), steps=6, input_shards=1)
  assert "found checkpoint step 3" in "\n".join(resumed.restore_log)
  assert tu.same_bits(tu.flat_numpy(whole.state.params), tu.flat_numpy(resumed.state.params))
  assert tu.same_bits(tu.load_step_params(str(tmp_path / "whole"), 6),
                      tu.load_step_params(str(tmp_path / "split"), 6))
  assert whole.eval_metrics == resumed.eval_metrics


def _sigterm_once_training(stop: threading.Event) -> None:
  """Sends this process SIGTERM once the trainer's handler is installed (never to the
  default handler, which would kill pytest)."""
  while not stop.is_set():
    handler = signal.getsignal(signal.SIGTERM)
    if type(getattr(handler, "__self__", None)).__name__ == "StopWatcher":
      signal.raise_signal(signal.SIGTERM)
      return
    time.sleep(0.005)


def test_command_line_exits_143_with_a_message_and_the_same_command_resumes(tmp_path,
                                                                            capsys):
  model_dir = tmp_path / "run"
  argv = ["--gin_file=gin/quickstart/pretrain_set.gin", "--gin.BATCH_SIZE=8",
          f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=400",
          "--gin.CHECKPOINT_PERIOD=1000", "--gin.EVAL_PERIOD=1000", "--gin.EVAL_STEPS=1",
          "--gin.LOG_PERIOD=1000", "--gin.T5Config.num_encoder_layers=1",
          "--gin.T5Config.num_decoder_layers=1"]
  stop = threading.Event()
  sender = threading.Thread(target=_sigterm_once_training, args=(stop,))
  sender.start()
  try:
    rc = train_cli.main(argv)
  finally:
    stop.set()
    sender.join()
  assert rc == train_cli.PREEMPTED_EXIT_CODE == 143
  assert "Stopped by SIGTERM (preemption) at step" in capsys.readouterr().err
  [step] = _steps(model_dir)
  assert 1 <= step < 400
  argv[3] = f"--gin.TRAIN_STEPS={step + 2}"
  assert train_cli.main(argv) == 0
  assert f"found checkpoint step {step}" in capsys.readouterr().err
  assert _steps(model_dir)[-1] == step + 2


@pytest.mark.slow
def test_sigterm_to_one_process_of_a_pair_stops_both_at_the_same_step(tmp_path):
  # Process 1 gets SIGTERM at its 2nd batch; JAX's preemption service makes both
  # processes stop, after saving together, at the same step.
  specs = pair_specs(tmp_path, run={"steps": 60, "eval_steps": 0})
  specs[1]["run"] = dict(specs[1]["run"], sigterm_at=1)
  results = run_workers(specs)
  for i, (rc, err) in enumerate(results):
    assert rc == 3, f"process {i}:\n{err[-4000:]}"
  at = [json.loads((tmp_path / f"out.p{i}.json").read_text())["preempted_at"]
        for i in range(2)]
  assert at[0] == at[1] and 2 <= at[0] < 60
  assert _steps(tmp_path / "pair") == [at[0]]
  # The checkpoint resumes (here in one process, same input shards) to the same end as
  # an uninterrupted single-process run.
  resumed = tu.recorded_run(str(tmp_path / "pair"), steps=at[0] + 2, eval_steps=0)
  whole = tu.recorded_run(str(tmp_path / "whole"), steps=at[0] + 2, eval_steps=0)
  for name, value in tu.flat_numpy(whole.state.params).items():
    np.testing.assert_allclose(tu.flat_numpy(resumed.state.params)[name], value,
                               rtol=1e-5, atol=1e-6, err_msg=name)
