"""A study's report, from its result records alone: `python -m synthpre_jax.report DIR`.

    python -m synthpre_jax.report /tmp/studies/quickstart [--out /tmp/quickstart.md]

Reads `<study dir>/records/*.json` (written by `synthpre_jax.study.runner`, one per cell) and,
when present, `study.json` (the order of sources and tasks, and which sources are the
natural and scratch references). No model is loaded. Writes a Markdown file
(default `<study dir>/report.md`) and PNGs in `<report stem>_files/` beside it:

1. The main table: per source and task, at the task's largest training-set size, the
   mean score with its 95% t interval over seeds, the % of the natural benefit
   (`benefit`) with a paired bootstrap interval, and paired sign-flip p-values against
   scratch and natural (`synthpre_jax.study.stats`). A task where natural does not beat
   scratch significantly is flagged and left out of each source's average.
2. Every size: the same numbers for each training-set size.
3. Benefit vs downstream data size ("To Pretrain or Not to Pretrain"): per task, a table
   of each source's gap to scratch (natural's is the references' gap) at each size:
   the mean per-seed difference over the seeds both have, its 95% t interval and the
   paired sign-flip p; and a plot of score vs training examples (log x), one line per
   source, beside the same gaps with their intervals as error bars.
4. Parameter statistics (`synthpre_jax.param_stats`) of the pre-trained sources'
   checkpoints, when their pre-training directories exist (statistics only).
5. Natural-token equivalence, when records carry `natural_run` / `natural_tokens`
   (sources `<run>@<step>` of a study source with `token_steps`): per run, task and
   size, a table of the curve (score vs pre-training tokens) and, for every other
   source, the run's tokens that give the same score with a 95% bootstrap interval
   ("below 0" / "beyond <largest>" outside the curve; `synthpre_jax.study.token_equivalence`),
   and a plot `tokens_<run>_<task>.png` of the curve with each source as a horizontal
   line.
6. Pairwise comparisons, for the source pairs of `study.comparisons` (or `--compare
   a:b`), each the hypothesis a > b: per task and size, a - b paired by seed with its t
   interval, the one-sided sign-flip p and whether a > b is shown.
7. Provenance: per source, the checkpoint step(s) read and the vocabulary, from the
   records' provenance fields when they have them.

Sizes of records with `size_percent` (percentage sizes such as '10pct') read
`10% (2,250 ex.)` in tables and plots; other sizes read as their example count or
"full". Headings and notes name the reference sources; "natural pre-training",
"natural benefit" and "scratch" appear as words only when the references carry those
names.

Files are written under temporary names and renamed, so a report is never half written.
"""

from __future__ import annotations

import argparse
import decimal
import json
import logging
import math
import os
import sys
from typing import Any, Iterable, Mapping, Optional, Sequence

from synthpre_jax.study import stats
from synthpre_jax.study import token_equivalence

UNDEFINED = "n/a"
ALPHA = 0.05  # significance level of "natural beats scratch"
LEVEL = 0.95  # confidence level of every interval
FLAG = "⚑ not averaged"
NO_CELL = "-"
SELF = "—"


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
      raise ValueError(f"Record {name} lacks {missing}: not written by synthpre_jax.study.runner?")
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


def _percent_label(percent: Any, size: Optional[int]) -> str:
  """`10% (2,250 ex.)` of a record's `size_percent` and example count (`10%` without
  a count)."""
  text = format(decimal.Decimal(str(percent)).normalize(), "f") + "%"
  return text if size is None else f"{text} ({size:,} ex.)"


def _ref(name: str, word: str) -> str:
  """A reference source in prose: the plain word when the source is named it (the
  usual `natural` / `scratch`), else its name in backticks."""
  return word if name == word else f"`{name}`"


Key = tuple[str, str, Optional[int]]  # (task, source, size)


