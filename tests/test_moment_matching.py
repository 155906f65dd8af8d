"""Initialization from parameter statistics: groupings, re-draws, constant norms, the
trainer hook, the Gin files and the param_stats command line. Tiny models on CPU, on a
data=2, fsdp=2, model=2 mesh of the 8 fake devices."""

import json
import logging
import math
import os
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from synthpre_jax.checkpoints import checksums
from synthpre_jax.init import moment_matching as mm
from synthpre_jax import partitioning
from synthpre_jax.training import optimizers
from synthpre_jax.init import param_groups
from synthpre_jax.init import param_stats
from synthpre_jax.cli import train as train_cli
from synthpre_jax.training import train_state as state_lib
from synthpre_jax.models import T5Config, Transformer
from tests import train_utils as tu

REPO = Path(__file__).resolve().parents[1]
EMB = "token_embedder/embedding"
V11_TINY = tu.TINY.replace(mlp_dim=128, mlp_activations=("gelu", "linear"),
                           logits_via_embedding=False)


def _mesh():
  return partitioning.make_mesh(partitioning.MeshConfig(data=2, fsdp=2, model=2))


def _abstract(config: T5Config, mesh):
  """(flat {name: ShapeDtypeStruct}, param shardings tree) without allocating."""
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig())
  shapes, shardings = state_lib.abstract_state(Transformer(config), tx, mesh)
  return traverse_util.flatten_dict(shapes.params, sep="/"), shardings.params


def _fresh(config: T5Config, mesh, seed: int = 0):
  """Default-initialised sharded params and their shardings."""
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig())
  model = Transformer(config)
  _, shardings = state_lib.abstract_state(model, tx, mesh)
  return state_lib.create_state(model, tx, mesh, seed, shardings).params, shardings.params


def _save(model_dir: Path, flat: dict, step: int = 7) -> Path:
  """A hand-built checkpoint laid out like a run's: MODEL_DIR/checkpoints/<step>/params."""
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(model_dir / "checkpoints" / str(step) / "params",
            traverse_util.unflatten_dict(flat, sep="/"))
  ckpt.wait_until_finished()
  checksums.seal(model_dir / "checkpoints" / str(step))
  return model_dir


def _random_source(shapes: dict, seed: int = 1) -> dict[str, np.ndarray]:
  """Every tensor drawn with its own mean and SD, so per-tensor statistics differ."""
  rng = np.random.default_rng(seed)
  return {n: rng.normal(rng.uniform(-1, 1), rng.uniform(0.05, 0.5),
                        tuple(s.shape)).astype(np.float32) for n, s in shapes.items()}


@pytest.fixture(scope="module")
def tiny():
  """The tiny v1.0 model on the 2x2x2 mesh: mesh, fresh params (seed 0), their
  shardings, and the flat abstract shapes."""
  mesh = _mesh()
  params, shardings = _fresh(tu.TINY, mesh)
  shapes, _ = _abstract(tu.TINY, mesh)
  return mesh, params, shardings, shapes


@pytest.fixture(scope="module")
def source(tiny, tmp_path_factory):
  """A hand-built "pre-trained" checkpoint with random per-tensor statistics."""
  _, _, _, shapes = tiny
  arrays = _random_source(shapes)
  return _save(tmp_path_factory.mktemp("mm") / "pretrained", arrays), arrays


def _within(got, want, se, k=5.0):
  return abs(got - want) <= k * se + 1e-6


