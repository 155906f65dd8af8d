"""A study's scores grouped for its report: records read, per-seed scores per (task,
source, size), and the statistics the report shows (`Summary`).

The % of the natural benefit and its statistics: docs/studies.md.
"""

from __future__ import annotations

import decimal
import json
import math
import os
from typing import Any, Iterable, Optional, Sequence

from synthpre_jax.study import stats


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


def plain_size_label(size: Optional[int]) -> str:
  return "full" if size is None else str(size)


def _percent_label(percent: Any, size: Optional[int]) -> str:
  """`10% (2,250 ex.)` of a record's `size_percent` and example count (`10%` without
  a count)."""
  text = format(decimal.Decimal(str(percent)).normalize(), "f") + "%"
  return text if size is None else f"{text} ({size:,} ex.)"


def reference_word(name: str, word: str) -> str:
  """A reference source in prose: the plain word when the source is named it (the
  usual `natural` / `scratch`), else its name in backticks."""
  return word if name == word else f"`{name}`"


def format_p_value(test: stats.SignFlipResult) -> str:
  """3 significant digits; "≈" marks a Monte Carlo estimate."""
  return ("" if test.exact else "≈") + f"{test.p_value:.3g}"


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
    return plain_size_label(size) if percent is None else _percent_label(percent, size)

  def size_at(self, task: str, size: Optional[int]) -> str:
    """The size after "@": `10% (2,250 ex.)`, `100 ex.` or `full ex.`."""
    if (task, size) in self.percent:
      return self.size_label(task, size)
    return f"{plain_size_label(size)} ex."

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
