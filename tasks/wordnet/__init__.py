"""WordNet 3.0 glosses, shipped with the project: a real-language downstream task offline.

`wordnet_glosses.tsv.gz` (built by `build_wordnet.py` from Debian's wordnet-base, the
WordNet 3.0 licence in LICENSE) holds one row per synset: split, word (first lemma),
part of speech, definition. Two tasks read it (registered in tasks/downstream/wordnet.py):

* `wordnet_reverse_dictionary`: definition -> word (exact match);
* `wordnet_definitions`: word -> definition (definition modelling, ROUGE).

Splits are a function of the word (`split_of`: SHA-256 of "<SPLIT_SALT>:<key>", the key
being the word's lower-case letters and digits, so "follow-up" and "followup" go
together), 10% of words test, 10% validation, the rest train; so no word (and none of
its senses) is shared between the splits. Validation and test rows whose definition is
also a train row's (and test rows sharing one with validation) were dropped when the
file was built (282 rows). This reader is pure Python (no TensorFlow).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
from typing import NamedTuple

DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "wordnet_glosses.tsv.gz")
POS_FILES = (("n", "data.noun"), ("v", "data.verb"), ("a", "data.adj"), ("r", "data.adv"))
SPLITS = ("train", "validation", "test")
SPLIT_SALT = "wordnet-split-v2"
TEST_PERCENT = 10
VALIDATION_PERCENT = 10
# Rows per split of the shipped file (a test pins them), so registering needs no read.
SIZES = {"train": 94_356, "validation": 11_408, "test": 11_613}


class Gloss(NamedTuple):
  word: str
  pos: str
  definition: str


def split_key(word: str) -> str:
  """The word as splits see it: lower-case letters and digits only, so that spellings
  such as "follow-up", "followup" and "follow up" fall in one split."""
  return re.sub(r"[^a-z0-9]", "", word.lower()) or word


def split_of(word: str) -> str:
  """The split of every sense of `word`: the SHA-256 bucket out of 100 of its
  `split_key`."""
  key = split_key(word)
  bucket = int.from_bytes(
      hashlib.sha256(f"{SPLIT_SALT}:{key}".encode("utf-8")).digest()[:8], "big") % 100
  if bucket < TEST_PERCENT:
    return "test"
  if bucket < TEST_PERCENT + VALIDATION_PERCENT:
    return "validation"
  return "train"


@functools.lru_cache(maxsize=4)
def _read(path: str) -> dict[str, tuple[Gloss, ...]]:
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"WordNet file not found at {path!r}; rebuild it with `python -m "
        "tasks.wordnet.build_wordnet` (needs Debian's wordnet-base) or reinstall the "
        "package so its data files are included")
  rows: dict[str, list[Gloss]] = {s: [] for s in SPLITS}
  with gzip.open(path, "rt", encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      fields = line.rstrip("\n").split("\t")
      if len(fields) != 4 or fields[0] not in rows:
        raise ValueError(f"{path}, line {number}: expected 'split<TAB>word<TAB>pos<TAB>"
                         f"definition', got {line[:80]!r}")
      rows[fields[0]].append(Gloss(*fields[1:]))
  if path == DATA_PATH and {s: len(v) for s, v in rows.items()} != SIZES:
    raise ValueError(f"{path} has {({s: len(v) for s, v in rows.items()})} rows per split, "
                     f"not the registered {SIZES}: a rebuild from another wordnet-base? "
                     "Update tasks.wordnet.SIZES (subsets are sampled over these sizes).")
  return {s: tuple(v) for s, v in rows.items()}


def glosses(split: str, path: str = DATA_PATH) -> tuple[Gloss, ...]:
  """The rows of `split` ('train', 'validation' or 'test'), in file order."""
  if split not in SPLITS:
    raise ValueError(f"unknown WordNet split {split!r}; expected one of {SPLITS}")
  return _read(path)[split]