def test_per_param_mean_std_redraws_each_tensor_from_its_own_statistics(tiny, source):
  mesh, fresh, shardings, _ = tiny
  src_path, src = source
  init = mm.MomentMatchingInit(str(src_path), "per_param", "mean_std")
  params, lines = init(fresh, mesh, shardings, 0)
  got, default = tu.flat_numpy(params), tu.flat_numpy(fresh)
  redrawn = [n for n in got if n != EMB]
  assert len(redrawn) == 46
  for name in redrawn:
    x, s = got[name].ravel().astype(np.float64), src[name].ravel().astype(np.float64)
    n, sd = x.size, s.std()
    assert _within(x.mean(), s.mean(), sd / math.sqrt(n)), name
    assert _within(x.std(), sd, sd / math.sqrt(2 * n)), name
    assert not np.array_equal(got[name], src[name]), name            # nothing copied
    assert abs(np.corrcoef(x, s)[0, 1]) < 5 / math.sqrt(n), name     # independent draws
    assert not np.array_equal(got[name], default[name]), name        # really re-drawn
  np.testing.assert_array_equal(got[EMB], default[EMB])  # default init of seed 0
  assert ("grouping per_param, stats mean_std, re-drew 46 tensors, kept "
          "token_embedder/embedding") in lines[0]
  flat_sh = traverse_util.flatten_dict(shardings, sep="/")
  for name, arr in traverse_util.flatten_dict(params, sep="/").items():
    assert arr.sharding == flat_sh[name], name

  again, _ = init(fresh, mesh, shardings, 0)
  assert tu.same_bits(tu.flat_numpy(again), got)                     # deterministic
  other = tu.flat_numpy(init(fresh, mesh, shardings, 1)[0])
  assert not np.array_equal(other["encoder/layers_0/attention/query/kernel"],
                            got["encoder/layers_0/attention/query/kernel"])


def test_scale_sets_norm_groups_to_their_mean_and_draws_the_rest_around_zero(tiny, source):
  mesh, fresh, shardings, _ = tiny
  src_path, src = source
  params, _ = mm.MomentMatchingInit(str(src_path), "per_param", "scale")(
      fresh, mesh, shardings, 0)
  got = tu.flat_numpy(params)
  norms = [n for n in got if param_groups.is_norm_scale(n)]
  assert len(norms) == 12
  for name in got:
    if name == EMB:
      continue
    s = src[name].astype(np.float64)
    if name in norms:
      np.testing.assert_array_equal(got[name], np.full(s.shape, np.float32(s.mean())))
    else:
      x, n = got[name].astype(np.float64), s.size
      assert _within(x.mean(), 0.0, s.std() / math.sqrt(n)), name
      assert _within(x.std(), s.std(), s.std() / math.sqrt(2 * n)), name


def test_whole_model_uses_pooled_statistics_of_a_hand_built_checkpoint(tiny, tmp_path):
  mesh, fresh, shardings, shapes = tiny
  src, norm_i, relpos_i = {}, 0, 0
  for name, s in sorted(shapes.items()):
    shape = tuple(s.shape)
    if name.endswith("/kernel"):      # +-0.5 alternating: pooled mean 0, SD 0.5
      src[name] = np.where(np.arange(math.prod(shape)) % 2, 0.5, -0.5).reshape(shape)
    elif param_groups.is_norm_scale(name):  # half 0.25, half 0.75: mean 0.5, SD 0.25
      src[name] = np.full(shape, 0.25 if norm_i % 2 else 0.75)
      norm_i += 1
    elif "relpos" in name:            # one table 1.0, the other 3.0: mean 2, SD 1
      src[name] = np.full(shape, 1.0 + 2.0 * relpos_i)
      relpos_i += 1
    else:
      src[name] = np.full(shape, 100.0)  # the embedding: must not matter
  path = _save(tmp_path / "known", {k: v.astype(np.float32) for k, v in src.items()})

  init = mm.MomentMatchingInit(str(path), "whole_model", "mean_std")
  _, groups, stats, _, _ = init.compute({k: tuple(v.shape) for k, v in shapes.items()})
  assert {k: len(v) for k, v in groups.items()} == {
      "kernels": 32, "norm_scales": 12, "relpos_tables": 2}
  assert (stats["kernels"].mean, stats["kernels"].sd) == pytest.approx((0.0, 0.5), abs=1e-12)
  assert (stats["norm_scales"].mean, stats["norm_scales"].sd) == pytest.approx((0.5, 0.25))
  assert (stats["relpos_tables"].mean, stats["relpos_tables"].sd) == pytest.approx((2.0, 1.0))

  got = tu.flat_numpy(init(fresh, mesh, shardings, 0)[0])
  def pooled(names):
    return np.concatenate([got[n].ravel() for n in names]).astype(np.float64)
  for label, (mean, sd) in {"kernels": (0.0, 0.5), "norm_scales": (0.5, 0.25),
                            "relpos_tables": (2.0, 1.0)}.items():
    x = pooled(groups[label])
    assert _within(x.mean(), mean, sd / math.sqrt(x.size)), label
    assert _within(x.std(), sd, sd / math.sqrt(2 * x.size)), label
  # Each table alone is drawn from the pooled statistics (its own SD would be 0).
  for name in groups["relpos_tables"]:
    assert got[name].std() > 0.8, name

  scaled = tu.flat_numpy(mm.MomentMatchingInit(str(path), "whole_model", "scale")(
      fresh, mesh, shardings, 0)[0])
  for name in groups["norm_scales"]:
    assert np.all(scaled[name] == np.float32(0.5)), name
  x = np.concatenate([scaled[n].ravel() for n in groups["relpos_tables"]])
  assert _within(x.mean(), 0.0, 1 / math.sqrt(x.size)) and _within(
      x.std(), 1.0, 1 / math.sqrt(2 * x.size))