class Summary:
  """Per-seed scores grouped by (task, source, size), the reference sources' names, and
  the statistics the report shows. Raises ValueError when two records share task,
  source, size and seed."""

  def __init__(self, records: Sequence[dict[str, Any]], *, natural: str = "natural",
               scratch: str = "scratch", source_order: Iterable[str] = (),
               task_order: Iterable[str] = (), alpha: float = ALPHA):
    self.records = list(records)
    self.natural, self.scratch, self.alpha = natural, scratch, alpha
    self.by_seed: dict[Key, dict[int, float]] = {}
    self.metric: dict[str, str] = {}
    self.examples: dict[tuple[str, Optional[int]], Optional[int]] = {}
    self.percent: dict[tuple[str, Optional[int]], Any] = {}  # records' size_percent
    cell_of: dict[tuple[str, str, Optional[int], int], str] = {}
    for r in self.records:
      seeds = self.by_seed.setdefault((r["task"], r["source"], r["size"]), {})
      seed = int(r["seed"])
      if seed in seeds:
        raise ValueError(f"Records {cell_of[(r['task'], r['source'], r['size'], seed)]} "
                         f"and {r['cell_id']} are the same cell (task, source, size and "
                         "seed): remove one of them.")
      seeds[seed] = float(r["score"])
      cell_of[(r["task"], r["source"], r["size"], seed)] = r["cell_id"]
      self.metric.setdefault(r["task"], r["metric"])
      if r.get("train_examples") is not None:
        self.examples[(r["task"], r["size"])] = int(r["train_examples"])
      if r.get("size_percent") is not None:
        self.percent[(r["task"], r["size"])] = r["size_percent"]
    seen_sources = list(dict.fromkeys(r["source"] for r in self.records))
    seen_tasks = list(dict.fromkeys(r["task"] for r in self.records))
    source_order, task_order = list(source_order), list(task_order)
    self.sources = ([s for s in source_order if s in seen_sources] +
                    [s for s in seen_sources if s not in source_order])
    self.tasks = ([t for t in task_order if t in seen_tasks] +
                  [t for t in seen_tasks if t not in task_order])

  def sizes(self, task: str) -> list[Optional[int]]:
    return sorted({k[2] for k in self.by_seed if k[0] == task}, key=_size_key)

  def largest_size(self, task: str) -> Optional[int]:
    return self.sizes(task)[-1]

  def size_label(self, task: str, size: Optional[int]) -> str:
    """`10% (2,250 ex.)` for a percentage size (records with `size_percent`), else the
    example count or "full"."""
    percent = self.percent.get((task, size))
    return _size_label(size) if percent is None else _percent_label(percent, size)

  def size_at(self, task: str, size: Optional[int]) -> str:
    """The size after "@": `10% (2,250 ex.)`, `100 ex.` or `full ex.`."""
    if (task, size) in self.percent:
      return self.size_label(task, size)
    return f"{_size_label(size)} ex."

  def seed_counts(self) -> list[int]:
    """The distinct numbers of seeds per cell group, ascending."""
    return sorted({len(v) for v in self.by_seed.values()})

  def stat(self, task: str, source: str, size: Optional[int]) -> Optional[stats.MeanCI]:
    """Mean and 95% t interval over seeds, or None when the cell has no record."""
    values = self.by_seed.get((task, source, size))
    return stats.mean_ci(list(values.values()), LEVEL) if values else None

  def mean(self, task: str, source: str, size: Optional[int]) -> Optional[float]:
    s = self.stat(task, source, size)
    return None if s is None else s.mean

  def benefit(self, task: str, source: str, size: Optional[int]) -> Optional[float]:
    """% of the natural benefit, from the mean scores over seeds."""
    return benefit(self.mean(task, source, size), self.mean(task, self.scratch, size),
                   self.mean(task, self.natural, size))

  def paired(self, task: str, sources: Sequence[str], size: Optional[int]
             ) -> list[list[float]]:
    """Per source, its scores on the seeds every one of `sources` has (ascending seed);
    empty lists when they share no seed."""
    cells = [self.by_seed.get((task, s, size), {}) for s in sources]
    common = sorted(set.intersection(*(set(c) for c in cells)))
    return [[c[k] for k in common] for c in cells]

  def compare(self, task: str, source: str, reference: str, size: Optional[int],
              alternative: str = "two-sided") -> Optional[stats.SignFlipResult]:
    """Paired sign-flip test of source vs reference over their common seeds (None when
    they share none)."""
    a, b = self.paired(task, [source, reference], size)
    return stats.paired_sign_flip_test(a, b, alternative) if a else None

  def gap(self, task: str, source: str, size: Optional[int],
          reference: Optional[str] = None
          ) -> Optional[tuple[stats.MeanCI, stats.SignFlipResult]]:
    """source - reference (default scratch) over the seeds both have, paired by seed:
    the mean difference with its t interval over the per-seed differences, and the
    two-sided paired sign-flip test. None when they share no seed."""
    a, b = self.paired(task, [source, reference or self.scratch], size)
    if not a:
      return None
    return (stats.mean_ci([x - y for x, y in zip(a, b)], LEVEL),
            stats.paired_sign_flip_test(a, b))

  def natural_test(self, task: str, size: Optional[int]) -> Optional[stats.SignFlipResult]:
    """The one-sided paired test natural > scratch."""
    return self.compare(task, self.natural, self.scratch, size, "greater")

  def natural_beats_scratch(self, task: str, size: Optional[int]) -> bool:
    """Whether natural beats scratch significantly (one-sided p <= alpha)."""
    test = self.natural_test(task, size)
    return test is not None and test.p_value <= self.alpha

  def flag_reason(self, task: str, size: Optional[int]) -> Optional[str]:
    """Why the task is flagged at that size (left out of averages), or None."""
    test = self.natural_test(task, size)
    if test is None:
      return (f"no seed has both {self.natural} and {self.scratch} scores, so "
              f"{self.natural} cannot be tested against {self.scratch}")
    if test.p_value <= self.alpha:
      return None
    reason = (f"{self.natural} does not beat {self.scratch} significantly (one-sided "
              f"paired sign-flip p = {format_p_value(test)} > {self.alpha:g}, "
              f"{test.n} paired seed(s)")
    floor = stats.smallest_p_value(test.n, "greater")
    if floor > self.alpha:
      reason += (f"; with {test.n} seed(s) the smallest possible p is 1/2^{test.n} = "
                 f"{floor:.3g}, so it can never be significant")
    return reason + ")"

  def benefit_ci(self, task: str, source: str, size: Optional[int]
                 ) -> Optional[stats.BenefitCI]:
    """% of the natural benefit (`benefit`, from all seeds' means) with the paired
    bootstrap interval over the seeds that source, scratch and natural share (None when
    they share none)."""
    triple = self.paired(task, [source, self.scratch, self.natural], size)
    if not triple[0]:
      return None
    ci = stats.benefit_bootstrap_ci([tuple(triple)], level=LEVEL)
    return ci._replace(estimate=self.benefit(task, source, size))

  def averaged_tasks(self, source: str) -> list[str]:
    """The tasks (at their largest size) in the source's average: natural beats scratch
    significantly there and source, scratch and natural share a seed."""
    return [t for t in self.tasks
            if self.natural_beats_scratch(t, self.largest_size(t))
            and self.paired(t, [source, self.scratch, self.natural], self.largest_size(t))[0]]

  def average_benefit(self, source: str) -> tuple[Optional[stats.BenefitCI], list[str]]:
    """(mean `benefit` over the averaged tasks with the paired bootstrap interval of
    that mean, those tasks); (None, []) when no task qualifies."""
    tasks = self.averaged_tasks(source)
    if not tasks:
      return None, []
    triples = [tuple(self.paired(t, [source, self.scratch, self.natural],
                                 self.largest_size(t))) for t in tasks]
    ci = stats.benefit_bootstrap_ci(triples, level=LEVEL)
    values = [self.benefit(t, source, self.largest_size(t)) for t in tasks]
    return ci._replace(estimate=sum(values) / len(values)), tasks


