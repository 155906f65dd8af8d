"""Checksums of a saved checkpoint step: `<step>/checksums.json`, written once the save
is finished, checked before any read.

A step directory is *complete* when its checksums file is present and readable
(`is_complete`); one definition for the trainer, `results.saved_steps`, evaluation and
every reader of INITIAL_CHECKPOINT_PATH. `verify` re-reads the files: 'full' compares
every file's size and SHA-256 (catches a single flipped bit), 'sizes' only sizes and
presence (catches truncated and missing files at no read cost). Pure file I/O: no Orbax.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from typing import Iterable, Optional, Union

from etils import epath

CHECKSUMS_FILE = "checksums.json"
VERSION = 1
VERIFY_MODES = ("full", "sizes")
_CHUNK = 8 << 20


class CorruptCheckpointError(ValueError):
  """A checkpoint step failed verification; `step_dir` and `file` say where."""

  def __init__(self, step_dir: epath.Path, file: Optional[str], problem: str):
    self.step_dir, self.file = epath.Path(step_dir), file
    where = f"{self.step_dir}/{file}" if file else str(self.step_dir)
    super().__init__(f"Checkpoint {self.step_dir} is damaged: {where}: {problem}.")


def _files(step_dir: epath.Path) -> list[str]:
  """Every file under `step_dir` (relative, sorted), the checksums file excluded."""
  out, todo = [], [step_dir]
  while todo:
    for path in todo.pop().iterdir():
      if path.is_dir():
        todo.append(path)
      elif path.name != CHECKSUMS_FILE or path.parent != step_dir:
        out.append(str(path.relative_to(step_dir)))
  return sorted(out)


def file_sha256(path: epath.Path) -> str:
  """Hex SHA-256 of one file, read in 8 MiB chunks."""
  digest = hashlib.sha256()
  with path.open("rb") as f:
    while chunk := f.read(_CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def seal(step_dir: Union[str, epath.Path]) -> dict:
  """Writes `<step_dir>/checksums.json` (size and SHA-256 of every file), atomically
  (temporary name, then rename); returns it. Call only once the save is finished."""
  step_dir = epath.Path(step_dir)
  if not step_dir.is_dir():
    raise FileNotFoundError(f"Cannot record checksums: {step_dir} does not exist.")
  files = {rel: {"size": (step_dir / rel).stat().length,
                 "sha256": file_sha256(step_dir / rel)} for rel in _files(step_dir)}
  record = {"version": VERSION, "algorithm": "sha256", "files": files,
            "sealed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
  tmp = step_dir / f".{CHECKSUMS_FILE}.tmp"
  tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
  tmp.replace(step_dir / CHECKSUMS_FILE)
  return record


def read(step_dir: Union[str, epath.Path]) -> Optional[dict]:
  """The step's checksums record, or None when absent or unreadable."""
  path = epath.Path(step_dir) / CHECKSUMS_FILE
  try:
    record = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(
      record.get("files"), dict):
    return None
  return record


def is_complete(step_dir: Union[str, epath.Path]) -> bool:
  """True if `step_dir` holds a readable checksums file, i.e. its save finished."""
  return read(step_dir) is not None


def verify(step_dir: Union[str, epath.Path], parts: Optional[Iterable[str]] = None,
           mode: str = "full", hash_up_to: Optional[int] = None) -> None:
  """Checks the files of `step_dir` (only those under `parts`, e.g. ('params',), when
  given) against its checksums; `hash_up_to` bytes: hash only files that small (e.g.
  metadata before the arrays are read), the others by size. Raises
  CorruptCheckpointError naming the first bad file: checksums missing, file missing,
  size differs (truncated), or contents differ."""
  if mode not in VERIFY_MODES:
    raise ValueError(f"Unknown checkpoint verification mode {mode!r}; choose one of "
                     f"{VERIFY_MODES}.")
  step_dir = epath.Path(step_dir)
  record = read(step_dir)
  if record is None:
    raise CorruptCheckpointError(step_dir, CHECKSUMS_FILE, (
        "missing or unreadable, so the save never finished (or the checkpoint predates "
        "checksums; if you trust it, record them with `python -m "
        f"synthpre_jax.checkpoints.checksums seal {step_dir}`)"))
  prefixes = _prefixes(parts)
  for rel, want in _selected(record, prefixes):
    path = step_dir / rel
    if not path.exists():
      raise CorruptCheckpointError(step_dir, rel, "file missing")
    size = path.stat().length
    if size != want["size"]:
      raise CorruptCheckpointError(
          step_dir, rel, f"{size} bytes instead of {want['size']} (truncated or "
          "overwritten)")
    hash_it = mode == "full" and (hash_up_to is None or size <= hash_up_to)
    if hash_it and file_sha256(path) != want["sha256"]:
      raise CorruptCheckpointError(step_dir, rel, "contents changed since the save "
                                   "(SHA-256 differs: bit rot or an overwrite)")
  if prefixes is not None:
    for part in prefixes:
      if not any(rel.startswith(part) for rel in record["files"]):
        raise CorruptCheckpointError(step_dir, part.rstrip("/"),
                                     "not part of this checkpoint")


def _prefixes(parts: Optional[Iterable[str]]) -> Optional[tuple[str, ...]]:
  return tuple(p.rstrip("/") + "/" for p in parts) if parts is not None else None


def _selected(record: dict, prefixes: Optional[tuple[str, ...]]) -> list[tuple[str, dict]]:
  return [(rel, want) for rel, want in sorted(record["files"].items())
          if prefixes is None or rel.startswith(prefixes)]


def main(argv: Optional[list[str]] = None) -> int:
  """`python -m synthpre_jax.checkpoints.checksums {verify,seal} STEP_DIR...`."""
  parser = argparse.ArgumentParser(
      prog="python -m synthpre_jax.checkpoints.checksums",
      description="verify: check checkpoint step directories against their "
      "checksums.json; seal: record checksums of a step saved without them.")
  parser.add_argument("command", choices=("verify", "seal"))
  parser.add_argument("step_dirs", nargs="+")
  parser.add_argument("--mode", choices=VERIFY_MODES, default="full")
  args = parser.parse_args(argv)
  rc = 0
  for step_dir in args.step_dirs:
    try:
      if args.command == "seal":
        seal(step_dir)
      else:
        verify(step_dir, mode=args.mode)
      print(f"{step_dir}: {'sealed' if args.command == 'seal' else 'ok'}")
    except (CorruptCheckpointError, FileNotFoundError) as e:
      print(f"error: {e}", file=sys.stderr)
      rc = 1
  return rc


if __name__ == "__main__":
  raise SystemExit(main())
