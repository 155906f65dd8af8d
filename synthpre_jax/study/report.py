"""A study's report, from its result records alone: `python -m synthpre_jax.report DIR`.

    python -m synthpre_jax.report /tmp/studies/quickstart [--out /tmp/quickstart.md]
        [--natural NAME] [--scratch NAME] [--no_param_stats] [--compare A:B ...]

`write_report` reads `<study dir>/records/*.json` and, when present, `study.json`, loads
no model, and writes a Markdown file (default `<study dir>/report.md`) with its PNGs in
`<report stem>_files/` beside it, each file under a temporary name then renamed. Raises
ValueError / FileNotFoundError for a directory without records or a bad comparison.
Its sections and how to read them: docs/studies.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from synthpre_jax.study.plots import plot_curves, plot_param_stats
from synthpre_jax.study.provenance_table import provenance_section
from synthpre_jax.study.summary import (FLAG, UNDEFINED, Summary, benefit, load_records,
                                        load_study_json, plain_size_label, reference_word)
from synthpre_jax.study.tables import (comparison_section, flag_notes, format_score,
                                       gap_how_to_read, gap_table, how_to_read, paper_table,
                                       sizes_table)
from synthpre_jax.study.token_report import format_equivalence, format_tokens, token_section

# The report's public names, importable from here (they live in the modules above).
__all__ = ["FLAG", "Summary", "benefit", "format_equivalence", "format_score",
           "format_tokens", "gap_table", "load_records", "main", "paper_table",
           "provenance_section", "write_report"]


def _size_notes(summary: Summary, task: str) -> list[str]:
  """Notes under a task's per-size table: flagged sizes, natural below scratch."""
  lines = flag_notes(summary, task, summary.sizes(task))
  worse = [n for n in summary.sizes(task)
           if None not in (summary.mean(task, summary.natural, n),
                           summary.mean(task, summary.scratch, n))
           and summary.mean(task, summary.natural, n) < summary.mean(task, summary.scratch, n)]
  if worse:
    where = (", ".join(summary.size_label(task, n) for n in worse)
             if any((task, n) in summary.percent for n in worse)
             else f"{', '.join(map(plain_size_label, worse))} examples")
    lines.append(f"- At {where} {summary.natural} scores below "
                 f"{summary.scratch}; there the % is relative to a negative benefit "
                 f"(a positive % means also worse than {summary.scratch}).")
  return lines + [""] if lines else []