# --- formatting ---------------------------------------------------------------------------

def _number_format(mean: float) -> str:
  """2 decimals for scores in % (exact match, ROUGE), 3 for fractions (accuracies)."""
  return ".2f" if abs(mean) >= 10 else ".3f"


def format_score(stat: Optional[Sequence[Any]]) -> str:
  """`mean [low, high]` of a (mean, interval half-width or None, seeds) tuple such as
  stats.MeanCI; `mean [n/a: 1 seed]` without an interval; "-" for no cell."""
  if stat is None:
    return NO_CELL
  mean, half_width, n = stat[0], stat[1], stat[2]
  fmt = _number_format(mean)
  if half_width is None:
    return f"{mean:{fmt}} [{UNDEFINED}: {n} seed{'s' if n != 1 else ''}]"
  return f"{mean:{fmt}} [{mean - half_width:{fmt}}, {mean + half_width:{fmt}}]"


def format_gap(stat: Optional[stats.MeanCI], fmt: str) -> str:
  """`+5.00 [+3.12, +6.88]` (signed, number format `fmt`); `+5.00 [n/a: 1 pair]`
  without an interval; "-" when nothing pairs up."""
  if stat is None:
    return NO_CELL
  if stat.half_width is None:
    return f"{stat.mean:+{fmt}} [{UNDEFINED}: {stat.n} pair{'s' if stat.n != 1 else ''}]"
  return f"{stat.mean:+{fmt}} [{stat.low:+{fmt}}, {stat.high:+{fmt}}]"


def format_benefit(value: Optional[float]) -> str:
  return UNDEFINED if value is None else f"{round(value)}%"  # round(): no "-0%"


def format_benefit_ci(ci: Optional[stats.BenefitCI]) -> str:
  """`49% [30%, 70%]`; `49% [n/a]` without an interval; "n/a" when undefined."""
  if ci is None or ci.estimate is None:
    return UNDEFINED
  if ci.low is None:
    return f"{format_benefit(ci.estimate)} [{UNDEFINED}]"
  return f"{format_benefit(ci.estimate)} [{format_benefit(ci.low)}, {format_benefit(ci.high)}]"


def format_p_value(test: stats.SignFlipResult) -> str:
  """3 significant digits; "≈" marks a Monte Carlo estimate."""
  return ("" if test.exact else "≈") + f"{test.p_value:.3g}"


def format_test(test: Optional[stats.SignFlipResult], seeds: int) -> str:
  """The p-value, with the number of pairs when fewer than the cell's seeds paired up;
  "-" when nothing pairs up."""
  if test is None:
    return NO_CELL
  text = format_p_value(test)
  return text if test.n == seeds else f"{text} ({test.n} pairs)"


