"""The report's Markdown tables and their prose: formatting of scores, intervals and
p-values, the main table, every size, the gaps to scratch and the pairwise comparisons."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from synthpre_jax.study import stats
from synthpre_jax.study.summary import (FLAG, LEVEL, NO_CELL, SELF, UNDEFINED, Summary,
                                        format_p_value, reference_word)


# --- formatting ---------------------------------------------------------------------------

def number_format(mean: float) -> str:
  """2 decimals for scores in % (exact match, ROUGE), 3 for fractions (accuracies)."""
  return ".2f" if abs(mean) >= 10 else ".3f"


def format_score(stat: Optional[Sequence[Any]]) -> str:
  """`mean [low, high]` of a (mean, interval half-width or None, seeds) tuple such as
  stats.MeanCI; `mean [n/a: 1 seed]` without an interval; "-" for no cell."""
  if stat is None:
    return NO_CELL
  mean, half_width, n = stat[0], stat[1], stat[2]
  fmt = number_format(mean)
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


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
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
  return markdown_table(rows)


def sizes_table(summary: Summary, task: str) -> str:
  """Markdown: one row per training-set size and source (flagged sizes marked)."""
  rows = [["size", "source", *stat_head(summary)]]
  for n in summary.sizes(task):
    label = summary.size_label(task, n) + (
        "" if summary.flag_reason(task, n) is None else f" {FLAG}")
    for s in summary.sources:
      rows.append([label, s, *_cell_columns(summary, task, s, n)])
  return markdown_table(rows)


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
      fmt = number_format(summary.mean(task, s, n))  # the scores' scale
      rows.append([summary.size_label(task, n), s, str(gap[0].n), format_gap(gap[0], fmt),
                   format_p_value(gap[1])])
  return markdown_table(rows)


def gap_how_to_read(summary: Summary) -> str:
  """The paragraph above the gap tables."""
  scratch = reference_word(summary.scratch, "scratch")
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
      fmt = number_format(summary.mean(task, a, n))
      floor = stats.smallest_p_value(test.n, "greater")
      verdict = ("shown" if test.p_value <= summary.alpha else
                 f"cannot be shown with {test.n} seed(s) (p >= {floor:.3g})"
                 if floor > summary.alpha else
                 "not shown" + ("" if ci.mean > 0 else f" ({b} scores higher on average)"))
      rows.append([f"{a} > {b}", summary.size_label(task, n), str(ci.n),
                   format_gap(ci, fmt), format_p_value(test), verdict])
  return markdown_table(rows)


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
