"""The report's plots: score and gap to scratch vs training-set size, and the
parameter statistics of the pre-trained checkpoints. matplotlib is optional: imported
when a plot is drawn."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from synthpre_jax.init import param_stats
from synthpre_jax.study.summary import LEVEL, Summary


def savefig_atomic(fig, path: str) -> None:
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
  savefig_atomic(fig, path)
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
