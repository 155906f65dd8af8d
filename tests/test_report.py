"""`python -m synthpre_jax.report`: the benefit formula and the report, on hand-made records."""
import json
import os

import pytest

from synthpre_jax import report


def test_benefit_formula():
  assert report.benefit(30.0, 10.0, 50.0) == pytest.approx(50.0)
  assert report.benefit(10.0, 10.0, 50.0) == pytest.approx(0.0)
  assert report.benefit(50.0, 10.0, 50.0) == pytest.approx(100.0)
  assert report.benefit(5.0, 10.0, 50.0) == pytest.approx(-12.5)   # worse than scratch
  assert report.benefit(60.0, 10.0, 50.0) == pytest.approx(125.0)  # better than natural
  # Natural no better than scratch: undefined, not a division by zero.
  assert report.benefit(30.0, 20.0, 20.0) is None
  assert report.benefit(None, 10.0, 50.0) is None
  assert report.benefit(30.0, None, 50.0) is None


def _record(source, task, size, seed, score, metric="exact_match", train_examples=None):
  size_label = "nall" if size is None else f"n{size}"
  return {"cell_id": f"{source}.{task}.{size_label}.seed{seed}", "source": source,
          "task": task, "size": size, "seed": seed, "metric": metric, "score": score,
          "train_examples": train_examples if train_examples is not None else size}


RECORDS = [
    # task a, two sizes, two seeds: scratch 10/12 (mean 11), natural 50/54 (52),
    # syn 30/32 (31) at size 100 -> benefit (31 - 11) / (52 - 11) = 48.78%.
    *[_record(s, "a", 100, k, v) for s, vals in
      {"scratch": (10, 12), "natural": (50, 54), "syn": (30, 32)}.items()
      for k, v in enumerate(vals)],
    *[_record(s, "a", 10, k, v) for s, vals in
      {"scratch": (1, 1), "natural": (5, 5), "syn": (3, 3)}.items()
      for k, v in enumerate(vals)],
    # task b: natural == scratch -> undefined benefit.
    *[_record(s, "b", None, 0, v, metric="rouge1", train_examples=1000)
      for s, v in {"scratch": 20.0, "natural": 20.0, "syn": 25.0}.items()],
]


def test_summary_mean_sd_and_average_over_defined_tasks():
  summary = report.Summary(RECORDS, source_order=["scratch", "natural", "syn"])
  mean, sd, n = summary.stat("a", "syn", 100)
  assert (mean, n) == (31.0, 2) and sd == pytest.approx(2 ** 0.5)  # sample SD of 30, 32
  assert summary.largest_size("a") == 100 and summary.largest_size("b") is None
  assert summary.benefit("a", "syn", 100) == pytest.approx(100 * 20 / 41)
  assert summary.benefit("a", "syn", 10) == pytest.approx(50.0)
  assert summary.benefit("b", "syn", None) is None
  avg, count = summary.average_benefit("syn")
  assert count == 1 and avg == pytest.approx(100 * 20 / 41)
  table = report.paper_table(summary)
  lines = table.splitlines()
  assert lines[0].startswith("| source | a exact_match @ 100 ex. | % benefit | b rouge1 @ full ex.")
  syn_row = next(line for line in lines if line.startswith("| syn |"))
  assert "31.00 ± 1.41 (2 seeds)" in syn_row and "49%" in syn_row
  assert "25.00 | n/a" in syn_row and "49% (1 of 2 tasks)" in syn_row
  natural_row = next(line for line in lines if line.startswith("| natural |"))
  assert "52.00 ± 2.83 (2 seeds) | 100%" in natural_row
  assert report.format_score((0.61234, None, 1)) == "0.612"  # fractions: 3 decimals


def test_write_report_from_records(tmp_path, capsys):
  study_dir = tmp_path / "study"
  (study_dir / "records").mkdir(parents=True)
  for r in RECORDS:
    (study_dir / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
  (study_dir / "study.json").write_text(json.dumps({
      "name": "hand", "sources": {"scratch": {}, "natural": {}, "syn": {}},
      "tasks": {"a": {}, "b": {}}, "task_order": ["b", "a"],
      "natural": "natural", "scratch": "scratch",
      "cells": [r["cell_id"] for r in RECORDS] + ["syn.c.n5.seed0"]}))
  assert report.main([str(study_dir)]) == 0
  out = capsys.readouterr().out
  text = (study_dir / "report.md").read_text()
  table = out.split("report:")[0].strip()
  assert table in text  # the printed table is the report's
  assert text.index("| b rouge1") < text.index("a exact_match")  # study.json's order
  assert "Missing (not run, running or failed): 1 of 16 cells: syn.c.n5.seed0" in text
  files = study_dir / "report_files"
  assert sorted(os.listdir(files)) == ["curves_a.png", "curves_b.png"]
  assert all((files / f).read_bytes().startswith(b"\x89PNG") for f in os.listdir(files))
  assert "![a: score and gap to scratch" in text and "param_stats" not in text
  # --out elsewhere; no temporary file is left behind.
  out_md = tmp_path / "elsewhere" / "r.md"
  out_md.parent.mkdir()
  assert report.main([str(study_dir), "--out", str(out_md)]) == 0
  assert (tmp_path / "elsewhere" / "r_files" / "curves_a.png").exists()
  assert not [p for p in tmp_path.rglob("*.tmp*")]


def test_report_bad_inputs(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 1
  assert "has no records/ directory" in capsys.readouterr().err
  (tmp_path / "records").mkdir()
  assert report.main([str(tmp_path)]) == 1
  assert "No records" in capsys.readouterr().err
  (tmp_path / "records" / "x.json").write_text(json.dumps({"source": "s"}))
  assert report.main([str(tmp_path)]) == 1
  assert "lacks" in capsys.readouterr().err