def _cell_columns(summary: Summary, task: str, source: str, size: Optional[int]
                  ) -> list[str]:
  """seeds | score [CI] | % benefit [CI] | p vs scratch | p vs natural."""
  stat = summary.stat(task, source, size)
  if stat is None:
    return ["0", NO_CELL, NO_CELL, NO_CELL, NO_CELL]
  tests = [SELF if source == ref else format_test(summary.compare(task, source, ref, size),
                                                  stat.n)
           for ref in (summary.scratch, summary.natural)]
  ci = summary.benefit_ci(task, source, size)
  bene = format_benefit_ci(ci) if ci is not None else format_benefit(
      summary.benefit(task, source, size))
  pairs = len(summary.paired(task, [source, summary.scratch, summary.natural], size)[0])
  if ci is not None and ci.estimate is not None and pairs < max(
      len(summary.by_seed.get((task, s, size), {}))
      for s in (source, summary.scratch, summary.natural)):
    bene += f" (CI over {pairs} paired seeds)"
  return [str(stat.n), format_score(stat), bene, *tests]


def stat_head(summary: Summary) -> list[str]:
  """The headers of `_cell_columns`, naming the references ("% natural benefit",
  "p vs scratch", "p vs natural" for the usual names)."""
  benefit_head = ("% natural benefit" if summary.natural == "natural"
                  else f"% of {summary.natural}'s benefit")
  return ["seeds", f"score [{LEVEL:.0%} CI]", f"{benefit_head} [{LEVEL:.0%} CI]",
          f"p vs {summary.scratch}", f"p vs {summary.natural}"]


def _markdown(rows: Sequence[Sequence[str]]) -> str:
  rows = [rows[0], ["---"] * len(rows[0]), *rows[1:]]
  return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def _task_label(summary: Summary, task: str) -> str:
  size = summary.largest_size(task)
  label = f"{task} {summary.metric[task]} @ {summary.size_at(task, size)}"
  return label if summary.flag_reason(task, size) is None else f"{label} {FLAG}"


def _average_cell(summary: Summary, source: str) -> tuple[str, str]:
  """(label, value) of a source's average row."""
  ci, tasks = summary.average_benefit(source)
  if ci is None:
    if not any(summary.natural_beats_scratch(t, summary.largest_size(t))
               for t in summary.tasks):
      why = f"{summary.natural} beats {summary.scratch} significantly on no task"
    else:
      why = f"{source} has no scores paired with both references on those tasks"
    return "average", f"undefined: {why}"
  label = f"average over {', '.join(tasks)}"
  if len(tasks) < len(summary.tasks):
    label += f" ({len(tasks)} of {len(summary.tasks)} tasks)"
  return label, format_benefit_ci(ci)


def paper_table(summary: Summary) -> str:
  """Markdown: one row per source and task at the task's largest size (flagged tasks
  marked), then each source's average % of the natural benefit over unflagged tasks."""
  rows = [["source", "task", *stat_head(summary)]]
  for s in summary.sources:
    for t in summary.tasks:
      rows.append([s, _task_label(summary, t),
                   *_cell_columns(summary, t, s, summary.largest_size(t))])
    label, value = _average_cell(summary, s)
    rows.append([s, f"**{label}**", "", "", f"**{value}**", "", ""])
  return _markdown(rows)


def sizes_table(summary: Summary, task: str) -> str:
  """Markdown: one row per training-set size and source (flagged sizes marked)."""
  rows = [["size", "source", *stat_head(summary)]]
  for n in summary.sizes(task):
    label = summary.size_label(task, n) + (
        "" if summary.flag_reason(task, n) is None else f" {FLAG}")
    for s in summary.sources:
      rows.append([label, s, *_cell_columns(summary, task, s, n)])
  return _markdown(rows)


def gap_table(summary: Summary, task: str) -> str:
  """Markdown: per training-set size and source other than scratch (natural included),
  the gap source - scratch paired by seed (`Summary.gap`): pairs, mean with its t
  interval, two-sided sign-flip p. Sources without a record at a size are left out."""
  rows = [["size", "source", "paired seeds",
           f"gap to {summary.scratch} [{LEVEL:.0%} CI]", f"p vs {summary.scratch}"]]
  for n in summary.sizes(task):
    for s in summary.sources:
      if s == summary.scratch or (task, s, n) not in summary.by_seed:
        continue
      gap = summary.gap(task, s, n)
      if gap is None:
        rows.append([summary.size_label(task, n), s, "0", NO_CELL, NO_CELL])
        continue
      fmt = _number_format(summary.mean(task, s, n))  # the scores' scale
      rows.append([summary.size_label(task, n), s, str(gap[0].n), format_gap(gap[0], fmt),
                   format_p_value(gap[1])])
  return _markdown(rows)


def gap_how_to_read(summary: Summary) -> str:
  """The paragraph above the gap tables."""
  scratch = _ref(summary.scratch, "scratch")
  return (f"Per task, each source's gap to {scratch} at each training-set size "
          f"(\"To Pretrain or Not to Pretrain\", Wang, Khabsa & Ma 2020; the "
          f"{summary.natural} row is the gap between the references): the mean over seeds "
          f"of the per-seed difference source − {summary.scratch}, on the seeds both have "
          f"(`paired seeds`; the other seeds are dropped), with its {LEVEL:.0%} Student t "
          "interval over those differences, and the two-sided paired sign-flip p of "
          f"`p vs {summary.scratch}`. The plot's right panel draws the same gaps and "
          "intervals.")


