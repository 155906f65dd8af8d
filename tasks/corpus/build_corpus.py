"""Builds the embedded English corpus from the Python 3.11 documentation sources.

Run once (the output is committed); needs no network and no TensorFlow:

  python -m tasks.corpus.build_corpus \
      [--source_dir /usr/share/doc/python3.11/html/_sources] \
      [--output tasks/corpus/python_docs.txt.gz] [--max_bytes 4000000]

Source: the reStructuredText sources (`_sources/**/*.rst.txt`) that Debian's
`python3.11-doc` package installs; the documentation is under the PSF License v2 (see
tasks/corpus/LICENSE). The script keeps only English prose paragraphs:

* dropped: section titles and adornments, comments and link targets, code-like
  directives (code-block, doctest, productionlist, index, toctree, tables, ...) with
  their bodies, literal blocks introduced by `::`, doctest blocks (`>>>`), grid and
  simple tables, directive options, signature lines of `function::`-like directives;
* kept: the bodies of prose directives (function/method/class descriptions, notes,
  warnings, version notes), ordinary paragraphs and list items;
* inline reST markup is reduced to its text (`:func:`~os.path.join`` -> `join`,
  ``` ``x`` ``` -> `x`, `*x*` -> `x`, `` `text <url>`_ `` -> `text`, ...);
* whitespace is normalized to single spaces, and a paragraph is kept only if it looks
  like real sentences (>= MIN_CHARS characters and MIN_WORDS words, mostly letters,
  mostly plain words, ending in sentence punctuation);
* exact duplicates are removed (first occurrence wins; files are read in sorted order);
  if the rest exceeds `max_bytes`, a deterministic uniform subsample (by SHA-256 rank of
  the paragraph) that fits is kept, written in reading order.

The output is one paragraph per line, UTF-8, gzip-compressed with mtime 0 and no file
name in the header, so a rerun on the same sources is byte-identical.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import sys
from typing import Iterable, Iterator

DEFAULT_SOURCE_DIR = "/usr/share/doc/python3.11/html/_sources"
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "python_docs.txt.gz")
DEFAULT_MAX_BYTES = 4_000_000  # uncompressed UTF-8 bytes, newlines included

MIN_CHARS = 60
MIN_WORDS = 8
MIN_LETTER_FRACTION = 0.85  # letters and spaces / all characters
MIN_PLAIN_WORD_FRACTION = 0.6  # words made of letters only (with . , ; : ' ( ) etc.)

# Directives whose body is prose; the directive line itself is a signature.
SIGNATURE_DIRECTIVES = frozenset("""
  function method attribute data class exception decorator decoratormethod classmethod
  staticmethod abstractmethod coroutinefunction coroutinemethod awaitablefunction
  awaitablemethod object describe cmdoption option envvar opcode pdbcommand 2to3fixer
  c:function c:member c:type c:var c:macro c:struct c:data glossary
""".split())
# Directives whose argument (after an optional version) and body are prose.
TEXT_DIRECTIVES = frozenset("""
  note warning important caution tip hint attention danger error admonition seealso
  impl-detail only topic sidebar epigraph
