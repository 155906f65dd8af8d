"""Process start-up shared by the command lines: logging, multi-process flags, runtime.

Multi-process runs (one process per host; see synthpre_jax/distributed.py and launch/):
every host runs the same command plus how to find the others,
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (or the JAX_* /
SLURM environment variables, or `--distributed=auto` on Cloud TPU).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import gin
import jax

from synthpre_jax import distributed

# `DistributedConfig.*` Gin bindings; calling it builds the bound config.
DistributedConfig = gin.external_configurable(distributed.DistributedConfig, module=None)


def setup_logging(process_index: int = 0, process_count: int = 1) -> None:
  """Our progress lines at INFO; Orbax/absl chatter only from WARNING up. In a
  multi-process run lines carry [process i/n] and only process 0 logs INFO."""
  tag = f"[process {process_index}/{process_count}] " if process_count > 1 else ""
  level = logging.INFO if process_index == 0 else logging.WARNING
  logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {tag}%(message)s",
                      stream=sys.stderr, force=True)
  for noisy in ("absl", "jax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  for handler in logging.getLogger().handlers:
    # gin's package-resource reader logs a false alarm for every search-path include.
    handler.addFilter(lambda r: not str(r.msg).startswith(
        ("Path not found", "system_path_file_exists")))


def parse_distributed_flags(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
  """Splits off the multi-process flags; the rest are Gin flags for gin_utils."""
  return distributed_parser().parse_known_args(list(argv))


def distributed_parser() -> argparse.ArgumentParser:
  """The multi-process flags (no --help of its own: a parent parser)."""
  parser = argparse.ArgumentParser(add_help=False)
  parser.add_argument("--coordinator_address", default=None,
                      help="HOST:PORT of process 0 (multi-process runs).")
  parser.add_argument("--num_processes", type=int, default=None)
  parser.add_argument("--process_id", type=int, default=None)
  parser.add_argument("--initialization_timeout", type=int, default=None,
                      help="Seconds to wait for the coordinator and all processes.")
  parser.add_argument("--distributed", choices=("auto",), default=None,
                      help="auto: let jax.distributed.initialize() detect the cluster "
                           "(Cloud TPU VMs and pod slices, SLURM, Open MPI).")
  return parser


def distributed_config(flags: argparse.Namespace) -> distributed.DistributedConfig:
  """Gin's `DistributedConfig.*` bindings, overridden by the command-line flags."""
  base = DistributedConfig()
  overrides = {k: v for k, v in dict(
      coordinator_address=flags.coordinator_address, num_processes=flags.num_processes,
      process_id=flags.process_id, initialization_timeout=flags.initialization_timeout,
      auto=True if flags.distributed == "auto" else None).items() if v is not None}
  return distributed.DistributedConfig(**{**base.__dict__, **overrides})


def start_processes(flags: argparse.Namespace) -> None:
  """Starts the multi-process runtime if this is a multi-process run, then checks that
  all processes run the same config and code."""
  if distributed.initialize(distributed.resolve(distributed_config(flags))):
    setup_logging(jax.process_index(), jax.process_count())
    distributed.check_same_everywhere({
        "Gin config": distributed.config_fingerprint(gin.config_str()),
        "code": distributed.code_fingerprint()})