def test_groupings_match_names_for_every_size_and_for_v1_1():
  mesh = _mesh()
  small, _ = _abstract(T5Config(), mesh)                       # 6+6 layers, v1.0
  large, _ = _abstract(T5Config(num_encoder_layers=24, num_decoder_layers=24,
                                vocab_size=512), mesh)
  v11, _ = _abstract(V11_TINY, mesh)

  def sizes(grouping, names):
    return {k: len(v) for k, v in param_groups.make_groups(grouping, list(names)).items()}

  assert len(param_groups.select("per_param", small)) == len(small) - 1 == 96 + 32 + 2
  assert sizes("whole_model", small) == {"kernels": 6 * 6 + 6 * 10, "norm_scales": 32,
                                         "relpos_tables": 2}
  assert sizes("across_layers", small) == {
      "query_kernels": 18, "key_kernels": 18, "value_kernels": 18,
      "attention_out_kernels": 18, "mlp_kernels": 24, "pre_mlp_norms": 12,
      "pre_attention_norms": 18, "final_norms": 2, "relpos_tables": 2}
  per_layer = sizes("per_layer", small)
  assert per_layer["encoder/layers_5/kernels"] == 6 and per_layer["decoder/layers_0/kernels"] == 10
  assert per_layer["decoder/layers_3/norm_scales"] == 3 and len(per_layer) == 24 + 4
  assert len(param_groups.select("pre_attention_norms", large)) == 24 + 2 * 24
  assert len(param_groups.select("mlp_kernels", large)) == 2 * 24 + 2 * 24

  # v1.1: gated wi_0/wi_1 are MLP kernels; logits_dense is in every full grouping, alone.
  assert len(param_groups.select("mlp_kernels", v11)) == 3 * 4
  whole = param_groups.make_groups("whole_model", list(v11))
  assert whole["decoder/logits_dense/kernel"] == ["decoder/logits_dense/kernel"]
  assert len(whole["kernels"]) == 2 * 7 + 2 * 11
  assert EMB not in param_groups.select("per_param", v11)

  # A user's grouping from a regex list.
  mine = param_groups.pooled([(r"\1 norms", r"^(encoder|decoder)/.*norm/scale$")],
                             others_alone=False)
  assert sizes(mine, small) == {"encoder norms": 13, "decoder norms": 19}


