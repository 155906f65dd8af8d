"""Natural-token equivalence: the curve inversion and its bootstrap
(synthpre_jax.study.token_equivalence), the study's `token_steps` expansion, the checkpoints it
keeps, and the report section."""
import json
import math
import shlex

import numpy as np
import pytest

from synthpre_jax import checkpoints
from synthpre_jax.study import report
from synthpre_jax.study import runner as study_lib
from synthpre_jax.study import token_equivalence as te

TOKENS = [0.0, 1e6, 2e6, 4e6]


# --- the pure functions ---------------------------------------------------------------------

def test_linear_curve_gives_the_expected_tokens():
  curve = [[10.0 + 5.0 * t / 1e6] * 3 for t in TOKENS]  # score = 10 + 5 per million
  for score, expected in [(10.0, 0.0), (12.5, 0.5e6), (15.0, 1e6), (25.0, 3e6),
                          (30.0, 4e6)]:
    assert te.equivalent_tokens(TOKENS, curve, score) == pytest.approx(expected)
  ci = te.equivalence_ci(TOKENS, curve, [25.0, 25.0])
  assert ci.estimate == pytest.approx(3e6) and ci.low == pytest.approx(3e6)
  assert ci.high == pytest.approx(3e6)


def test_outside_the_curve_is_below_or_beyond():
  curve = [[10.0], [15.0], [20.0], [30.0]]
  assert te.equivalent_tokens(TOKENS, curve, 9.99) == -math.inf
  assert te.equivalent_tokens(TOKENS, curve, 30.01) == math.inf
  ci = te.equivalence_ci(TOKENS, curve, [5.0])
  assert (ci.estimate, ci.low, ci.high) == (-math.inf, None, None)  # one seed: no interval
  assert report.format_equivalence(ci, 0.0, 4e6) == "below 0 [n/a: 1 seed]"
  beyond = te.equivalence_ci(TOKENS, [[10.0, 11.0]] * 3 + [[30.0, 31.0]], [40.0, 41.0])
  assert report.format_equivalence(beyond, 0.0, 4e6) == "beyond 4M [beyond 4M, beyond 4M]"
  assert report.format_tokens(2.5e6) == "2.5M" and report.format_tokens(1234.0) == "1.23k"


def test_non_monotone_noisy_curve_is_made_monotone():
  np.testing.assert_allclose(te.isotonic_fit([10, 14, 12, 20]), [10, 13, 13, 20])
  np.testing.assert_allclose(te.isotonic_fit([10, 14, 12, 20], [1, 1, 3, 1]),
                             [10, 12.5, 12.5, 20])
  curve = [[10.0], [14.0], [12.0], [20.0]]  # a dip at 2M tokens
  # 13 is first reached at the pooled 1M point; 16.5 halfway from 2M to 4M.
  assert te.equivalent_tokens(TOKENS, curve, 13.0) == pytest.approx(1e6)
  assert te.equivalent_tokens(TOKENS, curve, 16.5) == pytest.approx(3e6)
  assert te.equivalent_tokens(TOKENS, curve, 12.0) == pytest.approx(2e6 / 3)
  flat = [[5.0], [4.0], [3.0], [2.0]]  # never improves: one pooled level
  assert te.equivalent_tokens(TOKENS, flat, 3.5) == 0.0
  assert te.equivalent_tokens(TOKENS, flat, 3.6) == math.inf
  with pytest.raises(ValueError, match="increasing"):
    te.equivalent_tokens([0.0, 2.0, 1.0], [[1.0]] * 3, 1.0)


def test_interval_contains_the_truth_on_a_noisy_curve():
  rng = np.random.default_rng(7)
  tokens = np.array([0.0, 1.0, 2.0, 4.0, 8.0]) * 1e6
  curve = [10.0 + 5.0 * t / 1e6 + rng.normal(0.0, 1.0, 5) for t in tokens]
  source = 25.0 + rng.normal(0.0, 1.0, 5)  # truly worth 3M tokens
  ci = te.equivalence_ci(tokens, curve, source)
  assert ci.low < 3e6 < ci.high and ci.low <= ci.estimate <= ci.high
  assert ci.high - ci.low < 1.5e6  # informative, not everything
  assert te.equivalence_ci(tokens, curve, source) == ci  # a fixed seed


# --- the study --------------------------------------------------------------------------

def _study(tmp_path, natural: str = "'natural@4'", steps: str = "[4, 0, 2]") -> str:
  path = tmp_path / "tok.gin"
  path.write_text(f"""
study.sources = {{
    'scratch': {{}},
    'natural': {{'pretrain': ['quickstart/pretrain_set_text.gin'], 'transfer_mode': 'all',
                 'pretrain_bindings': ['BATCH_SIZE = 8'], 'token_steps': {steps}}},
    'set_mm': {{'stats_of': 'natural@2'}},
}}
study.tasks = {{'scan_simple': {{'gin_files': ['quickstart/finetune_scan.gin'],
                                'metric': 'exact_match', 'train_size': 15055}}}}
study.sizes = [16]
study.seeds = [0, 1]
study.pretrain_bindings = ['TRAIN_STEPS = 99']
study.natural = {natural}
""")
  return str(path)


