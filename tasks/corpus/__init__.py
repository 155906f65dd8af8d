"""The embedded English corpus: prose paragraphs of the Python 3.11 documentation.

`python_docs.txt.gz` (built by `tasks/corpus/build_corpus.py`, PSF License v2, see
LICENSE and README.md here) ships with the project so that natural pre-training and the
text vocabulary need no download. This reader is pure Python (no TensorFlow).

Split rule (fixed, deterministic): paragraph i (0-based line number) is validation iff
`i % VALIDATION_EVERY == VALIDATION_EVERY - 1`, i.e. every 100th paragraph; all others
are train. The file is in reading order, so validation is spread over all documents.
"""
from __future__ import annotations

import functools
import gzip
import os

CORPUS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "python_docs.txt.gz")
VALIDATION_EVERY = 100
SPLITS = ("train", "validation")


def is_validation(index: int) -> bool:
  """Whether paragraph `index` of the corpus belongs to the validation split."""
  return index % VALIDATION_EVERY == VALIDATION_EVERY - 1


@functools.lru_cache(maxsize=4)
def _read(path: str) -> tuple[str, ...]:
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"embedded corpus not found at {path!r}; rebuild it with "
        "`python -m tasks.corpus.build_corpus` (needs Debian's python3.11-doc) or "
        "reinstall the package so its data files are included")
  with gzip.open(path, "rt", encoding="utf-8") as f:
    return tuple(line.rstrip("\n") for line in f if line.strip())


def paragraphs(split: str | None = None, path: str = CORPUS_PATH) -> list[str]:
  """The corpus paragraphs (one per line of the file), all or those of `split`.

  Args:
    split: None for every paragraph, else "train" or "validation" (see the module
      docstring for the rule).
    path: the gzip file to read (defaults to the shipped corpus).
  """
  lines = _read(path)
  if split is None:
    return list(lines)
  if split not in SPLITS:
    raise ValueError(f"unknown corpus split {split!r}; expected one of {SPLITS} or None")
  want_validation = split == "validation"
  return [p for i, p in enumerate(lines) if is_validation(i) == want_validation]
