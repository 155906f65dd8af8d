"""JAX's multi-process runtime: deciding whether a run is multi-process, starting it,
start-up checks across processes, and stopping at a step boundary on SIGTERM.

`resolve` turns flags / Gin / environment into settings, `initialize` starts the runtime
once with a bounded wait, `check_same_everywhere` compares config and code fingerprints,
`StopWatcher` turns SIGTERM into an agreed stop step. How the settings are found and why
the waits are bounded: docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Mapping, Optional

import jax
import numpy as np
# No public API says whether the backends exist or exposes the coordination service's
# barrier; these two private modules are the only way (checked with jax 0.10).
from jax._src import distributed as jax_distributed
from jax._src import xla_bridge
from jax.experimental import multihost_utils

import synthpre_jax

log = logging.getLogger("synthpre_jax")


class DistributedError(RuntimeError):
  """The multi-process runtime could not start, or the processes disagree."""


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """How this process joins a multi-process run; None fields come from the environment.

  `initialization_timeout` (seconds) bounds the wait for the coordinator and the other
  processes. `auto=True` lets `jax.distributed.initialize()` detect everything (Cloud
  TPU, SLURM, Open MPI, Kubernetes).
  """
  coordinator_address: Optional[str] = None
  num_processes: Optional[int] = None
  process_id: Optional[int] = None
  auto: bool = False
  initialization_timeout: int = 300

  def __post_init__(self):
    if self.num_processes is not None and self.num_processes < 1:
      raise ValueError(f"num_processes must be >= 1, got {self.num_processes}.")
    if self.process_id is not None and self.process_id < 0:
      raise ValueError(f"process_id must be >= 0, got {self.process_id}.")
    if (self.num_processes is not None and self.process_id is not None
        and self.process_id >= self.num_processes):
      raise ValueError(f"process_id {self.process_id} must be < num_processes "
                       f"{self.num_processes} (ids run 0..num_processes-1).")
    if self.initialization_timeout < 1:
      raise ValueError(f"initialization_timeout must be >= 1 s, got "
                       f"{self.initialization_timeout}.")
    if self.coordinator_address is not None and ":" not in self.coordinator_address:
      raise ValueError(f"coordinator_address {self.coordinator_address!r} needs a port: "
                       "HOST:PORT, e.g. 10.0.0.2:12345 (process 0's host).")


def _slurm_first_host(nodelist: str) -> str:
  """'node[003-007,9],gpu2' -> 'node003' (SLURM's compressed host-list syntax)."""
  head = nodelist.split(",")[0] if "[" not in nodelist.split(",")[0] else nodelist
  if "[" not in head:
    return head
  prefix, rest = head.split("[", 1)
  first = rest.split("]")[0].split(",")[0].split("-")[0]
  return prefix + first


def resolve(config: DistributedConfig = DistributedConfig(),
            environ: Optional[Mapping[str, str]] = None) -> Optional[DistributedConfig]:
  """The complete settings for a multi-process run, or None for a single process.

  Precedence: `config`'s fields, then JAX_* variables, then SLURM's. Raises ValueError
  when a multi-process run is asked for but a piece is missing.
  """
  env = os.environ if environ is None else environ
  if config.auto or env.get("SYNTHPRE_DISTRIBUTED", "").lower() == "auto":
    return dataclasses.replace(config, auto=True)

  def pick(value, jax_var, slurm_var=None):
    if value is not None:
      return value, "flag/Gin"
    if env.get(jax_var):
      return env[jax_var], jax_var
    if slurm_var and env.get(slurm_var):
      return env[slurm_var], slurm_var
    return None, None

  num, num_src = pick(config.num_processes, "JAX_NUM_PROCESSES", "SLURM_NTASKS")
  pid, _ = pick(config.process_id, "JAX_PROCESS_ID", "SLURM_PROCID")
  addr, _ = pick(config.coordinator_address, "JAX_COORDINATOR_ADDRESS")
  try:
    num = int(num) if num is not None else None
    pid = int(pid) if pid is not None else None
  except ValueError as e:
    raise ValueError(f"Process count / id must be integers ({e}).") from None
  if num is None or num == 1:
    return None
  nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
  if addr is None and nodelist and env.get("SLURM_JOB_ID"):
    port = int(env["SLURM_JOB_ID"]) % 2**12 + (65535 - 2**12 + 1)  # as JAX's SLURM support
    addr = f"{_slurm_first_host(nodelist)}:{port}"
  missing = [name for name, v in (("coordinator_address", addr), ("process_id", pid))
             if v is None]
  if missing:
    raise ValueError(
        f"A {num}-process run (num_processes from {num_src}) also needs "
        f"{' and '.join(missing)}: pass --coordinator_address=HOST:PORT (process 0's host) "
        "and --process_id=0..N-1, set JAX_COORDINATOR_ADDRESS / JAX_PROCESS_ID, run under "
        "SLURM (srun), or use --distributed=auto on Cloud TPU.")
  return dataclasses.replace(config, coordinator_address=addr, num_processes=num,
                             process_id=pid)


def _wait_for_port(address: str, deadline: float) -> Optional[str]:
  """Retries a TCP connection to HOST:PORT until `deadline`; None once it connects."""
  host, port = address.rsplit(":", 1)
  host = host.strip("[]")
  error = "no attempt"
  while True:
    try:
      with socket.create_connection((host, int(port)), timeout=2.0):
        return None
    except OSError as e:
      error = f"{type(e).__name__}: {e}"
    if time.monotonic() >= deadline:
      return error
    time.sleep(0.25)


def _backends_started() -> bool:
  return xla_bridge.backends_are_initialized()


def is_initialized() -> bool:
  return jax.distributed.is_initialized()


def initialize(config: Optional[DistributedConfig]) -> bool:
  """Starts JAX's multi-process runtime once; True if this run is multi-process.

  `config` comes from `resolve` (None: single process, nothing to do). Must run before
  any JAX computation. The wait is bounded by `config.initialization_timeout`.
  """
  if config is None:
    return False
  if jax.distributed.is_initialized():
    return True
  if _backends_started():
    raise DistributedError(
        "jax.distributed.initialize must run before any JAX computation, but JAX's "
        "devices were already created in this process. Call "
        "synthpre_jax.distributed.initialize first (python -m synthpre_jax.train does).")
  timeout = config.initialization_timeout
  if config.auto:
    log.info("Starting the JAX multi-process runtime with auto-detection (Cloud TPU, "
             "SLURM, Open MPI, Kubernetes); waiting up to %d s.", timeout)
    what = "the auto-detected coordinator"
  else:
    what = (f"the coordinator at {config.coordinator_address} (process 0's host); "
            f"this is process {config.process_id} of {config.num_processes}")
    log.info("Starting the JAX multi-process runtime: %s; waiting up to %d s.", what,
             timeout)
  deadline = time.monotonic() + timeout
  if not config.auto and config.process_id != 0:
    error = _wait_for_port(config.coordinator_address, deadline)
    if error is not None:
      raise DistributedError(
          f"Could not reach {what} within {timeout} s ({error}). Check that process 0 "
          "was started (it hosts the coordinator), that the address and port are process "
          "0's and reachable from this host (firewall), or raise "
          "--initialization_timeout if process 0 starts slowly.")

  # JAX aborts the whole process with a bare DEADLINE_EXCEEDED when the other processes
  # never arrive; say what to check first, then exit.
  def watchdog():
    sys.stderr.write(
        f"ERROR: the JAX multi-process runtime did not start within {timeout} s "
        f"({what}): not every process connected. Start the same command on every "
        "host with the same coordinator address and process count, each with its own "
        "process id, or raise --initialization_timeout.\n")
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access

  timer = threading.Timer(max(deadline - time.monotonic(), 0.1), watchdog)
  timer.daemon = True
  timer.start()
  try:
    if config.auto:
      jax.distributed.initialize(initialization_timeout=timeout + 30)
    else:
      jax.distributed.initialize(
          coordinator_address=config.coordinator_address,
          num_processes=config.num_processes, process_id=config.process_id,
          initialization_timeout=timeout + 30)
  except Exception as e:  # pylint: disable=broad-except
    raise DistributedError(f"jax.distributed.initialize failed ({what}): "
                           f"{type(e).__name__}: {e}") from e
  finally:
    timer.cancel()
  log.info("Process %d of %d: %d local devices, %d in all.", jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


# ------------------------------------------------------------------ start-up checks

def code_fingerprint() -> str:
  """sha256 of the project's Python sources (synthpre_jax/, tasks/) and key versions."""
  h = hashlib.sha256(f"jax {jax.__version__}".encode())
  roots = [os.path.dirname(synthpre_jax.__file__)]
  spec = importlib.util.find_spec("tasks")  # located, not imported (it loads TF)
  if spec is not None and spec.origin:
    roots.append(os.path.dirname(spec.origin))
  for root in roots:
    for dirpath, dirnames, filenames in os.walk(root):
      dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
      for name in sorted(f for f in filenames if f.endswith(".py")):
        path = os.path.join(dirpath, name)
        h.update(os.path.relpath(path, os.path.dirname(root)).encode())
        with open(path, "rb") as f:
          h.update(f.read())
  return h.hexdigest()


def config_fingerprint(config_text: str) -> str:
  """sha256 of a Gin config, ignoring `DistributedConfig.*` (it differs per process)."""
  lines = [l for l in config_text.splitlines()
           if not l.strip().startswith("DistributedConfig.")]
  return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def check_same_everywhere(fingerprints: Mapping[str, str]) -> None:
  """Raises DistributedError on every process if any process's fingerprints differ.

  `fingerprints` maps a name ('Gin config', 'code') to a hex sha256. One small
  all-gather; a no-op in a single process.
  """
  if jax.process_count() == 1:
    return
  names = sorted(fingerprints)
  mine = np.frombuffer(b"".join(bytes.fromhex(fingerprints[n]) for n in names),
                       np.uint8).astype(np.int32)
  everyone = np.asarray(multihost_utils.process_allgather(mine))  # [processes, 32*k]
  problems = []
  for i, name in enumerate(names):
    part = everyone[:, 32 * i:32 * (i + 1)]
    differ = [p for p in range(len(part)) if not np.array_equal(part[p], part[0])]
    if differ:
      digests = {p: bytes(part[p].astype(np.uint8)).hex()[:12] for p in [0, *differ]}
      problems.append(f"{name} differs on process(es) {differ} from process 0 "
                      f"(sha256 prefixes {digests})")
  if problems:
    raise DistributedError(
        "The processes of this run do not run the same thing: " + "; ".join(problems) +
        ". Start every host with the same command (same Gin files and --gin. bindings) "
        "and the same checkout/install of the code (launch/tpu_vm.sh copies one tree to "
        "all workers).")


def check_process_layout(process_grid: Any) -> None:
  """Checks that the mesh's batch shards split evenly over the processes.

  `process_grid[data, fsdp, model]` holds each mesh position's process index. A batch
  shard (one data x fsdp position) must live on one process, since each process feeds
  only its own rows, and every process must hold the same number of batch shards.
  """
  grid = np.asarray(process_grid)
  data, fsdp, model = grid.shape
  n = len(np.unique(grid))
  rows = grid.reshape(data * fsdp, model)
  if (data * fsdp) % n:
    raise ValueError(
        f"The process count {n} does not divide the mesh's batch shards "
        f"(data x fsdp = {data} x {fsdp} = {data * fsdp}; model = {model}): each "
        "process must hold whole batch shards. Choose MeshConfig sizes with data x fsdp "
        f"a multiple of {n}, e.g. MeshConfig.data = -1 with model <= the devices per "
        "process.")
  split = [r for r in range(len(rows)) if len(set(rows[r].tolist())) > 1]
  if split:
    raise ValueError(
        f"Batch shard {split[0]} of the mesh spans several processes "
        f"({sorted(set(rows[split[0]].tolist()))}) along the model axis (model = "
        f"{model}); each process feeds its own rows, so the model axis must fit within "
        "one process's devices. Lower MeshConfig.model.")
  counts = np.bincount(rows[:, 0], minlength=n)
  if len(set(counts.tolist())) != 1:
    raise ValueError(f"The processes hold unequal numbers of batch shards ({counts.tolist()}); "
                     "use a mesh whose data x fsdp axes split evenly over the processes.")


def wait_for_all(name: str, timeout_s: int = 1200) -> None:
  """Waits until every process reaches barrier `name`, at most `timeout_s` seconds.

  Uses the coordination service, not a device collective; a no-op in a single process.
  Why the trainer calls it before the first step: docs/distributed.md.
  """
  client = jax_distributed.global_state.client
  if jax.process_count() == 1 or client is None:
    return
  client.wait_at_barrier(name, timeout_in_ms=timeout_s * 1000)


# ------------------------------------------------------------------------ stopping

# The exit code of a run stopped by SIGTERM after saving a checkpoint (128 + SIGTERM):
# not finished; the same command resumes it.
PREEMPTED_EXIT_CODE = 143

class StopWatcher:
  """'Stop at the next step boundary' after SIGTERM, agreed by all processes.

  Single process: a SIGTERM handler sets a flag (installed from the main thread only;
  the previous handler is put back by `close`). Multi-process: JAX's preemption service
  (started by jax.distributed.initialize) catches SIGTERM on any host and every process
  sees `should_stop(step)` True at the same step.
  """

  def __init__(self, enabled: bool = True):
    self.signal_received = False
    self._previous = None
    self._multi = enabled and jax.process_count() > 1 and jax.distributed.is_initialized()
    self._enabled = enabled
    if (enabled and not self._multi
        and threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

  def _on_sigterm(self, signum, frame):  # pylint: disable=unused-argument
    self.signal_received = True
    log.warning("SIGTERM received: saving a checkpoint at the next step boundary, then "
                "stopping.")

  def should_stop(self, step: int) -> bool:
    if not self._enabled:
      return False
    if self._multi:
      if multihost_utils.reached_preemption_sync_point(step):
        self.signal_received = True
        return True
      return False
    return self.signal_received

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