def write_report(study_dir: str, out: Optional[str] = None, *,
                 natural: Optional[str] = None, scratch: Optional[str] = None,
                 param_stats_plot: bool = True,
                 comparisons: Optional[Sequence[Sequence[str]]] = None) -> tuple[str, str]:
  """Writes the Markdown report and its plots; returns (report path, the main table).
  `comparisons` (source pairs) replaces the study's own `comparisons` when given."""
  records = load_records(study_dir)
  meta = load_study_json(study_dir)
  summary = Summary(records, natural=natural or meta.get("natural", "natural"),
                    scratch=scratch or meta.get("scratch", "scratch"),
                    source_order=meta.get("source_order", meta.get("sources", ())),
                    task_order=meta.get("task_order", meta.get("tasks", ())))
  out = os.path.abspath(out or os.path.join(study_dir, "report.md"))
  stem = os.path.splitext(os.path.basename(out))[0]
  files_dir = os.path.join(os.path.dirname(out), f"{stem}_files")
  os.makedirs(files_dir, exist_ok=True)
  rel = os.path.basename(files_dir)
  table = paper_table(summary)
  lines = [f"# Study report: {meta.get('name', os.path.basename(os.path.abspath(study_dir)))}",
           "", f"{len(records)} cell record(s) from `{os.path.abspath(study_dir)}`."]
  expected = meta.get("cells")
  if expected:
    missing = sorted(set(expected) - {r["cell_id"] for r in records})
    if missing:
      lines.append(f"Missing (not run, running or failed): {len(missing)} of "
                   f"{len(expected)} cells: {', '.join(missing)}.")
  usual = (summary.natural, summary.scratch) == ("natural", "scratch")
  heading = ("% of the benefit of natural pre-training" if usual else
             f"% of `{summary.natural}`'s benefit over `{summary.scratch}`")
  of_benefit = ("the natural benefit" if summary.natural == "natural"
                else f"`{summary.natural}`'s benefit")
  percent = ("; \"@ P% (N ex.)\": P% of the training set, N examples"
             if summary.percent else "")
  lines += ["", f"## {heading}", "", how_to_read(summary), "",
            "Each source on each task at the task's largest training-set size (\"@ N ex.\": "
            f"N training examples{percent}), then its average % of {of_benefit} over the "
            f"tasks not flagged; '{UNDEFINED}' where a number is undefined.", "", table, ""]
  flagged = [note for t in summary.tasks
             for note in flag_notes(summary, t, [summary.largest_size(t)])]
  if flagged:
    lines += flagged + [""]
  lines += ["## Every training-set size", ""]
  for t in summary.tasks:
    lines += [f"### {t} ({summary.metric[t]})", "", sizes_table(summary, t), ""]
    lines += _size_notes(summary, t)
  lines += ["## Benefit vs downstream training-set size", "", gap_how_to_read(summary), ""]
  for t in summary.tasks:
    scratch = reference_word(summary.scratch, "scratch")
    lines += [f"### {t} ({summary.metric[t]}): gap to {scratch} vs training-set size", "",
              gap_table(summary, t), ""]
    png = os.path.join(files_dir, f"curves_{t}.png")
    note = plot_curves(summary, t, png)
    lines += [f"![{t}: score and gap to {summary.scratch} vs training examples]"
              f"({rel}/{os.path.basename(png)})", ""]
    if note:
      lines += [f"({t}: {note})", ""]
  if param_stats_plot:
    png = os.path.join(files_dir, "param_stats.png")
    labels, notes = plot_param_stats(study_dir, meta, png)
    if labels:
      lines += ["## Parameter statistics of the pre-trained checkpoints", "",
                f"Per-layer norm-scale means and kernel SDs of {', '.join(labels)} "
                "(synthpre_jax.param_stats).", "",
                f"![parameter statistics]({rel}/param_stats.png)", ""]
    lines += [f"(parameter statistics: {n})" for n in notes] + ([""] if notes else [])
  pairs = meta.get("comparisons", []) if comparisons is None else comparisons
  known = list(dict.fromkeys([*meta.get("source_order", ()), *summary.sources]))
  for pair in pairs:  # a declared source without records yet gets rows without numbers
    if len(pair) != 2 or any(n not in known for n in pair):
      raise ValueError(f"Comparison {':'.join(pair)!r}: needs two sources of the study "
                       f"(sources: {', '.join(known)}).")
  lines += comparison_section(summary, pairs)
  lines += token_section(summary, files_dir)
  lines += provenance_section(summary)
  tmp = out + ".tmp"
  with open(tmp, "w") as f:
    f.write("\n".join(lines).rstrip() + "\n")
  os.replace(tmp, out)
  return out, table

def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m synthpre_jax.report",
      description="Markdown report (benefit table with confidence intervals and paired "
                  "tests, benefit-vs-size curves, parameter "
                  "statistics) of a study directory, from its result records.")
  parser.add_argument("study_dir")
  parser.add_argument("--out", default=None, help="Report file (default <study_dir>/report.md).")
  parser.add_argument("--natural", default=None, help="Source name of the natural reference.")
  parser.add_argument("--scratch", default=None, help="Source name of the scratch reference.")
  parser.add_argument("--no_param_stats", action="store_true",
                      help="Skip the parameter-statistics plot.")
  parser.add_argument("--compare", action="append", default=None, metavar="A:B",
                      help="Compare sources A and B head to head (repeatable; replaces "
                           "the study's own study.comparisons).")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    pairs = None if args.compare is None else [
        [p.strip() for p in c.split(":")] for c in args.compare]
    path, table = write_report(args.study_dir, args.out, natural=args.natural,
                               scratch=args.scratch, param_stats_plot=not args.no_param_stats,
                               comparisons=pairs)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(table)
  print(f"report: {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