def test_pre_attention_constant_sets_exactly_the_18_tensors_of_t5_small(tiny):
  small, _ = _abstract(T5Config(), _mesh())   # abstract: no 60M model is materialised
  init = mm.ConstantNormInit()
  chosen = init.names(list(small))
  expected = ({f"encoder/layers_{i}/pre_attention_layer_norm/scale" for i in range(6)}
              | {f"decoder/layers_{i}/pre_{k}_attention_layer_norm/scale"
                 for i in range(6) for k in ("self", "cross")})
  assert len(chosen) == 18 and set(chosen) == expected
  with_mlp = mm.ConstantNormInit(include_pre_mlp_norms=True).names(list(small))
  assert len(with_mlp) == 30 and set(with_mlp) - expected == {
      f"{s}/layers_{i}/pre_mlp_layer_norm/scale" for s in ("encoder", "decoder")
      for i in range(6)}
  out = traverse_util.flatten_dict(
      jax.eval_shape(lambda p: mm.set_constant(p, chosen, 0.4), small), sep="/")
  assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
      k: (v.shape, v.dtype) for k, v in small.items()}

  mesh, fresh, shardings, _ = tiny
  params, lines = init(fresh, mesh, shardings, 0)
  got, default = tu.flat_numpy(params), tu.flat_numpy(fresh)
  touched = {n for n in got if not np.array_equal(got[n], default[n])}
  assert touched == set(init.names(list(got))) and len(touched) == 2 + 2 * 2
  for name in touched:
    assert np.all(got[name] == np.float32(0.4)), name
  assert "set 6 tensors" in lines[0] and "the other 41 keep their default init" in lines[0]
  flat_sh = traverse_util.flatten_dict(shardings, sep="/")
  assert all(a.sharding == flat_sh[n] for n, a in
             traverse_util.flatten_dict(params, sep="/").items())


def test_redraw_draws_each_shard_in_place_without_collectives(tiny):
  mesh, fresh, shardings, shapes = tiny
  flat_sh = traverse_util.flatten_dict(shardings, sep="/")
  assert any(s.spec != jax.sharding.PartitionSpec() and any(s.spec)
             for s in flat_sh.values())                      # really sharded
  specs = {n: mm.DrawSpec(0.1, 0.2) for n in shapes if n != EMB}
  fn, means, sds = mm.build_draw(specs, shapes, flat_sh)
  compiled = fn.lower(mm.draw_key(0), means, sds).compile()
  hlo = compiled.as_text()
  for op in ("all-gather", "all-reduce", "all-to-all", "collective-permute"):
    assert op not in hlo, op
  sharded = compiled(mm.draw_key(0), means, sds)
  for name, arr in sharded.items():
    assert arr.sharding == flat_sh[name]
  # The same numbers as an unsharded draw of just these tensors: neither the layout nor
  # the set of re-drawn tensors changes a tensor's values.
  some = ("encoder/layers_0/mlp/wi/kernel", "decoder/relpos_bias/rel_embedding")
  plain_fn, m, s = mm.build_draw({n: specs[n] for n in some}, shapes, None)
  plain = plain_fn(mm.draw_key(0), m, s)
  for name in some:
    np.testing.assert_array_equal(np.asarray(sharded[name]), np.asarray(plain[name]))


