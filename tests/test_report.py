"""`python -m synthpre_jax.report`: the benefit formula and the report, on hand-made records."""
import itertools
import json
import math
import os

import pytest
from scipy import stats as scipy_stats

from synthpre_jax.study import report
from synthpre_jax.study import stats


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


def test_summary_intervals_and_no_average_with_two_seeds():
  summary = report.Summary(RECORDS, source_order=["scratch", "natural", "syn"])
  stat = summary.stat("a", "syn", 100)
  assert (stat.mean, stat.n) == (31.0, 2)
  assert stat.half_width == pytest.approx(12.706205)  # t_{0.975,1} * sqrt(2) / sqrt(2)
  assert summary.largest_size("a") == 100 and summary.largest_size("b") is None
  assert summary.benefit("a", "syn", 100) == pytest.approx(100 * 20 / 41)
  assert summary.benefit("a", "syn", 10) == pytest.approx(50.0)
  assert summary.benefit("b", "syn", None) is None
  # Two seeds: natural > scratch on both, but one-sided p = 1/4 > 0.05: flagged.
  assert summary.natural_test("a", 100).p_value == pytest.approx(1 / 4)
  assert not summary.natural_beats_scratch("a", 100)
  assert "1/2^2 = 0.25" in summary.flag_reason("a", 100)
  assert summary.average_benefit("syn") == (None, [])
  table = report.paper_table(summary)
  lines = table.splitlines()
  assert lines[0] == ("| source | task | seeds | score [95% CI] | % natural benefit [95% CI] "
                      "| p vs scratch | p vs natural |")
  syn_a = next(line for line in lines if line.startswith("| syn | a exact_match @ 100 ex."))
  assert f"a exact_match @ 100 ex. {report.FLAG} | 2 | 31.00 [18.29, 43.71] | 49% [" in syn_a
  assert syn_a.endswith("| 0.5 | 0.5 |")  # 2 pairs, both the same sign: 2/4 two-sided
  syn_b = next(line for line in lines if line.startswith("| syn | b rouge1"))
  assert "| 1 | 25.00 [n/a: 1 seed] | n/a |" in syn_b
  syn_avg = next(line for line in lines if line.startswith("| syn | **average"))
  assert "undefined: natural beats scratch significantly on no task" in syn_avg
  natural_a = next(line for line in lines if line.startswith("| natural | a "))
  assert "| 52.00 [26.59, 77.41] | 100% [100%, 100%] | 0.5 | — |" in natural_a
  assert report.format_score((0.61234, None, 1)) == "0.612 [n/a: 1 seed]"  # 3 decimals
  assert report.format_score(stats.MeanCI(0.712, 0.011, 5)) == "0.712 [0.701, 0.723]"


def test_table_rows_start_with_the_source_and_show_single_seed_scores():
  # The shape synthpre_jax.study.runner's end-of-run check relies on.
  records = [_record("scratch", "t", 32, 0, 0.25), _record("set", "t", 32, 0, 0.5)]
  table = report.paper_table(report.Summary(records, natural="set"))
  for source, score in (("scratch", 0.25), ("set", 0.5)):
    row = next(line for line in table.splitlines() if line.startswith(f"| {source} |"))
    assert f"| {report.format_score((score, None, 1))} |" in row


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
  assert text.index("b rouge1 @ full ex.") < text.index("a exact_match @ 100")  # study.json
  assert "**How to read this.**" in text and "alpha = 0.05" in text
  assert "1 to 2 seed(s) per cell" in text and "With fewer than 5 seeds" in text
  assert f"numpy seed {stats.BOOTSTRAP_SEED}" in text
  assert "The records carry no provenance fields" in text
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


# --- five seeds: flagging and the average ---------------------------------------------------

GOOD = {"scratch": [10.0, 11.0, 12.0, 13.0, 14.0],   # natural > scratch on every seed
        "natural": [20.0, 22.0, 21.0, 25.0, 23.0],
        "syn": [15.0, 16.0, 17.0, 18.0, 19.0]}
TIE = {"scratch": [0.50, 0.52, 0.48, 0.51, 0.49],    # natural ~ scratch
       "natural": [0.52, 0.51, 0.49, 0.52, 0.48],
       "syn": [0.60, 0.60, 0.60, 0.60, 0.60]}


