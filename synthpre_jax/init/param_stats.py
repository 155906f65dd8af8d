"""Parameter statistics of checkpoints: a table per checkpoint, and a comparison plot.

    python -m synthpre_jax.param_stats /runs/scratch /runs/set /runs/natural \\
        --labels scratch,set,natural --output_dir /tmp/stats --plot

For each checkpoint (a run's MODEL_DIR, its checkpoints/ directory or one
checkpoints/<step> directory; the newest step is used) it writes
`<output_dir>/<label>.param_stats.csv` and `.json`: every tensor's name, shape, element
count, mean, population SD, min and max, then the pooled mean, SD, min and max of every
group of every grouping in `synthpre_jax.init.param_groups` (the statistics moment matching
would use). With `--plot`, `<output_dir>/param_stats.png` compares the checkpoints'
per-layer norm-scale means and kernel SDs (encoder and decoder). Arrays are read to host
memory; no accelerator is used.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from typing import Any, Optional, Sequence

from etils import epath

from synthpre_jax import checkpoints
from synthpre_jax.init import moment_matching as mm
from synthpre_jax.init import param_groups

CSV_COLUMNS = ("grouping", "group", "tensors", "shape", "count", "mean", "sd", "min",
               "max")
_LAYER_GROUP = re.compile(r"^(encoder|decoder)/layers_(\d+)/(kernels|norm_scales)$")


def _row(m: mm.Moments) -> dict[str, Any]:
  return {"count": m.count, "mean": m.mean, "sd": m.sd, "min": m.min, "max": m.max}


def checkpoint_stats(path: str, groupings: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """The statistics of one checkpoint as a JSON-able dict: `tensors` (one row per
  tensor), `groupings` ({grouping: [one row per group]}), `grouping_errors` (groupings
  that do not apply to this model, with the reason)."""
  params_path = checkpoints.resolve_params_path(path, macro="Checkpoint")
  per_tensor = mm.tensor_moments(mm.read_params(params_path))
  shapes = checkpoints.params_metadata(params_path)
  out: dict[str, Any] = {
      "checkpoint": str(params_path),
      "tensors": [{"name": n, "shape": list(shapes[n]), **_row(m)}
                  for n, m in per_tensor.items()],
      "groupings": {}, "grouping_errors": {}}
  for grouping in (groupings or list(param_groups.GROUPINGS)):
    try:
      groups = param_groups.make_groups(grouping, list(per_tensor))
    except ValueError as e:
      out["grouping_errors"][grouping] = str(e)
      continue
    pooled = mm.group_moments(groups, per_tensor)
    out["groupings"][grouping] = [{"group": k, "tensors": list(groups[k]), **_row(pooled[k])}
                                  for k in groups]
  return out


def write_table(stats: dict[str, Any], csv_path: str, json_path: str) -> None:
  """Writes one checkpoint's statistics as CSV (tensor rows, then group rows) and JSON."""
  with open(csv_path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for t in stats["tensors"]:
      writer.writerow({"grouping": "tensor", "group": t["name"], "tensors": 1,
                       "shape": "x".join(map(str, t["shape"])),
                       **{k: t[k] for k in ("count", "mean", "sd", "min", "max")}})
    for grouping, rows in stats["groupings"].items():
      for r in rows:
        writer.writerow({"grouping": grouping, "group": r["group"],
                         "tensors": len(r["tensors"]), "shape": "",
                         **{k: r[k] for k in ("count", "mean", "sd", "min", "max")}})
  with open(json_path, "w") as f:
    json.dump(stats, f, indent=1)


def per_layer_series(stats: dict[str, Any]) -> dict[tuple[str, str], list[tuple[int, float]]]:
  """{(stack, 'norm_mean' | 'kernel_sd'): [(layer, value), ...]} from the per_layer
  grouping of `checkpoint_stats`."""
  series: dict[tuple[str, str], list[tuple[int, float]]] = {}
  for row in stats["groupings"].get("per_layer", []):
    m = _LAYER_GROUP.match(row["group"])
    if not m:
      continue
    stack, layer, kind = m.group(1), int(m.group(2)), m.group(3)
    key = (stack, "norm_mean" if kind == "norm_scales" else "kernel_sd")
    series.setdefault(key, []).append(
        (layer, row["mean"] if kind == "norm_scales" else row["sd"]))
  return {k: sorted(v) for k, v in series.items()}


def plot(stats_by_label: dict[str, dict[str, Any]], png_path: str) -> None:
  """A 2x2 PNG: per-layer norm-scale mean and kernel SD, encoder and decoder, one line
  per checkpoint."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
  panels = [("encoder", "norm_mean"), ("decoder", "norm_mean"),
            ("encoder", "kernel_sd"), ("decoder", "kernel_sd")]
  titles = {"norm_mean": "norm-scale mean", "kernel_sd": "kernel SD"}
  for ax, (stack, kind) in zip(axes.flat, panels):
    for label, stats in stats_by_label.items():
      points = per_layer_series(stats).get((stack, kind), [])
      if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_title(f"{stack}: per-layer {titles[kind]}")
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
  axes[0, 0].legend()
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)


def _default_labels(paths: Sequence[str]) -> list[str]:
  labels = []
  for p in paths:
    params = checkpoints.resolve_params_path(p, macro="Checkpoint")
    step_dir = params.parent
    run = step_dir.parent.parent if step_dir.parent.name == "checkpoints" else step_dir.parent
    base = f"{run.name}_step{step_dir.name}" if step_dir.name.isdigit() else step_dir.name
    label, i = base, 2
    while label in labels:
      label, i = f"{base}_{i}", i + 1
    labels.append(label)
  return labels


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m synthpre_jax.param_stats",
      description="Per-tensor and per-group parameter statistics of checkpoints "
                  "(CSV + JSON), and optionally a per-layer comparison plot.")
  parser.add_argument("checkpoints", nargs="+",
                      help="MODEL_DIR, its checkpoints/ directory, or a checkpoints/<step> "
                           "directory (the newest step is used).")
  parser.add_argument("--labels", default=None,
                      help="Comma-separated names, one per checkpoint (default: the run "
                           "directory's name and step).")
  parser.add_argument("--output_dir", default=".", help="Where the tables and plot go.")
  parser.add_argument("--groupings", default=None,
                      help="Comma-separated groupings to tabulate (default: all of "
                           f"{', '.join(param_groups.GROUPINGS)}).")
  parser.add_argument("--plot", action="store_true",
                      help="Also write param_stats.png comparing the checkpoints.")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  # Relative paths are taken from the working directory, once, here.
  args.checkpoints = [checkpoints.absolute_path(p) for p in args.checkpoints]
  args.output_dir = checkpoints.absolute_path(args.output_dir)
  try:
    groupings = args.groupings.split(",") if args.groupings else None
    for g in groupings or []:
      param_groups.check_grouping_name(g)
    if groupings and args.plot and "per_layer" not in groupings:
      groupings.append("per_layer")  # the plot's source
    labels = (args.labels.split(",") if args.labels else _default_labels(args.checkpoints))
    if len(labels) != len(args.checkpoints) or len(set(labels)) != len(labels):
      raise ValueError(f"--labels needs {len(args.checkpoints)} distinct names, one per "
                       f"checkpoint; got {labels}.")
    out_dir = epath.Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_stats = {}
    for label, path in zip(labels, args.checkpoints):
      stats = checkpoint_stats(path, groupings)
      all_stats[label] = stats
      csv_path = out_dir / f"{label}.param_stats.csv"
      json_path = out_dir / f"{label}.param_stats.json"
      write_table(stats, str(csv_path), str(json_path))
      print(f"{label}: {len(stats['tensors'])} tensors from {stats['checkpoint']} -> "
            f"{csv_path}, {json_path}")
    if args.plot:
      png = out_dir / "param_stats.png"
      plot(all_stats, str(png))
      print(f"plot -> {png}")
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
