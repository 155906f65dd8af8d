"""Test setup, before jax is imported: 8 fake CPU devices for the sharding tests, and
persistent compilation caches (XLA, numba) so the many tiny runs (and the CLI
subprocesses, which inherit them) compile each program once per machine."""
import os
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "synthpre_jax_test_xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The synthetic-task kernels (numba) run with bounds checks in tests, so an indexing bug
# raises IndexError instead of writing past an array; compiled once per machine.
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
os.environ.setdefault("SYNTHPRE_KERNEL_CACHE",
                      os.path.join(tempfile.gettempdir(), "synthpre_jax_test_kernel_cache"))
