"""A study's report, from its result records alone: `python -m synthpre_jax.report DIR`.

    python -m synthpre_jax.report /tmp/studies/quickstart [--out /tmp/quickstart.md]

Reads `<study dir>/records/*.json` (written by `synthpre_jax.study`, one per cell) and,
when present, `study.json` (the order of sources and tasks, and which sources are the
natural and scratch references). No model is loaded. Writes a Markdown file
(default `<study dir>/report.md`) and PNGs in `<report stem>_files/` beside it:

1. The paper's table: per task, at the task's largest training-set size, every source's
   score (mean +- sample SD over seeds where there are several, with the seed count) and
   its % of the natural benefit (`benefit`), then the average over tasks.
2. Every size: the same numbers for each training-set size.
3. Benefit vs downstream data size ("To Pretrain or Not to Pretrain"): per task, score
   vs training examples (log x), one line per source, and the gap to scratch.
4. Parameter statistics (`synthpre_jax.param_stats`) of the pre-trained sources'
   checkpoints, when their pre-training directories exist (statistics only).

Files are written under temporary names and renamed, so a report is never half written.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
from typing import Any, Iterable, Optional, Sequence

UNDEFINED = "n/a"


def benefit(score: Optional[float], scratch: Optional[float],
            natural: Optional[float]) -> Optional[float]:
  """The % of natural pre-training's benefit that a source keeps on one task:

      100 * (score - scratch) / (natural - scratch)

  (Wu, Li & Liang 2022). 0 is no better than training from scratch, 100 is as good as
  natural pre-training; values may be negative or above 100. Returns None (undefined,
  shown as "n/a") when any score is missing or when natural == scratch, where the
  natural benefit is zero and the ratio has no meaning.
  """
  if score is None or scratch is None or natural is None:
    return None
  gap = natural - scratch
  if gap == 0 or not math.isfinite(gap):
    return None
  return 100.0 * (score - scratch) / gap


def mean_sd(values: Sequence[float]) -> tuple[float, Optional[float]]:
  """Mean and sample SD (None for a single value)."""
  mean = statistics.fmean(values)
  return mean, (statistics.stdev(values) if len(values) > 1 else None)


# --- reading ------------------------------------------------------------------------------

REQUIRED_KEYS = ("cell_id", "source", "task", "size", "seed", "metric", "score")


def load_records(study_dir: str) -> list[dict[str, Any]]:
  """Every record under `<study_dir>/records/`, in file-name order."""
  folder = os.path.join(study_dir, "records")
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"{study_dir} has no records/ directory: is it a study "
                            "directory (python -m synthpre_jax.study --study_dir=...)?")
  records = []
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".json"):
      continue
    with open(os.path.join(folder, name)) as f:
      record = json.load(f)
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
      raise ValueError(f"Record {name} lacks {missing}: not written by synthpre_jax.study?")
    records.append(record)
  if not records:
    raise ValueError(f"No records in {folder} yet: no cell has finished.")
  return records


def load_study_json(study_dir: str) -> dict[str, Any]:
  path = os.path.join(study_dir, "study.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _size_key(size: Optional[int]) -> float:
  return math.inf if size is None else float(size)


def _size_label(size: Optional[int]) -> str:
  return "full" if size is None else str(size)


class Summary:
  """Scores grouped by (task, source, size), with the reference sources' names."""

  def __init__(self, records: Sequence[dict[str, Any]], *, natural: str = "natural",
               scratch: str = "scratch", source_order: Iterable[str] = (),
               task_order: Iterable[str] = ()):
    self.records = list(records)
    self.natural, self.scratch = natural, scratch
    self.scores: dict[tuple[str, str, Optional[int]], list[float]] = {}
    self.metric: dict[str, str] = {}
    self.examples: dict[tuple[str, Optional[int]], Optional[int]] = {}
    for r in self.records:
      self.scores.setdefault((r["task"], r["source"], r["size"]), []).append(float(r["score"]))
      self.metric.setdefault(r["task"], r["metric"])
      if r.get("train_examples") is not None:
        self.examples[(r["task"], r["size"])] = int(r["train_examples"])
    seen_sources = list(dict.fromkeys(r["source"] for r in self.records))
    seen_tasks = list(dict.fromkeys(r["task"] for r in self.records))
    self.sources = ([s for s in source_order if s in seen_sources] +
                    [s for s in seen_sources if s not in source_order])
    self.tasks = ([t for t in task_order if t in seen_tasks] +
                  [t for t in seen_tasks if t not in task_order])

  def sizes(self, task: str) -> list[Optional[int]]:
    return sorted({k[2] for k in self.scores if k[0] == task}, key=_size_key)

  def largest_size(self, task: str) -> Optional[int]:
    return self.sizes(task)[-1]

  def stat(self, task: str, source: str, size: Optional[int]
           ) -> Optional[tuple[float, Optional[float], int]]:
    """(mean, SD or None, seed count), or None when the cell has no record."""
    values = self.scores.get((task, source, size))
    if not values:
      return None
    mean, sd = mean_sd(values)
    return mean, sd, len(values)

  def mean(self, task: str, source: str, size: Optional[int]) -> Optional[float]:
    s = self.stat(task, source, size)
    return None if s is None else s[0]

  def benefit(self, task: str, source: str, size: Optional[int]) -> Optional[float]:
    """% of the natural benefit, from the mean scores over seeds."""
    return benefit(self.mean(task, source, size), self.mean(task, self.scratch, size),
                   self.mean(task, self.natural, size))

  def average_benefit(self, source: str) -> tuple[Optional[float], int]:
    """Mean over tasks (each at its largest size) of the defined benefits, and how many
    tasks were defined."""
    values = [b for t in self.tasks
              if (b := self.benefit(t, source, self.largest_size(t))) is not None]
    return (statistics.fmean(values) if values else None), len(values)