def test_bad_input_gets_clear_errors(tiny, source, tmp_path):
  mesh, fresh, shardings, shapes = tiny
  src_path, src = source
  with pytest.raises(ValueError, match="Unknown GROUPING 'per_layers'.*per_param, "
                     "whole_model, across_layers, per_layer.*Did you mean 'per_layer'"):
    mm.MomentMatchingInit(str(src_path), "per_layers")
  with pytest.raises(ValueError, match="Unknown STATS_FN 'mean_sd'.*mean_std, scale"):
    mm.MomentMatchingInit(str(src_path), "per_param", "mean_sd")
  with pytest.raises(FileNotFoundError, match="INIT_STATS_CHECKPOINT .* does not exist"):
    mm.MomentMatchingInit(str(tmp_path / "nowhere"))(fresh, mesh, shardings, 0)
  with pytest.raises(ValueError, match="matches no parameter"):
    mm.MomentMatchingInit(str(src_path), param_groups.each_alone(r"/no_such_layer/"))(
        fresh, mesh, shardings, 0)
  with pytest.raises(ValueError, match="matches no parameter"):
    param_groups.make_groups(param_groups.pooled([("x", "typo_norm")], others_alone=True),
                             list(shapes))

  # A v1.1 checkpoint for a v1.0 model: the first tensor without a counterpart is named.
  v11, _ = _abstract(V11_TINY, mesh)
  other = _save(tmp_path / "v11", _random_source(v11))
  with pytest.raises(ValueError, match="'decoder/layers_0/mlp/wi/kernel' .* no counterpart "
                     "in the checkpoint"):
    mm.MomentMatchingInit(str(other))(fresh, mesh, shardings, 0)
  # A different rank is named too.
  ranked = dict(src)
  ranked["encoder/encoder_norm/scale"] = src["encoder/encoder_norm/scale"][None]
  bad_rank = _save(tmp_path / "rank", ranked)
  with pytest.raises(ValueError, match="'encoder/encoder_norm/scale' has rank 2"):
    mm.MomentMatchingInit(str(bad_rank))(fresh, mesh, shardings, 0)
  # Same rank, other sizes (mlp_dim 128 instead of 256): allowed, statistics used as is.
  narrow, _ = _abstract(tu.TINY.replace(mlp_dim=128), mesh)
  wide_ok = _save(tmp_path / "narrow", _random_source(narrow))
  params, lines = mm.MomentMatchingInit(str(wide_ok))(fresh, mesh, shardings, 0)
  assert "8 tensors differ in shape from the checkpoint" in "\n".join(lines)
  assert tu.flat_numpy(params)["encoder/layers_0/mlp/wi/kernel"].shape == (64, 256)


def test_trainer_applies_the_transform_at_step_0_only(source, tmp_path, caplog):
  src_path, _ = source
  caplog.set_level(logging.INFO, logger="synthpre_jax")
  init = mm.MomentMatchingInit(str(src_path), "across_layers", "mean_std")
  model_dir = str(tmp_path / "mm")
  run = tu.run(model_dir, steps=1, lr=0.0, task="identity_tiny", init_transform=init)
  log = "\n".join(run.restore_log)
  assert "INITIAL_CHECKPOINT_PATH: none" in log
  assert "moment matching from" in log and "grouping across_layers" in log
  assert "re-drew 46 tensors" in log and "Restore decisions" in caplog.text
  # The same as applying it by hand to the default init of the run's mesh and seed.
  mesh = partitioning.make_mesh(partitioning.MeshConfig())
  by_hand, _ = init(_fresh(tu.TINY, mesh, seed=0)[0], mesh, None, 0)
  assert tu.same_bits(tu.flat_numpy(run.state.params), tu.flat_numpy(by_hand))

  # Resuming (here: nothing left to train) never applies a transform.
  norms = mm.ConstantNormInit(0.3)
  resumed = tu.run(model_dir, steps=1, lr=0.0, task="identity_tiny", init_transform=norms)
  log = "\n".join(resumed.restore_log)
  assert "resuming" in log and "pre-attention norm scales = 0.3 NOT applied" in log
  assert "set 6 tensors" not in log
  assert tu.same_bits(tu.flat_numpy(resumed.state.params), tu.flat_numpy(by_hand))


def _main(capsys, *args):
  capsys.readouterr()
  rc = train_cli.main(list(args))
  return rc, capsys.readouterr().err


