"""The report's natural-token equivalence section: per run fine-tuned from several of its
steps (`<run>@<step>` sources), the curve of score vs pre-training tokens and each other
source's equivalent tokens (`synthpre_jax.study.token_equivalence`)."""

from __future__ import annotations

import math
import os
from typing import Mapping, Optional

import numpy as np

from synthpre_jax.study import stats
from synthpre_jax.study import token_equivalence
from synthpre_jax.study.plots import savefig_atomic
from synthpre_jax.study.summary import LEVEL, UNDEFINED, Summary
from synthpre_jax.study.tables import format_score, markdown_table, number_format


def token_curves(summary: Summary) -> tuple[dict[str, dict[str, float]], list[str]]:
  """({run: {`<run>@<step>` source: its natural_tokens}}, notes) from the records that
  carry `natural_run` (the study spec's token_steps, synthpre_jax/study/spec.py); a source whose records lack
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
                 f"{format_tokens(tok)} (curve; fit {fit:{number_format(fit)}})"])
  for s in summary.sources:
    scores = summary.by_seed.get((task, s, size))
    if s in curve or not scores:
      continue
    ci = token_equivalence.equivalence_ci(tokens, [p[2] for p in points],
                                          list(scores.values()), level=LEVEL)
    rows.append([s, str(len(scores)), format_score(stats.mean_ci(list(scores.values()), LEVEL)),
                 format_equivalence(ci, tokens[0], tokens[-1])])
  return markdown_table(rows)


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
  savefig_atomic(fig, path)
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