def _study_record(source, task, seed, score, **provenance):
  """A record with the keys synthpre_jax.study.records.make_record writes."""
  record = _record(source, task, 1000, seed, score)
  record.update({"version": 1, "study": "five", "mixture_or_task_name": f"{task}_train1000",
                 "metrics": {"exact_match": score}, "transfer_mode": "all_but_embeddings",
                 "result": {}, "cell_dir": f"/cells/{source}/{task}/n1000/seed{seed}",
                 "wall_time_s": 1.0, "written_at": "2025-01-01T00:00:00Z", **provenance})
  return record


def _write_study(study_dir, records):
  (study_dir / "records").mkdir(parents=True)
  for r in records:
    (study_dir / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))


def _five_seed_records():
  return [_study_record(source, task, seed, score)
          for task, table in (("good", GOOD), ("tie", TIE))
          for source, scores in table.items() for seed, score in enumerate(scores)]


def _hand_one_sided_p(d):
  observed = sum(d)
  sums = [sum(s * x for s, x in zip(signs, d))
          for signs in itertools.product((1, -1), repeat=len(d))]
  return sum(t >= observed - 1e-12 for t in sums) / len(sums)


def _main_section(text):
  return text.split("## % of the benefit of natural pre-training")[1].split(
      "## Every training-set size")[0]


def test_flagged_task_left_out_of_the_average(tmp_path):
  study_dir = tmp_path / "five"
  _write_study(study_dir, _five_seed_records())
  path, table = report.write_report(str(study_dir), param_stats_plot=False)
  text = open(path).read()
  main = _main_section(text)
  assert table in main
  rows = table.splitlines()
  good_rows = [r for r in rows if "| good exact_match @ 1000 ex." in r]
  tie_rows = [r for r in rows if "| tie exact_match @ 1000 ex." in r]
  assert len(good_rows) == len(tie_rows) == 3
  assert all(report.FLAG in r for r in tie_rows)  # flagged in the main table itself
  assert not any(report.FLAG in r for r in good_rows)
  # Only good is averaged: syn's average is its good benefit, 100 * 5 / 10.2 = 49%,
  # not the mean with tie's 100 * (0.6 - 0.5) / (0.504 - 0.5) = 2500%.
  syn_good = next(r for r in good_rows if r.startswith("| syn |")).split(" | ")
  syn_avg = next(r for r in rows if r.startswith("| syn | **average"))
  assert "**average over good (1 of 2 tasks)**" in syn_avg
  assert syn_good[4].startswith("49% [") and f"**{syn_good[4]}**" in syn_avg
  # Paired tests of syn on good: 5 positive / 5 negative differences -> 2/32 each.
  assert syn_good[5:] == ["0.0625", "0.0625 |"]
  # Why tie is flagged, with the one-sided p worked out by hand.
  p_tie = _hand_one_sided_p([n - s for n, s in zip(TIE["natural"], TIE["scratch"])])
  assert 0.05 < p_tie < 1
  assert (f"tie @ 1000 ex.: natural does not beat scratch significantly (one-sided "
          f"paired sign-flip p = {p_tie:.3g} > 0.05, 5 paired seed(s))") in main
  assert "good @ 1000 ex." not in main  # not flagged
  assert "5 seed(s) per cell" in main and "With fewer than" not in main


def test_summary_average_matches_the_per_task_bootstrap():
  summary = report.Summary(_five_seed_records())
  assert summary.natural_test("good", 1000).p_value == pytest.approx(1 / 32)
  assert summary.natural_beats_scratch("good", 1000)
  assert not summary.natural_beats_scratch("tie", 1000)
  assert summary.benefit("tie", "syn", 1000) == pytest.approx(2500.0)
  average, tasks = summary.average_benefit("syn")
  assert tasks == ["good"]
  assert average.estimate == pytest.approx(100 * 5 / 10.2)
  assert average == summary.benefit_ci("good", "syn", 1000)


def test_four_seeds_are_never_significant(tmp_path):
  records = [_study_record(source, "good", seed, scores[seed])
             for source, scores in GOOD.items() for seed in range(4)]
  study_dir = tmp_path / "four"
  _write_study(study_dir, records)
  path, table = report.write_report(str(study_dir), param_stats_plot=False)
  text = open(path).read()
  # natural > scratch on all 4 seeds, yet p = 1/16 > 0.05.
  assert "1/2^4 = 0.0625, so it can never be significant" in text
  assert "With fewer than 5 seeds that test can never be significant" in text
  assert all(report.FLAG in r for r in table.splitlines() if "| good " in r)
  syn_avg = next(r for r in table.splitlines() if r.startswith("| syn | **average"))
  assert "undefined: natural beats scratch significantly on no task" in syn_avg


