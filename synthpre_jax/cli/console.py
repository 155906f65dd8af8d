"""What the entry points print: known-harmless third-party messages hidden, progress bars.

Hidden by default (`--verbose_third_party` or SYNTHPRE_VERBOSE=1 shows them again):
TensorFlow's start-up lines (oneDNN, `cudart_stub`, `failed call to cuInit` on a
machine without a GPU, the absl::InitializeLog notice), its runtime warnings below
ERROR (TF_CPP_MIN_LOG_LEVEL=2 unless set, e.g. "did not fully read the dataset"), and
the Python log lines in `HARMLESS_LOG_PREFIXES` (gin's search-path false alarm, Orbax's
missing `_CHECKPOINT_METADATA`, seqio's uncached FunctionDataset advice).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
import time
from typing import Callable, Iterator

VERBOSE_ENV = "SYNTHPRE_VERBOSE"
VERBOSE_FLAG = "--verbose_third_party"
# Python log messages (gin, Orbax, seqio) that never call for action in this project.
HARMLESS_LOG_PREFIXES = (
    "Path not found",  # gin's package-resource reader, for every search-path include
    "system_path_file_exists",
    "Metadata file does not exist",  # Orbax, for checkpoints without _CHECKPOINT_METADATA
    "Using an uncached FunctionDataset",  # seqio: our generators are seeded and resumable
)
# TensorFlow's native start-up lines, written before its log level applies.
HARMLESS_NATIVE_LINES = re.compile(
    r"oneDNN custom operations are on|cudart_stub|Could not find cuda drivers"
    r"|failed call to cuInit|All log messages before absl::InitializeLog"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|TF-TRT Warning|This TensorFlow binary is optimized to use available CPU")

def verbose_requested(flag: bool = False) -> bool:
  """True if the flag is given or SYNTHPRE_VERBOSE is set to a true value."""
  return flag or os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def _harmless(record: logging.LogRecord) -> bool:
  return str(record.msg).startswith(HARMLESS_LOG_PREFIXES)


def _drop_harmless(record: logging.LogRecord) -> bool:
  return not _harmless(record)


def install_log_filters() -> None:
  """Drops `HARMLESS_LOG_PREFIXES` records logged to the root and absl loggers."""
  for logger in (logging.getLogger(), logging.getLogger("absl")):
    if _drop_harmless not in logger.filters:
      logger.addFilter(_drop_harmless)


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow (if installed and not yet imported) and initialises its devices
  with file descriptor 2 captured; re-emits the captured lines that are not in
  `HARMLESS_NATIVE_LINES`. A TensorFlow that fails to import is left to the data layer,
  which reports it when it needs TensorFlow."""
  try:
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
      return
  except (ImportError, ValueError):
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode="w+b") as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices()  # CUDA initialisation (cuInit) happens here
    except ImportError:
      pass
    finally:
      os.dup2(saved, 2)
      os.close(saved)
    captured.seek(0)
    text = captured.read().decode("utf-8", "replace")
  kept = [line for line in text.splitlines()
          if line.strip() and not HARMLESS_NATIVE_LINES.search(line)]
  if kept:
    print("\n".join(kept), file=sys.stderr)


def configure(verbose: bool = False) -> None:
  """Hides known-harmless third-party output unless `verbose_requested(verbose)`. Call
  before TensorFlow is imported (the command-line entry points do, in
  `gin_utils.parse_args`)."""
  if verbose_requested(verbose):
    os.environ[VERBOSE_ENV] = "1"  # runs started from this process show them too
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  install_log_filters()
  import_tensorflow_quietly()


@contextlib.contextmanager
def progress(total: int, *, desc: str, unit: str = "ex",
             enabled: bool = True) -> Iterator[Callable[[int], None]]:
  """Yields `advance(n)`. On a terminal (and `enabled`, with tqdm installed) it draws a
  bar with rate and ETA; elsewhere it is silent. Logs one summary line at the end."""
  bar = None
  if enabled and sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None:
    import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm.tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                    dynamic_ncols=True, leave=False)
  done, start = 0, time.perf_counter()

  def advance(n: int) -> None:
    nonlocal done
    done += n
    if bar is not None:
      bar.update(n)

  try:
    yield advance
  finally:
    if bar is not None:
      bar.close()
  seconds = time.perf_counter() - start
  if enabled:
    logging.getLogger("synthpre_jax").info(
        "%s %d/%d %s in %.1f s (%.1f %s/s)", desc, done, total, unit, seconds,
        done / max(seconds, 1e-9), unit)
