"""Builds the shipped WordNet file (`wordnet_glosses.tsv.gz`) from Debian's wordnet-base.

Run once (the output is committed); needs no network and no TensorFlow:

  apt-get install wordnet-base
  python -m tasks.wordnet.build_wordnet [--source_dir /usr/share/wordnet] \
      [--output tasks/wordnet/wordnet_glosses.tsv.gz]

One row per synset of WordNet 3.0 (`data.noun`, `data.verb`, `data.adj`, `data.adv`,
read in that order, each in file order): `split \t word \t pos \t definition`.
`word` is the synset's first lemma (underscores to spaces, adjective markers such as
`(a)` dropped, lower-cased); `definition` is the gloss without its quoted usage examples,
whitespace-normalised and lower-cased. The split is a function of the word alone
(`split_of`), so no word is shared between train, validation and test. The output is
gzip with mtime 0 and no file name: a rebuild from the same package is byte-identical.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Iterable, Iterator

from tasks.corpus import build_corpus
from tasks.wordnet import DATA_PATH, POS_FILES, split_of

DEFAULT_SOURCE_DIR = "/usr/share/wordnet"
_MARKER = re.compile(r"\((a|p|ip)\)$")  # adjective position markers: able(p)
_EXAMPLE = re.compile(r';?\s*"')       # usage examples start at the first quote


def parse_data_line(line: str) -> tuple[str, str] | None:
  """(first lemma, definition) of one `data.<pos>` line; None for the licence header.

  The line is `offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ... | gloss`
  (wndb(5)); w_cnt is hexadecimal.
  """
  if line.startswith("  ") or "|" not in line:
    return None
  fields, gloss = line.split("|", 1)
  parts = fields.split()
  if int(parts[3], 16) < 1:
    raise ValueError(f"synset without words: {line[:60]!r}")
  word = _MARKER.sub("", parts[4]).replace("_", " ").lower()
  definition = _EXAMPLE.split(gloss, 1)[0]
  definition = " ".join(definition.split()).strip(" ;").lower()
  return (word, definition) if word and definition else None


def read_rows(source_dir: str) -> Iterator[tuple[str, str, str, str]]:
  """(split, word, pos, definition) for every synset, in file order, without the
  validation and test rows whose definition is also a train row's (`drop_shared`)."""
  return iter(drop_shared(list(_all_rows(source_dir))))


def drop_shared(rows: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
  """`rows` without the validation / test rows whose definition a train row has, and
  the test rows whose definition a validation row has: a definition seen in training
  would leak the target of definition modelling (and the input of the reverse
  dictionary) into evaluation."""
  seen = {"train": {r[3] for r in rows if r[0] == "train"}}
  seen["validation"] = seen["train"] | {r[3] for r in rows if r[0] == "validation"}
  earlier = {"validation": seen["train"], "test": seen["validation"]}
  return [r for r in rows if r[0] == "train" or r[3] not in earlier[r[0]]]


def _all_rows(source_dir: str) -> Iterator[tuple[str, str, str, str]]:
  for pos, name in POS_FILES:
    path = os.path.join(source_dir, name)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} not found: install Debian's wordnet-base "
                              "(apt-get install wordnet-base) or pass --source_dir")
    with open(path, encoding="utf-8") as f:
      for line in f:
        parsed = parse_data_line(line)
        if parsed is not None:
          word, definition = parsed
          yield split_of(word), word, pos, definition


def tsv_lines(rows: Iterable[tuple[str, ...]]) -> list[str]:
  """Tab-joined rows; refuses a field holding a tab or a newline."""
  lines = []
  for row in rows:
    if any("\t" in v or "\n" in v for v in row):
      raise ValueError(f"a field holds a tab or newline: {row!r}")
    lines.append("\t".join(row))
  return lines


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m tasks.wordnet.build_wordnet",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--source_dir", default=DEFAULT_SOURCE_DIR)
  parser.add_argument("--output", default=DATA_PATH)
  args = parser.parse_args(argv)
  lines = tsv_lines(read_rows(args.source_dir))
  build_corpus.write_gzip_lines(lines, args.output)  # gzip, mtime 0, atomic
  print(f"wrote {len(lines)} rows to {args.output} ({os.path.getsize(args.output):,} bytes)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