def test_p_values_over_fewer_pairs_say_so():
  records = [r for r in _five_seed_records()
             if not (r["source"] == "syn" and r["seed"] == 4)]
  summary = report.Summary(records)
  row = next(r for r in report.paper_table(summary).splitlines()
             if r.startswith("| syn | good"))
  # syn has seeds 0-3: 4 pairs with scratch, all +5 -> two-sided 2/16.
  assert "| 4 | 16.50 [" in row and "| 0.125 | 0.125 |" in row
  assert summary.compare("good", "syn", "scratch", 1000).n == 4
  records = _five_seed_records()
  records[-1] = dict(records[-1], seed=7)  # a syn seed no reference has
  row = next(r for r in report.paper_table(report.Summary(records)).splitlines()
             if r.startswith("| syn | tie"))
  assert "| 0.125 (4 pairs) | 0.125 (4 pairs) |" in row  # 4 pairs, same sign: 2/16
  # The % is from all seeds' means (2500%); its interval from the 4 shared seeds.
  assert "| 2500% [n/a] (CI over 4 paired seeds) |" in row


def test_duplicate_cells_are_refused():
  records = _five_seed_records()
  with pytest.raises(ValueError, match="same cell"):
    report.Summary(records + [dict(records[0], cell_id="copy")])


def test_provenance_section(tmp_path):
  vocab = {"kind": "sentencepiece", "name": "t5", "sha256": "d6", "extra_ids": 100,
           "vocab_size": 32100}
  code = {"git_commit": "0123456789abcdef", "git_dirty": False, "source_sha256": "ff"}
  records = []
  for seed in range(2):
    common = {"vocabulary": vocab, "code_version": code, "subset_seed": seed,
              "data_seed": seed, "gin_config_hash": "abc"}
    records += [
        _study_record("scratch", "good", seed, 10.0 + seed, source_checkpoint=None,
                      **common),
        _study_record("natural", "good", seed, 20.0 + seed, **common, source_checkpoint={
            "path": "/pre/natural", "step": 80000 + 5000 * seed, "rule": "latest"}),
        _study_record("mm", "good", seed, 12.0 + seed, source_checkpoint=None, **common,
                      init_source={"kind": "MomentMatchingInit", "params_path": "/pre/set/4/params",
                                   "step": 4, "rule": "first_ge:0.99"}),
    ]
  records.append(_study_record("natural", "old", 0, 1.0))  # before provenance existed
  records.append(_study_record("norms", "good", 0, 11.0, source_checkpoint=None, init_source={
      "kind": "ConstantNorms", "description": "pre-attention norm scales = 0.4"}))
  summary = report.Summary(records)
  text = "\n".join(report.provenance_section(summary))
  rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
  assert "`/pre/natural` step 80000 (latest); `/pre/natural` step 85000 (latest)" in rows[
      "natural"]
  assert "2 of 3" in rows["natural"]  # the old record has none
  assert "none (no checkpoint read)" in rows["scratch"]
  assert "statistics of `/pre/set/4/params` step 4 (first_ge:0.99)" in rows["mm"]
  assert all("t5 (sentencepiece, 32100 ids)" in rows[s] for s in ("natural", "scratch", "mm"))
  assert "init ConstantNorms: pre-attention norm scales = 0.4" in rows["norms"]
  assert "| not recorded | not recorded | 1 of 1 |" in rows["norms"]
  assert "0123456789" in rows["mm"] and "+dirty" not in rows["mm"]
  old = "\n".join(report.provenance_section(report.Summary([_study_record("x", "t", 0, 1.0)])))
  assert "carry no provenance fields" in old and "| source |" not in old
  # And in the written report.
  study_dir = tmp_path / "prov"
  _write_study(study_dir, records)
  path, _ = report.write_report(str(study_dir), param_stats_plot=False)
  assert "## Provenance" in open(path).read()
  assert "`/pre/natural` step 85000 (latest)" in open(path).read()


# --- gap to scratch vs training-set size ----------------------------------------------------

