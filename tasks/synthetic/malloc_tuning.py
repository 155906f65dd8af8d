"""Keeps glibc from returning the generators' scratch memory to the OS after each block.

The vectorized generators allocate and free dozens of ~0.1-2 MB temporaries per block
of examples. glibc's defaults serve such sizes with fresh mmap()s, or trim the heap
top as soon as 2x the (dynamic) mmap threshold is free, so every block pays page faults
on fresh zeroed pages: measured 3-4x slower generation on a loaded 2-core machine.
`tune()` (called once by `generators.generate_batch`) sets, process-wide, M_MMAP_THRESHOLD
= 32 MiB (smaller arrays come from the heap) and M_TRIM_THRESHOLD = 128 MiB (at most that
much freed heap is kept for reuse). Set SYNTHPRE_NO_MALLOC_TUNING=1 to opt out; it is a
no-op off glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

ENV_OPT_OUT = "SYNTHPRE_NO_MALLOC_TUNING"
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_done = False


def tune() -> bool:
  """Applies the settings once per process; True if they are in effect."""
  global _done
  if _done:
    return _done == "on"
  _done = "off"
  if os.environ.get(ENV_OPT_OUT, "") not in ("", "0"):
    return False
  try:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name or "libc.so.6")
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
      return False
    ok = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
          and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
  except OSError:
    return False
  _done = "on" if ok else "off"
  return ok