def comparison_table(summary: Summary, task: str, pairs: Sequence[Sequence[str]]) -> str:
  """Markdown: per pair (a, b), read as the hypothesis a > b, and training-set size:
  a - b paired by seed (`Summary.gap` with b as the reference) with its t interval, the
  one-sided paired sign-flip p of a > b, and the verdict at the report's alpha. Pairs
  without a common seed show no numbers."""
  rows = [["hypothesis", "size", "paired seeds", f"a − b [{LEVEL:.0%} CI]",
           "p (one-sided)", "verdict"]]
  for a, b in pairs:
    for n in summary.sizes(task):
      gap = summary.gap(task, a, n, reference=b)
      if gap is None:
        rows.append([f"{a} > {b}", summary.size_label(task, n), "0", NO_CELL, NO_CELL,
                     NO_CELL])
        continue
      ci = gap[0]
      test = summary.compare(task, a, b, n, "greater")
      fmt = _number_format(summary.mean(task, a, n))
      floor = stats.smallest_p_value(test.n, "greater")
      verdict = ("shown" if test.p_value <= summary.alpha else
                 f"cannot be shown with {test.n} seed(s) (p >= {floor:.3g})"
                 if floor > summary.alpha else
                 "not shown" + ("" if ci.mean > 0 else f" ({b} scores higher on average)"))
      rows.append([f"{a} > {b}", summary.size_label(task, n), str(ci.n),
                   format_gap(ci, fmt), format_p_value(test), verdict])
  return _markdown(rows)


def comparison_section(summary: Summary, pairs: Sequence[Sequence[str]]) -> list[str]:
  """Markdown lines of the "Pairwise comparisons" section ([] without pairs)."""
  if not pairs:
    return []
  lines = ["## Pairwise comparisons", "",
           "Chosen pairs of sources head to head (`study.comparisons`, or `--compare a:b`), "
           "each read as the hypothesis a > b (higher scores are better): per task and "
           "training-set size, the mean over seeds of the per-seed difference a − b on the "
           f"seeds both have, its {LEVEL:.0%} Student t interval, and the one-sided exact "
           f"paired sign-flip p of a > b; \"shown\" at p <= {summary.alpha:g} (with 5 "
           "seeds that needs a > b on every seed: p = 1/32). Not corrected for multiple "
           "comparisons. \"Not shown\" is not evidence that a and b are equal: the "
           "interval says how large a difference the seeds allow. The test (signs of "
           "the per-seed differences) and the t interval (their spread) can disagree, "
           "e.g. five small positive differences and one large one.", ""]
  for t in summary.tasks:
    lines += [f"### {t} ({summary.metric[t]})", "", comparison_table(summary, t, pairs), ""]
  return lines


def flag_notes(summary: Summary, task: str, sizes: Sequence[Optional[int]]) -> list[str]:
  """One Markdown bullet per flagged size of the task, saying why."""
  notes = []
  for n in sizes:
    reason = summary.flag_reason(task, n)
    if reason is not None:
      notes.append(f"- {FLAG.split()[0]} {task} @ {summary.size_at(task, n)}: {reason}.")
  return notes


def how_to_read(summary: Summary) -> str:
  """The paragraph naming the statistics, alpha, seed counts and bootstrap seed."""
  counts = summary.seed_counts()
  seeds = (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}")
  level = f"{LEVEL:.0%}"
  head = stat_head(summary)
  text = (
      f"**How to read this.** {summary.natural} and {summary.scratch} are the references; "
      f"this study has {seeds} seed(s) per cell (the `seeds` column). A score is the mean "
      f"over seeds with its {level} Student t confidence interval over the per-seed "
      f"scores ({UNDEFINED} with one seed). `{head[3]}` / `{head[4]}`: two-sided "
      "exact paired sign-flip permutation test on the per-seed differences (cells paired "
      f"by task, size and seed; all 2^n sign assignments for n <= {stats.EXACT_MAX_N} "
      f"pairs, else {stats.MONTE_CARLO_DRAWS} Monte Carlo assignments with numpy seed "
      f"{stats.MONTE_CARLO_SEED}, marked ≈); not corrected for multiple comparisons. "
      f"{head[2].split(' [')[0]} = 100 × (score − {summary.scratch}) / ({summary.natural} − "
      f"{summary.scratch}) from the mean scores; its {level} interval is a percentile "
      f"paired bootstrap ({stats.BOOTSTRAP_RESAMPLES} resamples of the seed indices, "
      f"drawn jointly for the source, {summary.scratch} and {summary.natural}, per task; "
      f"numpy seed {stats.BOOTSTRAP_SEED}; {UNDEFINED} with one seed or when a resample "
      f"has {summary.natural} == {summary.scratch}). A task is flagged \"{FLAG}\" and left "
      f"out of the average when {summary.natural} does not beat {summary.scratch} "
      f"significantly: one-sided paired sign-flip test {summary.natural} > "
      f"{summary.scratch}, alpha = {summary.alpha:g}.")
  floor_seeds = max(0, math.ceil(math.log2(1.0 / summary.alpha)))  # 1/2^n <= alpha
  if counts[0] < floor_seeds:
    text += (f" With fewer than {floor_seeds} seeds that test can never be significant "
             f"(its smallest p is 1/2^n > {summary.alpha:g}), so such tasks are always "
             "flagged.")
  return text


