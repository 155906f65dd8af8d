"""launch/tpu_vm.sh and launch/gpu.sh: --dry-run prints the commands they would run."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["python", "-m", "synthpre_jax.train", "--gin_file=gin/quickstart/pretrain_set.gin",
         "--gin.MODEL_DIR='gs://bucket/run'"]


def sh(script, *args, env=None):
  full = dict(os.environ, **(env or {}))
  return subprocess.run(["bash", str(REPO / "launch" / script), *args], capture_output=True,
                        text=True, timeout=60, env=full)


def test_tpu_vm_dry_run_creates_installs_runs_on_all_workers_and_deletes():
  r = sh("tpu_vm.sh", "--dry-run", "--name", "pod1", "--zone", "us-central2-b",
         "--accelerator-type", "v4-32", "--spot", "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  lines = [l for l in r.stdout.splitlines() if l.startswith("+ gcloud")]
  assert lines[0].startswith("+ gcloud compute tpus tpu-vm create pod1 --zone=us-central2-b "
                             "--accelerator-type=v4-32")
  assert "--spot" in lines[0]
  assert any(" scp " in l and "--worker=all" in l for l in lines)
  runs = [l for l in lines if " ssh pod1 " in l and "--worker=all" in l]
  assert "pip install" in runs[0]
  assert "SYNTHPRE_DISTRIBUTED=auto" in runs[-1]
  assert "python -m synthpre_jax.train" in runs[-1] and "gs://bucket/run" in runs[-1]
  assert lines[-1] == "+ gcloud compute tpus tpu-vm delete pod1 --zone=us-central2-b --quiet"
  assert "preempted" in r.stdout  # the --spot resume path is described


def test_tpu_vm_commands_file_runs_each_command_in_turn(tmp_path):
  cmds = tmp_path / "study.txt"
  cmds.write_text("# exported by a study\npython -m synthpre_jax.train --gin.SEED=1\n\n"
                  "python -m synthpre_jax.train --gin.SEED=2\n")
  r = sh("tpu_vm.sh", "--dry-run", "--name", "v", "--zone", "z", "--existing",
         "--commands-file", str(cmds))
  assert r.returncode == 0, r.stderr
  runs = [l for l in r.stdout.splitlines() if "SYNTHPRE_DISTRIBUTED=auto" in l]
  assert len(runs) == 2 and "SEED=1" in runs[0] and "SEED=2" in runs[1]
  assert " create " not in r.stdout and " delete " not in r.stdout  # --existing


def test_tpu_vm_help_and_bad_input():
  r = sh("tpu_vm.sh", "--help")
  assert r.returncode == 0 and "--spot" in r.stdout and "--dry-run" in r.stdout
  r = sh("tpu_vm.sh", "--dry-run", "--zone", "z", "--", "python")
  assert r.returncode == 2 and "--name is required" in r.stderr
  r = sh("tpu_vm.sh", "--dry-run", "--name", "v", "--zone", "z")
  assert r.returncode == 2 and "no command" in r.stderr


def test_gpu_dry_run_single_host_multi_host_and_slurm():
  r = sh("gpu.sh", "--dry-run", "--gpus", "4", "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert "CUDA_VISIBLE_DEVICES=0,1,2,3" in r.stdout and "synthpre_jax.train" in r.stdout

  r = sh("gpu.sh", "--dry-run", "--coordinator", "10.0.0.1:1234", "--num-processes", "2",
         "--process-id", "1", "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert ("--coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=1"
          in r.stdout)

  r = sh("gpu.sh", "--dry-run", "--slurm", "--nodes", "2", "--gpus", "8", "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert r.stdout.startswith("+ sbatch ") and "--nodes=2" in r.stdout
  assert "--ntasks-per-node=1" in r.stdout and "--signal=TERM@120" in r.stdout
  assert "srun" in r.stdout and "scontrol requeue" in r.stdout

  # Inside the SLURM job: this task's id and count come from SLURM's variables.
  r = sh("gpu.sh", "--dry-run", "--", *TRAIN,
         env={"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_STEP_NODELIST": "n[1-2]"})
  assert r.returncode == 0 and "SLURM task 1 of 2" in r.stderr


def test_gpu_help_and_bad_input():
  assert "--coordinator" in sh("gpu.sh", "--help").stdout
  r = sh("gpu.sh", "--dry-run", "--coordinator", "h:1", "--", "python")
  assert r.returncode == 2 and "needs all of" in r.stderr
  r = sh("gpu.sh", "--dry-run", "--slurm", "--", "python")
  assert r.returncode == 2 and "--nodes" in r.stderr