# Seeds 0-4 pair up; syn's seed 5 and scratch's seed 6 have no partner and are dropped.
GAP_SCRATCH = {0: 10.0, 1: 11.0, 2: 12.0, 3: 13.0, 4: 14.0, 6: 50.0}
GAP_SYN = {0: 15.0, 1: 17.5, 2: 11.0, 3: 20.0, 4: 18.5, 5: 90.0}
GAP_NATURAL = {0: 20.0, 1: 22.0, 2: 21.0, 3: 25.0, 4: 23.0}


def _gap_records(size=100, size_percent=None, names=("scratch", "natural", "syn")):
  records = []
  for name, scores in zip(names, (GAP_SCRATCH, GAP_NATURAL, GAP_SYN)):
    for seed, score in scores.items():
      record = _record(name, "g", size, seed, score)
      record["size_percent"] = size_percent
      records.append(record)
  return records


def _hand_gap(source, reference):
  """Mean, t interval and two-sided sign-flip p of the per-seed differences, by hand."""
  d = [source[k] - reference[k] for k in sorted(set(source) & set(reference))]
  n = len(d)
  mean = sum(d) / n
  sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
  half = scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
  sums = [sum(s * x for s, x in zip(signs, d))
          for signs in itertools.product((1, -1), repeat=n)]
  p = sum(abs(t) >= abs(sum(d)) - 1e-12 for t in sums) / len(sums)
  return n, mean, mean - half, mean + half, p


def test_gap_to_scratch_is_paired_by_seed_with_t_interval_and_p():
  summary = report.Summary(_gap_records(), source_order=["scratch", "natural", "syn"])
  n, mean, low, high, p = _hand_gap(GAP_SYN, GAP_SCRATCH)
  assert (n, mean) == (5, pytest.approx(4.4))  # seeds 5 and 6 dropped
  ci, test = summary.gap("g", "syn", 100)
  assert ci.n == test.n == 5
  assert (ci.mean, ci.low, ci.high) == (pytest.approx(mean), pytest.approx(low),
                                        pytest.approx(high))
  assert test.p_value == pytest.approx(p) and 0.0625 < p < 1  # one negative difference
  table = report.gap_table(summary, "g")
  lines = table.splitlines()
  assert lines[0] == "| size | source | paired seeds | gap to scratch [95% CI] | p vs scratch |"
  assert [line.split(" | ")[1] for line in lines[2:]] == ["natural", "syn"]  # no scratch row
  assert lines[3] == f"| 100 | syn | 5 | +{mean:.2f} [+{low:.2f}, +{high:.2f}] | {p:.3g} |"
  # natural - scratch, the references' gap, is a row like the others.
  n, mean, low, high, p = _hand_gap(GAP_NATURAL, GAP_SCRATCH)
  assert lines[2] == f"| 100 | natural | 5 | +{mean:.2f} [+{low:.2f}, +{high:.2f}] | {p:.3g} |"
  # A source no seed of which pairs with scratch: a row without numbers.
  records = [r for r in _gap_records() if r["source"] != "scratch" or r["seed"] == 6]
  summary = report.Summary(records)
  assert summary.gap("g", "syn", 100) is None
  assert "| 100 | syn | 0 | - | - |" in report.gap_table(summary, "g")


def test_percentage_sizes_and_other_reference_names_in_the_report(tmp_path):
  study_dir = tmp_path / "pct"
  names = ("lstm", "t5", "emb")
  _write_study(study_dir, _gap_records(2250, "10", names) +
               _gap_records(22500, "100", names))
  (study_dir / "study.json").write_text(json.dumps({
      "name": "pct", "natural": "t5", "scratch": "lstm", "source_order": list(names)}))
  path, table = report.write_report(str(study_dir), param_stats_plot=False)
  text = open(path).read()
  # Percentage sizes: labelled in the main table, the per-size and the gap tables.
  assert "| g exact_match @ 100% (22,500 ex.) |" in table
  assert "| 10% (2,250 ex.) | emb | 6 | " in text  # every-size table
  n, mean, low, high, p = _hand_gap(GAP_SYN, GAP_SCRATCH)
  gap_row = f"| 10% (2,250 ex.) | emb | {n} | +{mean:.2f} [+{low:.2f}, +{high:.2f}] | {p:.3g} |"
  assert gap_row in text
  # The references' own names instead of "natural pre-training" / "scratch".
  assert "## % of `t5`'s benefit over `lstm`" in text
  assert "natural pre-training" not in text and "scratch" not in text
  assert "| % of t5's benefit [95% CI] | p vs lstm | p vs t5 |" in table
  assert "### g (exact_match): gap to `lstm` vs training-set size" in text
  assert "| size | source | paired seeds | gap to lstm [95% CI] | p vs lstm |" in text
  assert "average % of `t5`'s benefit over the tasks not flagged" in text
  png = study_dir / "report_files" / "curves_g.png"
  assert png.read_bytes().startswith(b"\x89PNG")
  assert "![g: score and gap to lstm vs training examples](report_files/curves_g.png)" in text