# --- formatting ---------------------------------------------------------------------------

def format_score(stat: Optional[tuple[float, Optional[float], int]]) -> str:
  """`mean` or `mean ± SD (k seeds)`: 2 decimals for scores in % (exact match, ROUGE),
  3 for fractions (accuracies)."""
  if stat is None:
    return "-"
  mean, sd, n = stat
  fmt = ".2f" if abs(mean) >= 10 else ".3f"
  return format(mean, fmt) if sd is None else f"{mean:{fmt}} ± {sd:{fmt}} ({n} seeds)"


def format_benefit(value: Optional[float]) -> str:
  return UNDEFINED if value is None else f"{round(value)}%"  # round(): no "-0%"


def paper_table(summary: Summary) -> str:
  """Markdown: sources x tasks at each task's largest size, + the average benefit."""
  head = ["source"]
  for t in summary.tasks:
    head += [f"{t} {summary.metric[t]} @ {_size_label(summary.largest_size(t))} ex.",
             "% benefit"]
  head.append("avg % benefit")
  rows = [head, ["---"] * len(head)]
  for s in summary.sources:
    row = [s]
    for t in summary.tasks:
      size = summary.largest_size(t)
      row += [format_score(summary.stat(t, s, size)), format_benefit(summary.benefit(t, s, size))]
    avg, count = summary.average_benefit(s)
    cell = format_benefit(avg)
    if avg is not None and count < len(summary.tasks):
      cell += f" ({count} of {len(summary.tasks)} tasks)"
    row.append(cell)
    rows.append(row)
  return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def sizes_table(summary: Summary, task: str) -> str:
  sizes = summary.sizes(task)
  head = ["source"] + [f"{_size_label(n)} examples" for n in sizes]
  rows = [head, ["---"] * len(head)]
  for s in summary.sources:
    rows.append([s] + [
        f"{format_score(summary.stat(task, s, n))} [{format_benefit(summary.benefit(task, s, n))}]"
        for n in sizes])
  return "\n".join("| " + " | ".join(r) + " |" for r in rows)


# --- plots --------------------------------------------------------------------------------

def _savefig_atomic(fig, path: str) -> None:
  tmp = path + ".tmp"
  fig.savefig(tmp, dpi=100, format="png")
  os.replace(tmp, path)