def test_gin_files_wire_both_inits_end_to_end(source, tmp_path, capsys):
  src_path, _ = source
  base = ["--gin_file=gin/quickstart/finetune_identity.gin", "--gin.TRAIN_STEPS=1",
          "--gin.BATCH_SIZE=8", "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=1",
          "--gin.LEARNING_RATE=0.0"]
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    mm_dir = tmp_path / "mm"
    rc, text = _main(capsys, *base, "--gin_file=gin/init/moment_matching.gin",
                     f"--gin.MODEL_DIR='{mm_dir}'", f"--gin.INIT_STATS_CHECKPOINT='{src_path}'",
                     "--gin.GROUPING='whole_model'", "--gin.STATS_FN='scale'")
    assert rc == 0, text[-3000:]
    assert "grouping whole_model, stats scale, re-drew 46 tensors" in text
    assert "INITIAL_CHECKPOINT_PATH: none" in text
    config = (mm_dir / "config.gin").read_text()
    assert "GROUPING = 'whole_model'" in config
    assert "train.init_transform = @moment_matching_init()" in config
    saved = tu.load_step_params(str(mm_dir))
    norm = saved["decoder/layers_1/pre_mlp_layer_norm/scale"]
    assert np.all(norm == norm[0]) and norm[0] != 1.0       # scale: one pooled mean

    nc_dir = tmp_path / "norm"
    rc, text = _main(capsys, *base, "--gin_file=init/pre_attention_norm_constant.gin",
                     f"--gin.MODEL_DIR='{nc_dir}'", "--gin.NORM_CONSTANT=0.25")
    assert rc == 0, text[-3000:]
    saved = tu.load_step_params(str(nc_dir))
    assert np.all(saved["decoder/layers_0/pre_cross_attention_layer_norm/scale"] == 0.25)
    assert np.all(saved["decoder/layers_0/pre_mlp_layer_norm/scale"] == 1.0)

    bad = tmp_path / "bad"
    rc, text = _main(capsys, *base, "--gin_file=gin/init/moment_matching.gin",
                     f"--gin.MODEL_DIR='{bad}'", f"--gin.INIT_STATS_CHECKPOINT='{src_path}'",
                     "--gin.GROUPING='per_layers'")
    assert rc == 1 and "Unknown GROUPING 'per_layers'" in text
    rc, text = _main(capsys, *base, "--gin_file=gin/init/moment_matching.gin",
                     f"--gin.MODEL_DIR='{bad}'")
    assert rc == 1 and "INIT_STATS_CHECKPOINT: usually set by the command line" in text
    assert not (bad / "checkpoints").exists() or not list((bad / "checkpoints").iterdir())
  finally:
    os.chdir(cwd)


def test_param_stats_writes_tables_and_a_comparison_plot(source, tmp_path, capsys):
  src_path, src = source
  second = _save(tmp_path / "natural", {k: v * 2 for k, v in src.items()}, step=3)
  out = tmp_path / "stats"
  rc = param_stats.main([str(src_path), str(second), "--labels", "set,natural",
                         "--output_dir", str(out), "--plot"])
  assert rc == 0
  table = json.loads((out / "set.param_stats.json").read_text())
  rows = {t["name"]: t for t in table["tensors"]}
  assert len(rows) == 47
  name = "decoder/layers_1/mlp/wo/kernel"
  x = src[name].astype(np.float64)
  assert rows[name]["shape"] == [256, 64]
  assert (rows[name]["mean"], rows[name]["sd"], rows[name]["min"], rows[name]["max"]) == \
      pytest.approx((x.mean(), x.std(), x.min(), x.max()), rel=1e-6)
  whole = {r["group"]: r for r in table["groupings"]["whole_model"]}
  norms = np.concatenate([src[n].ravel() for n in whole["norm_scales"]["tensors"]])
  assert whole["norm_scales"]["sd"] == pytest.approx(norms.astype(np.float64).std(), rel=1e-6)
  assert set(table["groupings"]) == set(param_groups.GROUPINGS)
  csv_lines = (out / "natural.param_stats.csv").read_text().splitlines()
  assert csv_lines[0] == ",".join(param_stats.CSV_COLUMNS)
  assert any(l.startswith("tensor,decoder/layers_1/mlp/wo/kernel,1,256x64,") for l in csv_lines)
  assert any(l.startswith("per_layer,encoder/layers_1/norm_scales,2,") for l in csv_lines)
  png = (out / "param_stats.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
  series = param_stats.per_layer_series(table)
  assert [p[0] for p in series[("decoder", "kernel_sd")]] == [0, 1]

  assert param_stats.main([str(src_path), "--groupings", "per_layers",
                           "--output_dir", str(out)]) == 1
  assert "Unknown GROUPING 'per_layers'" in capsys.readouterr().err