def test_usual_names_keep_their_words_and_the_gap_section(tmp_path):
  study_dir = tmp_path / "usual"
  _write_study(study_dir, _gap_records())
  path, table = report.write_report(str(study_dir), param_stats_plot=False)
  text = open(path).read()
  assert "## % of the benefit of natural pre-training" in text
  assert "% natural benefit [95% CI] | p vs scratch | p vs natural |" in table
  assert "### g (exact_match): gap to scratch vs training-set size" in text
  assert "| 100 | syn | 5 | +4.40 [" in text and "10%" not in text
  assert (study_dir / "report_files" / "curves_g.png").exists()


def _hand_one_sided(source, reference):
  d = [source[k] - reference[k] for k in sorted(set(source) & set(reference))]
  sums = [sum(s * x for s, x in zip(signs, d))
          for signs in itertools.product((1, -1), repeat=len(d))]
  return sum(t >= sum(d) - 1e-12 for t in sums) / len(sums)


def test_pairwise_comparisons_test_each_hypothesis_one_sided(tmp_path, capsys):
  study_dir = tmp_path / "cmp"
  _write_study(study_dir, _gap_records())
  (study_dir / "study.json").write_text(json.dumps({
      "name": "cmp", "source_order": ["scratch", "natural", "syn"],
      "comparisons": [["natural", "syn"], ["syn", "scratch"]]}))
  path, _ = report.write_report(str(study_dir), param_stats_plot=False)
  text = open(path).read()
  assert "## Pairwise comparisons" in text
  # natural - syn: +5, +4.5, +10, +5, +4.5 on seeds 0-4 (5 and 6 unpaired): all positive,
  # so the one-sided p is 1/32 and the hypothesis is shown.
  n, mean, low, high, _ = _hand_gap(GAP_NATURAL, GAP_SYN)
  p = _hand_one_sided(GAP_NATURAL, GAP_SYN)
  assert (n, p) == (5, 1 / 32)
  assert (f"| natural > syn | 100 | 5 | +{mean:.2f} [+{low:.2f}, +{high:.2f}] | {p:.3g} | "
          "shown |") in text
  # syn - scratch has one negative difference among five: not shown.
  n, mean, low, high, _ = _hand_gap(GAP_SYN, GAP_SCRATCH)
  p = _hand_one_sided(GAP_SYN, GAP_SCRATCH)
  assert p > 0.05
  assert (f"| syn > scratch | 100 | 5 | +{mean:.2f} [{low:+.2f}, +{high:.2f}] | {p:.3g} | "
          "not shown |") in text
  # The command line replaces the study's pairs; the other direction is "not shown",
  # with the reason; an unknown source is a clear error.
  assert report.main([str(study_dir), "--no_param_stats", "--compare", "scratch:syn"]) == 0
  text = open(path).read()
  assert "| scratch > syn | 100 | 5 | -" in text and "natural > syn" not in text
  assert "not shown (syn scores higher on average) |" in text
  assert report.main([str(study_dir), "--no_param_stats", "--compare", "syn:lstm"]) == 1
  assert "needs two sources of the study" in capsys.readouterr().err
  # A declared source without records yet (a study still running): rows without numbers.
  (study_dir / "study.json").write_text(json.dumps({
      "name": "cmp", "source_order": ["scratch", "natural", "syn", "lstm"],
      "comparisons": [["natural", "lstm"]]}))
  path, _ = report.write_report(str(study_dir), param_stats_plot=False)
  assert "| natural > lstm | 100 | 0 | - | - | - |" in open(path).read()
  # Fewer than 5 paired seeds: a one-sided p <= 0.05 is impossible, and the verdict says so.
  _write_study(tmp_path / "four", [r for r in _gap_records() if r["seed"] < 4])
  path, _ = report.write_report(str(tmp_path / "four"), param_stats_plot=False,
                                comparisons=[["natural", "syn"]])
  assert "| 4 | " in open(path).read()
  assert "cannot be shown with 4 seed(s) (p >= 0.0625) |" in open(path).read()