def plot_curves(summary: Summary, task: str, path: str) -> Optional[str]:
  """Score vs training examples (log x) and the gap to scratch; returns a note when
  some points had no known example count (full training set of unknown size)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  sizes = [n for n in summary.sizes(task) if summary.examples.get((task, n)) is not None]
  dropped = [n for n in summary.sizes(task) if n not in sizes]
  fig, (ax_score, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, s in enumerate(summary.sources):
    color = colors[i % len(colors)]  # the same colour for a source in both panels
    points = [(summary.examples[(task, n)], summary.stat(task, s, n)) for n in sizes]
    points = [(x, st) for x, st in points if st is not None]
    if points:
      ax_score.errorbar([x for x, _ in points], [st[0] for _, st in points],
                        yerr=[st[1] or 0.0 for _, st in points], marker="o", capsize=3,
                        label=s, color=color)
    gaps = [(summary.examples[(task, n)],
             summary.mean(task, s, n) - summary.mean(task, summary.scratch, n))
            for n in sizes if summary.mean(task, s, n) is not None
            and summary.mean(task, summary.scratch, n) is not None]
    if gaps and s != summary.scratch:
      ax_gap.plot([x for x, _ in gaps], [g for _, g in gaps], marker="o", label=s,
                  color=color)
  metric = summary.metric[task]
  ax_score.set(xscale="log", xlabel="training examples", ylabel=metric,
               title=f"{task}: {metric} vs training-set size")
  ax_gap.axhline(0.0, color="gray", lw=0.8)
  ax_gap.set(xscale="log", xlabel="training examples",
             ylabel=f"{metric} - {summary.scratch}",
             title=f"{task}: gap to {summary.scratch}")
  for ax in (ax_score, ax_gap):
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  _savefig_atomic(fig, path)
  plt.close(fig)
  if dropped:
    return (f"sizes {', '.join(map(_size_label, dropped))} are not plotted: their number "
            "of training examples is unknown (set the task's `train_size` in the study).")
  return None


def plot_param_stats(study_dir: str, study_json: dict[str, Any], path: str
                     ) -> tuple[list[str], list[str]]:
  """The parameter-statistics comparison of the pre-trained sources' checkpoints.
  Returns (labels plotted, notes)."""
  from synthpre_jax import param_stats  # pylint: disable=g-import-not-at-top

  candidates: dict[str, str] = {}
  sources = study_json.get("sources", {})
  pretrain_root = os.path.join(study_dir, "pretrain")
  names = list(sources) or (sorted(os.listdir(pretrain_root))
                            if os.path.isdir(pretrain_root) else [])
  for name in names:
    checkpoint = (sources.get(name) or {}).get("checkpoint")
    candidate = checkpoint or os.path.join(pretrain_root, name)
    if os.path.isdir(os.path.join(candidate, "checkpoints")) or (
        checkpoint and os.path.exists(checkpoint)):
      candidates[name] = candidate
  stats, notes = {}, []
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # Orbax's metadata warnings on every read
  try:
    for name, candidate in candidates.items():
      try:
        stats[name] = param_stats.checkpoint_stats(candidate, ["per_layer"])
      except (ValueError, FileNotFoundError) as e:
        notes.append(f"{name}: {e}")
  finally:
    absl_logger.setLevel(level)
  if stats:
    tmp = path + ".tmp.png"
    param_stats.plot(stats, tmp)
    os.replace(tmp, path)
  return list(stats), notes


# --- the report ---------------------------------------------------------------------------

def write_report(study_dir: str, out: Optional[str] = None, *,
                 natural: Optional[str] = None, scratch: Optional[str] = None,
                 param_stats_plot: bool = True) -> tuple[str, str]:
  """Writes the Markdown report and its plots; returns (report path, the paper table)."""
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
  lines += ["", "## % of the benefit of natural pre-training", "",
            f"Score of each source on each task at the task's largest training-set size "
            f"(\"@ N ex.\": N training examples; mean ± sample SD over seeds where there are "
            f"several), and its % of the "
            f"natural benefit, 100 × (score − {summary.scratch}) / "
            f"({summary.natural} − {summary.scratch}), computed from the mean scores; "
            f"'{UNDEFINED}' where it is undefined ({summary.natural} == {summary.scratch}, "
            "or a reference is missing). The average is over the tasks where it is "
            "defined.", "", table, ""]
  lines += ["## Every training-set size", "",
            "Score [% of the natural benefit at that size].", ""]
  for t in summary.tasks:
    lines += [f"### {t} ({summary.metric[t]})", "", sizes_table(summary, t), ""]
    worse = [_size_label(n) for n in summary.sizes(t)
             if None not in (summary.mean(t, summary.natural, n),
                             summary.mean(t, summary.scratch, n))
             and summary.mean(t, summary.natural, n) < summary.mean(t, summary.scratch, n)]
    if worse:
      lines += [f"Note: at {', '.join(worse)} examples {summary.natural} scores below "
                f"{summary.scratch}; there the % is relative to a negative benefit "
                "(a positive % means also worse than scratch).", ""]
  lines += ["## Benefit vs downstream training-set size", ""]
  for t in summary.tasks:
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
                "(synthpre_jax.param_stats).", "", f"![parameter statistics]({rel}/param_stats.png)", ""]
    lines += [f"(parameter statistics: {n})" for n in notes]
  tmp = out + ".tmp"
  with open(tmp, "w") as f:
    f.write("\n".join(lines).rstrip() + "\n")
  os.replace(tmp, out)
  return out, table


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m synthpre_jax.report",
      description="Markdown report (benefit table, benefit-vs-size curves, parameter "
                  "statistics) of a study directory, from its result records.")
  parser.add_argument("study_dir")
  parser.add_argument("--out", default=None, help="Report file (default <study_dir>/report.md).")
  parser.add_argument("--natural", default=None, help="Source name of the natural reference.")
  parser.add_argument("--scratch", default=None, help="Source name of the scratch reference.")
  parser.add_argument("--no_param_stats", action="store_true",
                      help="Skip the parameter-statistics plot.")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    path, table = write_report(args.study_dir, args.out, natural=args.natural,
                               scratch=args.scratch, param_stats_plot=not args.no_param_stats)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(table)
  print(f"report: {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