def test_token_steps_expand_into_one_source_per_step(tmp_path, capsys):
  st = tmp_path / "st"
  argv = [f"--gin_file={_study(tmp_path)}", f"--study_dir={st}"]
  spec = study_lib.load_study([argv[0][len("--gin_file="):]], study_dir=str(st))
  assert list(spec.sources) == ["scratch", "natural", "natural@0", "natural@2", "natural@4",
                                "set_mm"]
  assert [c.cell_id for c in spec.cells()][:6] == [
      "scratch.scan_simple.n16.seed0", "scratch.scan_simple.n16.seed1",
      "natural@0.scan_simple.n16.seed0", "natural@0.scan_simple.n16.seed1",
      "natural@2.scan_simple.n16.seed0", "natural@2.scan_simple.n16.seed1"]
  assert not any(c.source == "natural" for c in spec.cells())  # the run itself: no cells
  assert study_lib.main(argv + ["--print_commands", "--only=natural@*.*.seed0"]) == 0
  out = capsys.readouterr().out
  argvs = [shlex.split(line) for line in out.splitlines() if not line.startswith("#")]
  assert [a[2] for a in argvs].count("synthpre_jax.train") == 4  # ONE pre-training + 3
  assert argvs[0][3:] == [
      "--gin_file=quickstart/pretrain_set_text.gin", "--gin.TRAIN_STEPS=99",
      "--gin.BATCH_SIZE=8", "--gin.TRAIN_STEPS=4", "--gin.CheckpointConfig.keep_steps=[0, 2, 4]",
      f"--gin.MODEL_DIR='{st}/pretrain/natural'"]
  for i, step in enumerate((0, 2, 4)):
    cell = argvs[1 + 2 * i]
    assert f"--gin.INITIAL_CHECKPOINT_PATH='{st}/pretrain/natural'" in cell
    assert f"--gin.INITIAL_CHECKPOINT_STEP={step}" in cell
    assert "--gin.TRANSFER_MODE='all'" in cell  # the parent's settings
    assert f"--gin.MODEL_DIR='{st}/cells/natural@{step}/scan_simple/n16/seed0'" in cell
  # A binding may name one step: {checkpoint_step:natural@2} is 2.
  mm = spec.finetune_argv(study_lib.Cell("set_mm", "scan_simple", 16, 0))
  assert "--gin.INIT_STATS_CHECKPOINT_STEP=2" in mm
  assert f"--gin.INIT_STATS_CHECKPOINT='{st}/pretrain/natural'" in mm
  assert study_lib.main(argv + ["--dry_run", "--only=natural@2.*"]) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].split()[:3] == ["pretrain", "natural", "to"] and len(out) == 3


@pytest.mark.parametrize("natural, steps, message", [
    ("'natural'", "[0, 2]", "name one of its steps, e.g. study.natural = 'natural@2'"),
    ("'natural@2'", "[0, -2]", "token_steps must be distinct step numbers >= 0"),
    ("'natural@2'", "[2, 2]", "token_steps must be distinct"),
    ("'natural@0'", "[0]", "one of them > 0"),
])
def test_bad_token_steps_get_clear_errors(tmp_path, capsys, natural, steps, message):
  argv = [f"--gin_file={_study(tmp_path, natural, steps)}", "--study_dir=/tmp/x", "--dry_run"]
  assert study_lib.main(argv) == 1
  assert message in capsys.readouterr().err


def test_token_steps_need_a_pretraining_run():
  with pytest.raises(ValueError, match="`token_steps` needs `pretrain`"):
    study_lib.Source(name="c4", checkpoint="/ckpt", token_steps=(0, 2))
  with pytest.raises(ValueError, match="drop TRAIN_STEPS"):
    study_lib.Source(name="c4", pretrain=("x.gin",), token_steps=(0, 2),
                     pretrain_bindings=("TRAIN_STEPS = 5",))


# --- kept checkpoints and the recorded tokens ---------------------------------------------

def test_keep_steps_policy_preserves_exactly_those_steps():
  from types import SimpleNamespace as NS
  infos = [NS(step=s, metrics=None) for s in (0, 100, 200, 300)]
  assert checkpoints.KeepSteps(steps=(0, 200)).should_preserve(infos, context=None) == [
      True, False, True, False]
  assert checkpoints.CheckpointConfig(keep_steps=[4, 0]).keep_steps == (0, 4)
  with pytest.raises(ValueError, match="keep_steps must be step numbers >= 0"):
    checkpoints.CheckpointConfig(keep_steps=(-1,))