# --- provenance ---------------------------------------------------------------------------

PROVENANCE_KEYS = ("subset_seed", "data_seed", "source_checkpoint", "init_source",
                   "vocabulary", "code_version", "gin_config_hash")
NOT_RECORDED = "not recorded"


def _describe_checkpoint(ckpt: Any, what: str = "") -> str:
  if not isinstance(ckpt, Mapping):
    return f"{what}`{ckpt}`"
  path = ckpt.get("path") or ckpt.get("params_path")
  if not path:  # an init transform that reads no checkpoint
    return f"init {ckpt.get('kind', '?')}: {ckpt.get('description') or 'no checkpoint'}"
  rule = ckpt.get("rule")
  text = f"{what}`{path}` step {ckpt.get('step', '?')}"
  return text + (f" ({rule})" if rule not in (None, "") else "")


def _describe_vocabulary(vocab: Any) -> str:
  if not isinstance(vocab, Mapping):
    return str(vocab)
  return (f"{vocab.get('name', '?')} ({vocab.get('kind', '?')}, "
          f"{vocab.get('vocab_size', '?')} ids)")


def _describe_code(code: Any) -> str:
  if not isinstance(code, Mapping):
    return str(code)
  commit = code.get("git_commit")
  if not commit:
    sha = code.get("source_sha256")
    return f"sources {sha[:12]}" if sha else NOT_RECORDED
  return commit[:10] + ("+dirty" if code.get("git_dirty") else "")


def _distinct(records: Sequence[Mapping[str, Any]], describe) -> str:
  values = [describe(r) for r in records]
  return "; ".join(dict.fromkeys(v for v in values if v)) or NOT_RECORDED


def _checkpoints_used(r: Mapping[str, Any]) -> Optional[str]:
  if "source_checkpoint" not in r and "init_source" not in r:
    return None
  parts = []
  if r.get("source_checkpoint"):
    parts.append(_describe_checkpoint(r["source_checkpoint"]))
  if r.get("init_source"):
    kind = r["init_source"].get("kind", "MomentMatchingInit")
    what = {"MomentMatchingInit": "statistics of ",
            "LSTMEmbeddingFromT5": "input embedding of "}.get(kind, f"{kind} from ")
    parts.append(_describe_checkpoint(r["init_source"], what))
  return ", ".join(parts) or "none (no checkpoint read)"


def provenance_section(summary: Summary) -> list[str]:
  """Markdown lines: per source, the checkpoint step(s) read, the vocabulary and the
  code version, from the records' provenance fields; a note when no record has any."""
  lines = ["## Provenance", ""]
  if not any(r.get(k) is not None for r in summary.records for k in PROVENANCE_KEYS):
    return lines + ["The records carry no provenance fields (written before records "
                    "had them).", ""]
  rows = [["source", "checkpoint read (step, rule)", "vocabulary", "code version",
           "records with provenance"]]
  for s in summary.sources:
    mine = [r for r in summary.records if r["source"] == s]
    with_any = sum(any(k in r for k in PROVENANCE_KEYS) for r in mine)
    rows.append([
        s, _distinct(mine, _checkpoints_used),
        _distinct(mine, lambda r: r.get("vocabulary") and _describe_vocabulary(r["vocabulary"])),
        _distinct(mine, lambda r: r.get("code_version") and _describe_code(r["code_version"])),
        f"{with_any} of {len(mine)}"])
  return lines + [_markdown(rows), ""]


# --- plots --------------------------------------------------------------------------------

def _savefig_atomic(fig, path: str) -> None:
  tmp = path + ".tmp"
  fig.savefig(tmp, dpi=100, format="png")
  os.replace(tmp, path)


