"""Test setup, before jax is imported: 8 fake CPU devices for the sharding tests, and
persistent compilation caches (XLA, numba) so the many tiny runs (and the CLI
subprocesses, which inherit them) compile each program once per machine. The caches
live in ~/.cache/synthpre_jax_tests; every other temporary file (TF autograph modules,
tfds and torch scratch folders) goes to one session folder in pytest's basetemp,
removed at the end (tempfile.tempdir and TMPDIR, which subprocesses inherit). The
project's task modules are imported once temporary files have their folder."""
import os
import shutil
import tempfile

import pytest

CACHE_ROOT = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synthpre_jax_tests")

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(CACHE_ROOT, "xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The synthetic-task kernels (numba) run with bounds checks in tests, so an indexing bug
# raises IndexError instead of writing past an array; compiled once per machine.
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
os.environ.setdefault("SYNTHPRE_KERNEL_CACHE",
                      os.path.join(CACHE_ROOT, "kernels"))

from synthpre_jax.data import task_modules  # pylint: disable=wrong-import-position

_SESSION_TMP = pytest.StashKey[str]()  # the session folder for temporary files


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin has set up basetemp
def pytest_configure(config: pytest.Config) -> None:
  """Points tempfile and TMPDIR at a session folder in pytest's basetemp."""
  factory = config._tmp_path_factory  # pylint: disable=protected-access
  session_tmp = factory.mktemp("session_tmp", numbered=False)
  config.stash[_SESSION_TMP] = str(session_tmp)
  os.environ["TMPDIR"] = str(session_tmp)
  tempfile.tempdir = str(session_tmp)
  # The library never imports task modules: like the command lines, the tests register
  # the project's tasks by name first.
  task_modules.import_task_modules()


def pytest_unconfigure(config: pytest.Config) -> None:
  """Removes the session folder; tempfile falls back to the system default."""
  session_tmp = config.stash.get(_SESSION_TMP, None)
  if session_tmp:
    shutil.rmtree(session_tmp, ignore_errors=True)
    tempfile.tempdir = None