def test_kept_steps_survive_and_records_carry_their_tokens(tmp_path):
  """A 5-step run keeping 1 checkpoint saves and keeps steps 0 (its initial state), 1
  and 3; a `natural@3` cell's record counts 3 x batch x (inputs + targets) tokens."""
  from synthpre_jax import partitioning
  from synthpre_jax.training import optimizers
  from synthpre_jax.evaluation import provenance
  from synthpre_jax.training import trainer
  from tests import train_utils
  spec = study_lib.load_study([_study(tmp_path, steps="[0, 1, 2, 3]", natural="'natural@3'")],
                              study_dir=str(tmp_path / "st"))
  run_dir = spec.pretrain_dir("natural")
  lengths = train_utils.LENGTHS
  cfg = trainer.TrainConfig(model_dir=run_dir, train_steps=5, batch_size=8,
                            inputs_length=lengths["inputs"], targets_length=lengths["targets"],
                            log_period=5, eval_period=100)
  train_data, _ = train_utils.data_fns("set_tiny", 8)
  result = trainer.train(
      model_config=train_utils.MICRO, train_config=cfg,
      optimizer_config=optimizers.OptimizerConfig(schedule="constant", learning_rate=1e-3),
      mesh_config=partitioning.MeshConfig(), train_data=train_data,
      checkpoint_config=checkpoints.CheckpointConfig(period=1, keep=1, keep_best=False,
                                                     keep_steps=(0, 1, 3)))
  assert int(result.state.step) == 5
  assert checkpoints.complete_steps(checkpoints.checkpoint_dir(run_dir)) == [0, 1, 3, 5]
  initial = train_utils.load_step_params(run_dir, 0)
  assert not train_utils.same_bits(initial, train_utils.load_step_params(run_dir, 1))

  cell = study_lib.Cell("natural@3", "scan_simple", 16, 0)
  step_dir = checkpoints.checkpoint_dir(run_dir) / "3"
  provenance.write_run_record(
      spec.cell_dir(cell), task="scan_simple_train16_seed0", seed=0, data_seed=0,
      vocab={"name": "v"}, initial_checkpoint={"path": run_dir, "step": 3, "rule": 3,
                                               "params_path": str(step_dir / "params")},
      transfer_mode="all", allow_vocab_mismatch=False, gin_config_hash="h")
  record = study_lib.make_record(spec, cell, {"metrics": {"exact_match": 1.0}}, {})
  per_step = 8 * (lengths["inputs"] + lengths["targets"])
  assert record["natural_tokens_per_step"] == per_step
  assert (record["natural_run"], record["natural_step"]) == ("natural", 3)
  assert record["natural_tokens"] == 3 * per_step
  scratch = study_lib.make_record(spec, study_lib.Cell("scratch", "scan_simple", 16, 0),
                                  {"metrics": {"exact_match": 1.0}}, {})
  assert "natural_tokens" not in scratch


# --- the report -------------------------------------------------------------------------

def _record(source, seed, score, tokens=None, step=None):
  r = {"cell_id": f"{source}.t.n100.seed{seed}", "source": source, "task": "t",
       "size": 100, "seed": seed, "metric": "exact_match", "score": score,
       "train_examples": 100}
  if step is not None:
    r.update(natural_run="natural", natural_step=step, natural_tokens=tokens)
  return r


def test_report_section_states_equivalent_tokens(tmp_path):
  rng = np.random.default_rng(0)
  records = []
  per_step = 1000
  for step in (0, 250, 500, 1000):
    for seed in range(4):
      records.append(_record(f"natural@{step}", seed,
                             20.0 + 0.02 * step + rng.normal(0, 0.3), step * per_step, step))
  for seed in range(4):
    records.append(_record("scratch", seed, 20.0 + rng.normal(0, 0.3)))
    records.append(_record("set", seed, 30.0 + rng.normal(0, 0.3)))  # ~ step 500
    records.append(_record("bad", seed, 10.0 + rng.normal(0, 0.3)))
    records.append(_record("great", seed, 60.0 + rng.normal(0, 0.3)))
  study_dir = tmp_path / "study"
  (study_dir / "records").mkdir(parents=True)
  for r in records:
    (study_dir / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
  (study_dir / "study.json").write_text(json.dumps({"natural": "natural@1000",
                                                    "scratch": "scratch"}))
  report.write_report(str(study_dir), param_stats_plot=False)
  text = (study_dir / "report.md").read_text()
  assert "## Natural-token equivalence" in text
  assert "### t (exact_match) @ 100 ex.: natural tokens" in text
  section = text[text.index("## Natural-token equivalence"):]
  rows = {line.split(" | ")[0][2:]: line for line in section.splitlines()
          if line.startswith("| ")}
  assert "| 500k (curve; fit" in rows["natural@500"]
  assert "| below 0 [below 0, below 0] |" in rows["bad"]
  assert "| beyond 1M [beyond 1M, beyond 1M] |" in rows["great"]
  estimate = float(rows["set"].split(" | ")[-1].split("k")[0])
  assert 400 < estimate < 600  # truly 500k
  png = study_dir / "report_files" / "tokens_natural_t.png"
  assert png.read_bytes().startswith(b"\x89PNG")
  assert "![t: score vs natural pre-training tokens](report_files/tokens_natural_t.png)" in text