def plot_curves(summary: Summary, task: str, path: str) -> Optional[str]:
  """Score vs training examples (log x; error bars: 95% t intervals over seeds) and the
  gap to scratch paired by seed (`Summary.gap`; error bars: its 95% t intervals); x
  ticks labelled `10% (2,250 ex.)` for percentage sizes. Returns a note when some
  points had no known example count (full training set of unknown size)."""
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
      ax_score.errorbar([x for x, _ in points], [st.mean for _, st in points],
                        yerr=[st.half_width or 0.0 for _, st in points], marker="o",
                        capsize=3, label=s, color=color)
    if s == summary.scratch:
      continue
    gaps = [(summary.examples[(task, n)], summary.gap(task, s, n)) for n in sizes]
    gaps = [(x, g[0]) for x, g in gaps if g is not None]
    if gaps:
      ax_gap.errorbar([x for x, _ in gaps], [g.mean for _, g in gaps],
                      yerr=[g.half_width or 0.0 for _, g in gaps], marker="o", capsize=3,
                      label=s, color=color)
  metric = summary.metric[task]
  ax_score.set(xscale="log", xlabel="training examples", ylabel=metric,
               title=f"{task}: {metric} vs training-set size")
  ax_gap.axhline(0.0, color="gray", lw=0.8)
  ax_gap.set(xscale="log", xlabel="training examples",
             ylabel=f"{metric} - {summary.scratch}",
             title=f"{task}: gap to {summary.scratch} (paired, {LEVEL:.0%} t CI)")
  for ax in (ax_score, ax_gap):
    ax.grid(alpha=0.3)
    if any((task, n) in summary.percent for n in sizes):
      ax.minorticks_off()
      ax.set_xticks([summary.examples[(task, n)] for n in sizes],
                    [summary.size_label(task, n) for n in sizes], rotation=30, ha="right",
                    fontsize=7)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  _savefig_atomic(fig, path)
  plt.close(fig)
  if dropped:
    return (f"sizes {', '.join(summary.size_label(task, n) for n in dropped)} are not "
            "plotted: their number of training examples is unknown (set the task's "
            "`train_size` in the study).")
  return None


def plot_param_stats(study_dir: str, study_json: dict[str, Any], path: str
                     ) -> tuple[list[str], list[str]]:
  """The parameter-statistics comparison of the pre-trained sources' checkpoints.
  Returns (labels plotted, notes)."""
  from synthpre_jax.init import param_stats  # pylint: disable=g-import-not-at-top

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


# --- natural-token equivalence ------------------------------------------------------------

def token_curves(summary: Summary) -> tuple[dict[str, dict[str, float]], list[str]]:
  """({run: {`<run>@<step>` source: its natural_tokens}}, notes) from the records that
  carry `natural_run` (synthpre_jax.study.runner token_steps); a source whose records lack
  `natural_tokens` is left out with a note."""
  curves: dict[str, dict[str, float]] = {}
  notes = []
  for s in summary.sources:
    mine = [r for r in summary.records if r["source"] == s and r.get("natural_run")]
    if not mine:
      continue
    tokens = sorted({r.get("natural_tokens") for r in mine}, key=lambda v: (v is None, v))
    if tokens[0] is None:
      notes.append(f"{s}: its records have no natural_tokens (a checkpoint saved before "
                   "checkpoints recorded tokens_per_step), so it is not on the curve.")
    elif len(tokens) > 1:
      notes.append(f"{s}: its records disagree on natural_tokens ({tokens}); left out.")
    else:
      curves.setdefault(mine[0]["natural_run"], {})[s] = float(tokens[0])
  return curves, notes


def format_tokens(value: float, smallest: float = 0.0, largest: float = math.inf) -> str:
  """3 significant digits with k/M/B/T; "below <smallest>" for -inf, "beyond <largest>"
  for +inf (an equivalent outside the curve)."""
  if value == -math.inf:
    return f"below {format_tokens(smallest)}"
  if value == math.inf:
    return f"beyond {format_tokens(largest)}"
  for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= scale:
      return f"{value / scale:.3g}{suffix}"
  return f"{value:.3g}"


def format_equivalence(ci: token_equivalence.EquivalenceCI, smallest: float,
                       largest: float) -> str:
  """`1.2M [800k, 2.1M]`, bounds outside the curve as "below 0" / "beyond 4.1M"."""
  text = format_tokens(ci.estimate, smallest, largest)
  if ci.low is None:
    return f"{text} [{UNDEFINED}: 1 seed]"
  return (f"{text} [{format_tokens(ci.low, smallest, largest)}, "
          f"{format_tokens(ci.high, smallest, largest)}]")


def _curve_points(summary: Summary, curve: Mapping[str, float], task: str,
                  size: Optional[int]) -> list[tuple[float, str, list[float]]]:
  points = [(tokens, s, list(summary.by_seed[(task, s, size)].values()))
            for s, tokens in curve.items() if (task, s, size) in summary.by_seed]
  return sorted(points)