""".split())
VERSION_DIRECTIVES = {"versionadded": 1, "versionchanged": 1, "deprecated": 1,
                      "deprecated-removed": 2}
# Every other directive (code-block, doctest, index, toctree, productionlist, tables,
# module, audit-event, rubric, ...) and every comment is dropped with its body.

_DIRECTIVE = re.compile(r"^\.\.\s+([A-Za-z0-9:_-]+)::(.*)$")
_ADORNMENT = re.compile(r"^([=\-~^*+#\"'`:.<>_])\1{2,}$")
_GRID_BORDER = re.compile(r"^\+[-=+]+\+$")
_SIMPLE_TABLE_BORDER = re.compile(r"^=+( +=+)+$")
_BULLET = re.compile(r"^([*+\-\u2022]|#\.|\d+\.|\(?[a-z0-9]\))\s+")
_OPTION = re.compile(r"^:[\w-]+:(\s|$)")

_ROLE = re.compile(r":(?:[\w-]+:)?[\w-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]*?)\s*<[^`>]*>`__?")
_REF = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``")
_DEFAULT_ROLE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_FOOTNOTE_REF = re.compile(r"\s*\[(?:#[\w-]*|\d+|\*)\]_")
_SUBSTITUTION = re.compile(r"\|([\w-]+)\|_?")
_SPACE = re.compile(r"\s+")
_PLAIN_WORD = re.compile(r"^[\"'(\[]*[A-Za-z]+(?:['\u2019-][A-Za-z]+)*[\"')\].,;:!?]*$")


def _role_text(match: re.Match) -> str:
  """The visible text of `:role:`target`` (title of `title <target>`, `~a.b` -> `b`)."""
  text = match.group(1)
  titled = re.match(r"^(.*?)\s*<[^<>]*>$", text, flags=re.S)
  if titled and titled.group(1):
    return titled.group(1)
  text = text.lstrip("!")
  if text.startswith("~"):
    text = text[1:].split(".")[-1]
  return text


def strip_inline_markup(text: str) -> str:
  """Reduces the inline reST markup of one paragraph to plain text."""
  # Inline literals and role targets are verbatim (no backslash escapes): park them.
  parked: list[str] = []

  def park(value: str) -> str:
    parked.append(value)
    return f"\x00{len(parked) - 1}\x00"

  text = text.replace("\x00", "")
  text = _FOOTNOTE_REF.sub("", text)
  text = _LITERAL.sub(lambda m: park(m.group(1)), text)
  text = _ROLE.sub(lambda m: park(_role_text(m)), text)
  text = _LINK.sub(lambda m: m.group(1), text)
  text = _REF.sub(lambda m: m.group(1), text)
  text = _DEFAULT_ROLE.sub(lambda m: m.group(1), text)
  text = _STRONG.sub(lambda m: m.group(1), text)
  text = _EMPHASIS.sub(lambda m: m.group(1), text)
  text = _SUBSTITUTION.sub(lambda m: m.group(1), text)
  text = text.replace("\\ ", "")
  text = re.sub(r"\\(.)", r"\1", text)
  text = re.sub("\x00(\\d+)\x00", lambda m: parked[int(m.group(1))], text)
  text = _SPACE.sub(" ", text).strip()
  if text.endswith(" ::"):
    text = text[:-3]
  elif text.endswith("::"):
    text = text[:-1]
  return text


def is_prose(text: str) -> bool:
  """Whether a cleaned paragraph looks like English sentences, not code or a label."""
  if len(text) < MIN_CHARS or text[-1] not in ".!?:":
    return False
  if not (text[0].isalpha() or text[0] in "\"'("):
    return False
  words = text.split(" ")
  if len(words) < MIN_WORDS:
    return False
  letters = sum(c.isalpha() or c == " " for c in text)
  if letters / len(text) < MIN_LETTER_FRACTION:
    return False
  plain = sum(bool(_PLAIN_WORD.match(w)) for w in words)
  return plain / len(words) >= MIN_PLAIN_WORD_FRACTION


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip(" "))


def raw_paragraphs(lines: Iterable[str]) -> Iterator[str]:
  """Yields the candidate prose paragraphs (markup not yet stripped) of one reST file."""
  buf: list[str] = []
  buf_indent = 0  # indent of the paragraph's continuation lines
  skip_indent: int | None = None  # skipping lines indented deeper than this (or blank)
  skip_to_blank = False  # skipping to the next blank line (doctest, grid table)
  in_simple_table = False
  after_directive: str | None = None  # "signature" | "text" until the first blank line
  last_nonblank = ""

  def flush() -> Iterator[str]:
    nonlocal buf
    if buf:
      text = " ".join(buf)
      buf = []
      yield text

  for raw in lines:
    line = raw.expandtabs(8).rstrip()
    stripped = line.strip()
    indent = _indent(line)

    if skip_indent is not None:
      if not stripped or indent > skip_indent:
        continue
      skip_indent = None
    if skip_to_blank:
      if stripped:
        continue
      skip_to_blank = False
    if in_simple_table:
      if not stripped and _SIMPLE_TABLE_BORDER.match(last_nonblank):
        in_simple_table = False
      if stripped:
        last_nonblank = stripped
      continue

    if not stripped:
      yield from flush()
      after_directive = None
      continue
    last_nonblank = stripped

    if after_directive is not None:
      if after_directive == "signature" or _OPTION.match(stripped):
        continue  # signature continuation or directive option
      after_directive = None  # text continuing a prose directive's argument

    directive = _DIRECTIVE.match(stripped)
    if directive:
      yield from flush()
      name, arg = directive.group(1), directive.group(2).strip()
      if name in SIGNATURE_DIRECTIVES:
        after_directive = "signature"
      elif name in TEXT_DIRECTIVES or name in VERSION_DIRECTIVES:
        after_directive = "text"
        if name in VERSION_DIRECTIVES:
          arg = " ".join(arg.split(" ")[VERSION_DIRECTIVES[name]:])
        if arg and name != "only":
          buf, buf_indent = [arg], indent + 3
      else:
        skip_indent = indent
      continue
    if stripped.startswith(".."):  # comment, link target, footnote, substitution
      yield from flush()
      skip_indent = indent
      continue
    if stripped.startswith(">>>"):
      yield from flush()
      skip_to_blank = True
      continue
    if _GRID_BORDER.match(stripped):
      yield from flush()
      skip_to_blank = True
      continue
    if _SIMPLE_TABLE_BORDER.match(stripped):
      yield from flush()
      in_simple_table = True
      continue
    if _ADORNMENT.match(stripped):
      if len(buf) == 1:
        buf = []  # a section title
      else:
        yield from flush()  # transition or overline
      continue
    if stripped == "::":
      yield from flush()
      skip_indent = indent
      continue

    bullet = _BULLET.match(stripped)
    if bullet:
      yield from flush()
      buf, buf_indent = [stripped[bullet.end():]], indent + bullet.end()
    elif buf and indent == buf_indent:
      buf.append(stripped)
    else:
      yield from flush()
      buf, buf_indent = [stripped], indent
    if stripped.endswith("::"):
      # The paragraph introduces a literal block: keep it, skip the indented block.
      yield from flush()
      skip_indent = indent if not bullet else buf_indent - 1
  yield from flush()


def source_files(source_dir: str) -> list[str]:
  """All `.rst.txt` files under `source_dir`, as sorted relative paths."""
  found = []
  for root, _, files in os.walk(source_dir):
    for name in files:
      if name.endswith(".rst.txt"):
        found.append(os.path.relpath(os.path.join(root, name), source_dir))
  return sorted(found, key=lambda p: p.replace(os.sep, "/"))


def _rank(text: str) -> bytes:
  """A stable pseudo-random rank of a paragraph (for the size cap)."""
  return hashlib.sha256(text.encode("utf-8")).digest()


def extract(source_dir: str, max_bytes: int) -> tuple[list[str], dict[str, int]]:
  """The de-duplicated prose paragraphs, in file order, and counts for the README.

  If they exceed `max_bytes` (UTF-8, one newline each), a uniform deterministic
  subsample is kept: paragraphs in order of their SHA-256 rank until the next one would
  not fit, written back in reading order, so every part of the documentation is
  represented (not just the first files alphabetically).
  """
  files = source_files(source_dir)
  if not files:
    raise FileNotFoundError(
        f"no *.rst.txt files under {source_dir!r}; install Debian's python3.11-doc "
        "package (apt-get install python3.11-doc) or pass --source_dir")
  seen: set[str] = set()
  unique: list[str] = []
  stats = {"files": len(files), "candidates": 0, "prose": 0, "duplicates": 0}
  for rel in files:
    with open(os.path.join(source_dir, rel), encoding="utf-8") as f:
      lines = f.read().splitlines()
    for raw in raw_paragraphs(lines):
      stats["candidates"] += 1
      text = strip_inline_markup(raw)
      if not text or not is_prose(text):
        continue
      stats["prose"] += 1
      if text in seen:
        stats["duplicates"] += 1
        continue
      seen.add(text)
      unique.append(text)
  sizes = [len(t.encode("utf-8")) + 1 for t in unique]
  stats["unique"], stats["unique_bytes"] = len(unique), sum(sizes)
  keep = set(range(len(unique)))
  if sum(sizes) > max_bytes:
    keep, total = set(), 0
    for i in sorted(range(len(unique)), key=lambda i: _rank(unique[i])):
      if total + sizes[i] > max_bytes:
        break
      keep.add(i)
      total += sizes[i]
  kept = [t for i, t in enumerate(unique) if i in keep]
  stats["paragraphs"] = len(kept)
  stats["bytes"] = sum(len(t.encode("utf-8")) + 1 for t in kept)
  return kept, stats


def write_gzip_lines(paragraphs: list[str], output: str) -> None:
  """Writes one paragraph per line, gzip with mtime 0 (reproducible), atomically."""
  data = "".join(p + "\n" for p in paragraphs).encode("utf-8")
  buf = io.BytesIO()
  with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9,
                     mtime=0) as gz:
    gz.write(data)
  tmp = output + ".tmp"
  with open(tmp, "wb") as f:
    f.write(buf.getvalue())
  os.replace(tmp, output)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--source_dir", default=DEFAULT_SOURCE_DIR)
  parser.add_argument("--output", default=DEFAULT_OUTPUT)
  parser.add_argument("--max_bytes", type=int, default=DEFAULT_MAX_BYTES)
  args = parser.parse_args(argv)
  if args.max_bytes <= 0:
    parser.error(f"--max_bytes must be positive, got {args.max_bytes}")
  paragraphs, stats = extract(args.source_dir, args.max_bytes)
  write_gzip_lines(paragraphs, args.output)
  print(" ".join(f"{k}={v}" for k, v in stats.items()),
        f"compressed={os.path.getsize(args.output)}", f"-> {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
