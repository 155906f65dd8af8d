"""Real multi-process training on CPU: two processes x 4 fake devices on localhost.

The pair (jax.distributed with a local coordinator, gloo CPU collectives) must train
exactly like one process with 8 devices reading the same two input shards; each process
feeds a disjoint half of every global batch; the pair's checkpoint restores in one
process. Bad input: a mesh the processes cannot split, an unreachable coordinator, a
batch the data shards cannot split, processes with different configs.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synthpre_jax import distributed
from tests import train_utils as tu

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def worker_env(devices: int = 4) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  env["SYNTHPRE_TEST_DUMP_AFTER"] = "400"  # a hung worker prints its stacks and exits
  return env


def run_workers(specs: list, timeout: float = 500) -> list:
  """Starts one `python -m tests.train_utils SPEC` per spec; returns (rc, stderr) each."""
  procs = [subprocess.Popen([sys.executable, "-m", "tests.train_utils", json.dumps(s)],
                            cwd=REPO, env=worker_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True) for s in specs]
  deadline = time.time() + timeout
  out = []
  try:
    for p in procs:
      _, err = p.communicate(timeout=max(deadline - time.time(), 1))
      out.append((p.returncode, err))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  return out


def pair_specs(tmp_path, run=None, **extra) -> list:
  port = free_port()
  return [dict(coordinator=f"localhost:{port}", num_processes=2, process_id=i,
               model_dir=str(tmp_path / "pair"), out=str(tmp_path / "out"), timeout=120,
               run=run or {}, **extra) for i in range(2)]


def jsonl(path) -> list:
  return [json.loads(l) for l in Path(path).read_text().splitlines()]


def test_two_processes_train_like_one_process_with_8_devices(tmp_path):
  results = run_workers(pair_specs(tmp_path))
  for i, (rc, err) in enumerate(results):
    assert rc == 0, f"process {i} failed:\n{err[-4000:]}"

  # The same run in this process (8 devices), reading the same two input shards.
  record = []
  ref = tu.recorded_run(str(tmp_path / "single"), record=record)

  # Each process fed a disjoint half of every global batch: rows 0-7 and 8-15.
  halves = [np.load(tmp_path / f"out.p{i}.npz")["batches"] for i in range(2)]
  whole = np.stack(record)
  assert halves[0].shape == halves[1].shape == (3, 8, tu.LENGTHS["inputs"])
  np.testing.assert_array_equal(np.concatenate(halves, axis=1), whole)
  for step in range(3):
    rows0 = {r.tobytes() for r in halves[0][step]}
    assert not rows0 & {r.tobytes() for r in halves[1][step]}

  # Same losses every step, same final parameters, same evaluation.
  pair_log = jsonl(tmp_path / "pair" / "train" / "metrics.jsonl")
  single_log = jsonl(tmp_path / "single" / "train" / "metrics.jsonl")
  assert [r["step"] for r in pair_log] == [1, 2, 3]
  np.testing.assert_allclose([r["loss"] for r in pair_log],
                             [r["loss"] for r in single_log], rtol=1e-6)
  # The pair's checkpoint restores in a single process (8 devices): same parameters.
  shutil.copytree(tmp_path / "pair", tmp_path / "pair_resumed")
  restored = tu.recorded_run(str(tmp_path / "pair_resumed"), steps=3, eval_steps=0)
  assert "found checkpoint step 3" in "\n".join(restored.restore_log)
  pair_params = tu.flat_numpy(restored.state.params)
  single_params = tu.flat_numpy(ref.state.params)
  assert pair_params.keys() == single_params.keys()
  for name in single_params:
    np.testing.assert_allclose(pair_params[name], single_params[name], rtol=1e-5,
                               atol=1e-6, err_msg=name)
  pair_eval = json.loads((tmp_path / "out.p0.json").read_text())["eval"]
  for key in ("loss", "token_accuracy", "sequence_accuracy"):
    np.testing.assert_allclose(pair_eval[key], ref.eval_metrics[key], rtol=1e-5)
  # Metrics files come from process 0 only (one record per step).
  assert not list((tmp_path / "pair").glob("train/metrics.jsonl.*"))

  # ... and training goes on from it as from the single-process run's own checkpoint.
  resumed = tu.recorded_run(str(tmp_path / "pair_resumed"), steps=4, eval_steps=0)
  cont = tu.recorded_run(str(tmp_path / "single"), steps=4, eval_steps=0)
  for name, value in tu.flat_numpy(cont.state.params).items():
    np.testing.assert_allclose(tu.flat_numpy(resumed.state.params)[name], value,
                               rtol=1e-5, atol=1e-6, err_msg=name)


def test_mesh_the_processes_cannot_split_is_refused_on_every_process(tmp_path):
  # model=8 spans both processes' devices: no process can feed its own batch rows.
  results = run_workers(pair_specs(tmp_path, run={"mesh": [1, 1, 8]}))
  for rc, err in results:
    assert rc != 0
    assert "process count 2 does not divide the mesh's batch shards" in err
    assert "data x fsdp = 1 x 1 = 1" in err


def test_processes_with_different_configs_are_stopped_at_start(tmp_path):
  specs = pair_specs(tmp_path)
  specs[0]["fingerprint"] = distributed.config_fingerprint("TRAIN_STEPS = 3")
  specs[1]["fingerprint"] = distributed.config_fingerprint("TRAIN_STEPS = 4")
  results = run_workers(specs)
  for rc, err in results:
    assert rc != 0
    assert "do not run the same thing: Gin config differs on process(es) [1]" in err
  assert not (tmp_path / "pair").exists()  # stopped before any training


def test_unreachable_coordinator_fails_fast_with_a_clear_error(tmp_path):
  port = free_port()  # nobody listens there
  start = time.time()
  [(rc, err)] = run_workers([dict(coordinator=f"localhost:{port}", num_processes=2,
                                  process_id=1, model_dir=str(tmp_path / "m"),
                                  out=str(tmp_path / "o"), timeout=3)], timeout=120)
  assert rc != 0
  assert f"Could not reach the coordinator at localhost:{port}" in err
  assert "within 3 s" in err and "Check that process 0 was started" in err
  assert time.time() - start < 60


def test_batch_not_divisible_by_data_shards_is_refused(tmp_path):
  with pytest.raises(ValueError, match=r"BATCH_SIZE 12 must be divisible .*data x fsdp = 8.*BATCH_SIZE = 16"):
    tu.recorded_run(str(tmp_path / "m"), batch_size=12, input_shards=1)


def test_resolve_reads_flags_then_jax_env_then_slurm():
  assert distributed.resolve(distributed.DistributedConfig(), environ={}) is None
  env = {"JAX_COORDINATOR_ADDRESS": "h0:1234", "JAX_NUM_PROCESSES": "4",
         "JAX_PROCESS_ID": "2", "SLURM_NTASKS": "8", "SLURM_PROCID": "5"}
  got = distributed.resolve(distributed.DistributedConfig(process_id=3), environ=env)
  assert (got.coordinator_address, got.num_processes, got.process_id) == ("h0:1234", 4, 3)
  slurm = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_JOB_ID": "4097",
           "SLURM_STEP_NODELIST": "gpu[007-009,12],cpu1"}
  got = distributed.resolve(distributed.DistributedConfig(), environ=slurm)
  assert (got.coordinator_address, got.num_processes, got.process_id) == (
      "gpu007:61441", 2, 1)
  assert distributed.resolve(distributed.DistributedConfig(),
                             environ={"SYNTHPRE_DISTRIBUTED": "auto"}).auto
  assert distributed.resolve(distributed.DistributedConfig(num_processes=1),
                             environ={}) is None
  with pytest.raises(ValueError, match="also needs coordinator_address and process_id"):
    distributed.resolve(distributed.DistributedConfig(num_processes=2), environ={})
  with pytest.raises(ValueError, match="needs a port"):
    distributed.DistributedConfig(coordinator_address="h0")
  with pytest.raises(ValueError, match="must be < num_processes"):
    distributed.DistributedConfig(num_processes=2, process_id=2)


def test_process_layout_and_fingerprints():
  # [data, fsdp, model] grids of process indices.
  distributed.check_process_layout(np.array([0, 0, 1, 1]).reshape(4, 1, 1))
  distributed.check_process_layout(np.array([0, 0, 1, 1]).reshape(2, 1, 2))
  with pytest.raises(ValueError, match="process count 2 does not divide"):
    distributed.check_process_layout(np.array([0, 0, 1, 1]).reshape(1, 1, 4))
  with pytest.raises(ValueError, match="spans several processes"):
    distributed.check_process_layout(np.array([0, 1, 0, 1]).reshape(2, 1, 2))
  a = distributed.config_fingerprint("X = 1\nDistributedConfig.process_id = 0")
  assert a == distributed.config_fingerprint("X = 1\nDistributedConfig.process_id = 1")
  assert a != distributed.config_fingerprint("X = 2\nDistributedConfig.process_id = 0")
  assert distributed.code_fingerprint() == distributed.code_fingerprint()