def token_table(summary: Summary, run: str, curve: Mapping[str, float], task: str,
                size: Optional[int]) -> Optional[str]:
  """Markdown: the curve's points (tokens, score, isotonic fit), then every other
  source's score and equivalent natural tokens with its bootstrap interval; None with
  fewer than two curve points."""
  points = _curve_points(summary, curve, task, size)
  if len(points) < 2:
    return None
  tokens = [p[0] for p in points]
  fitted = token_equivalence.isotonic_fit([sum(p[2]) / len(p[2]) for p in points],
                                          [len(p[2]) for p in points])
  head = ["source", "seeds", f"score [{LEVEL:.0%} CI]",
          f"{run} pre-training tokens [{LEVEL:.0%} CI]"]
  rows = [head]
  for (tok, s, scores), fit in zip(points, fitted):
    rows.append([s, str(len(scores)), format_score(stats.mean_ci(scores, LEVEL)),
                 f"{format_tokens(tok)} (curve; fit {fit:{_number_format(fit)}})"])
  for s in summary.sources:
    scores = summary.by_seed.get((task, s, size))
    if s in curve or not scores:
      continue
    ci = token_equivalence.equivalence_ci(tokens, [p[2] for p in points],
                                          list(scores.values()), level=LEVEL)
    rows.append([s, str(len(scores)), format_score(stats.mean_ci(list(scores.values()), LEVEL)),
                 format_equivalence(ci, tokens[0], tokens[-1])])
  return _markdown(rows)


def plot_token_curve(summary: Summary, run: str, curve: Mapping[str, float], task: str,
                     path: str) -> bool:
  """Per size, score vs `run`'s pre-training tokens (symlog x; error bars: 95% t
  intervals; dashed: the isotonic fit) with every other source as a horizontal line.
  Returns False (nothing written) when no size has two curve points."""
  sizes = [n for n in summary.sizes(task) if len(_curve_points(summary, curve, task, n)) > 1]
  if not sizes:
    return False
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, n in zip(axes[0], sizes):
    points = _curve_points(summary, curve, task, n)
    x = [p[0] for p in points]
    cis = [stats.mean_ci(p[2], LEVEL) for p in points]
    ax.errorbar(x, [c.mean for c in cis], yerr=[c.half_width or 0.0 for c in cis],
                marker="o", ls="none", capsize=3, color="black", label=f"{run} (by step)")
    fitted = token_equivalence.isotonic_fit([c.mean for c in cis], [c.n for c in cis])
    dense = [a + (b - a) * i / 32 for a, b in zip(x, x[1:]) for i in range(33)]
    ax.plot(dense, [float(v) for v in np.interp(dense, x, fitted)], ls="--", color="gray",
            lw=1, label="isotonic fit (linear in tokens)")
    others = [s for s in summary.sources if s not in curve and (task, s, n) in summary.by_seed]
    for i, s in enumerate(others):
      ax.axhline(summary.mean(task, s, n), color=colors[i % len(colors)], lw=1.2, label=s)
    positive = [v for v in x if v > 0]
    if positive:
      ax.set_xscale("symlog", linthresh=min(positive))
    ax.set(xlabel=f"{run} pre-training tokens", ylabel=summary.metric[task],
           title=f"{task} @ {summary.size_at(task, n)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  _savefig_atomic(fig, path)
  plt.close(fig)
  return True


def token_section(summary: Summary, files_dir: str) -> list[str]:
  """Markdown lines of the "Natural-token equivalence" section ([] when no record
  carries natural_run), with one plot per run and task in `files_dir`."""
  curves, notes = token_curves(summary)
  if not curves and not notes:
    return []
  lines = ["## Natural-token equivalence", "",
           "The pre-training tokens of a run fine-tuned from several of its steps "
           "(`<run>@<step>`: step x batch x (inputs + targets) positions, padding "
           "included) that give the same downstream score as each other source. The "
           "curve's mean scores are made non-decreasing (isotonic regression weighted by "
           "seeds) and joined linearly in tokens; the equivalent is the fewest tokens at "
           "which that fit reaches the source's mean score, \"below\" the curve's first "
           "point or \"beyond\" its last when outside it. Interval: "
           f"{LEVEL:.0%} percentile bootstrap ({token_equivalence.BOOTSTRAP_RESAMPLES} "
           "resamples; every curve point's and the source's seeds resampled "
           f"independently; numpy seed {token_equivalence.BOOTSTRAP_SEED}).", ""]
  lines += [f"- {note}" for note in notes] + ([""] if notes else [])
  rel = os.path.basename(files_dir)
  for run, curve in curves.items():
    for t in summary.tasks:
      tables = [(n, token_table(summary, run, curve, t, n)) for n in summary.sizes(t)]
      tables = [(n, table) for n, table in tables if table is not None]
      if not tables:
        lines += [f"({run}, {t}: fewer than two curve points at every size.)", ""]
        continue
      for n, table in tables:
        lines += [f"### {t} ({summary.metric[t]}) @ {summary.size_at(t, n)}: {run} tokens",
                  "", table, ""]
      png = os.path.join(files_dir, f"tokens_{run}_{t}.png")
      if plot_token_curve(summary, run, curve, t, png):
        lines += [f"![{t}: score vs {run} pre-training tokens]({rel}/{os.path.basename(png)})",
                  ""]
  return lines


# --- the report ---------------------------------------------------------------------------

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
             else f"{', '.join(map(_size_label, worse))} examples")
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
    lines += [f"### {t} ({summary.metric[t]}): gap to {_ref(summary.scratch, 'scratch')} "
              "vs training-set size", "", gap_table(summary, t), ""]
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
