"""Partial transfer (TRANSFER_MODE attention_only, mlp_only, first_k_layers:K, regex:...):
which tensors come from the checkpoint, which from a fresh init of the same seed, the
restore log, errors, moment matching of only the fresh tensors, and study specs."""

import shlex

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthpre_jax import models
from synthpre_jax import partitioning
from synthpre_jax.checkpoints import transfer_modes
from synthpre_jax.init import moment_matching as mm
from synthpre_jax.models import registry
from synthpre_jax.models.lstm.config import LSTMConfig
from synthpre_jax.study import runner as study_lib
from synthpre_jax.training import optimizers
from synthpre_jax.training import parts as parts_lib
from synthpre_jax.training import restore
from synthpre_jax.training import trainer
from tests import test_study
from tests import train_utils as tu

EMB = "token_embedder/embedding"


# Independent statements of each mode, written with plain string tests on T5X names.
def _attention(n):
  return any(s in n for s in ("attention/query/", "attention/key/", "attention/value/",
                              "attention/out/", "attention_layer_norm/", "relpos_bias/"))


EXPECTED = {
    "attention_only": _attention,
    "mlp_only": lambda n: "/mlp/" in n or "/pre_mlp_layer_norm/" in n,
    "first_k_layers:1": lambda n: n.startswith(("encoder/layers_0/", "decoder/layers_0/")),
    "regex:^encoder/,embedder/emb": lambda n: n.startswith("encoder/") or n == EMB,
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("partial") / "pretrain")
  tu.run(path, steps=2, seed=5, ckpt_period=2)
  return path, tu.load_step_params(path)


@pytest.fixture(scope="module")
def parts():
  mesh = partitioning.make_mesh(partitioning.MeshConfig())
  opt = optimizers.OptimizerConfig(schedule="constant", learning_rate=3e-3)
  return parts_lib.get(tu.TINY, opt, mesh, 1e-4, None), mesh


def _step0(tmp_path, parts, initial, mode, init_transform=None, seed=0):
  built, mesh = parts
  cfg = trainer.TrainConfig(model_dir=str(tmp_path / f"ft_{abs(hash(mode))}"),
                            train_steps=1, batch_size=16, inputs_length=68,
                            targets_length=68, seed=seed, initial_checkpoint_path=initial,
                            transfer_mode=mode)
  state, lines = restore.initial_state(cfg, built, mesh, "full", init_transform,
                                       tu.TINY.embedding_names)
  return tu.flat_numpy(state.params), "\n".join(lines)


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_takes_its_tensors_and_keeps_the_rest_fresh(tmp_path, source, parts, mode):
  path, src = source
  fresh = tu.flat_numpy(parts[0].init(0).params)
  got, log = _step0(tmp_path, parts, path, mode)
  taken = sorted(n for n in src if EXPECTED[mode](n))
  kept = sorted(n for n in src if not EXPECTED[mode](n))
  assert taken and kept and EMB in (taken if mode.startswith("regex") else kept)
  for n in taken:
    np.testing.assert_array_equal(got[n], src[n], err_msg=n)
  for n in kept:
    np.testing.assert_array_equal(got[n], fresh[n], err_msg=n)
  # The two references differ, so each comparison above really tells them apart.
  assert all(not np.array_equal(src[n], fresh[n]) for n in taken + kept
             if not n.endswith("norm/scale"))
  assert f"(transfer mode {mode!r})" in log
  assert f"loaded {len(taken)} tensors: {', '.join(taken[:4])}" in log
  assert f"kept fresh (seed 0): {', '.join(kept[:4])}" in log


def test_modes_split_t5_into_attention_mlp_and_the_rest(parts):
  names = sorted(tu.flat_numpy(parts[0].init(0).params))
  emb = tu.TINY.embedding_names
  att, _ = transfer_modes.select("attention_only", names, emb)
  mlp, _ = transfer_modes.select("mlp_only", names, emb)
  assert not set(att) & set(mlp)
  rest = sorted(set(names) - set(att) - set(mlp))
  assert all(n in emb or n.endswith(("encoder_norm/scale", "decoder_norm/scale"))
             for n in rest), rest
  both, _ = transfer_modes.select("first_k_layers:2", names, emb)
  assert both == [n for n in names if "/layers_" in n]


@pytest.mark.parametrize("mode, message", [
    ("attention", "Unknown TRANSFER_MODE 'attention'"),
    ("mlp_onyl", "Did you mean 'mlp_only'?"),
    ("first_k_layers:0", "K must be an integer >= 1"),
    ("first_k_layers:two", "K must be an integer >= 1"),
    ("regex:(unclosed", "regex '(unclosed' is invalid"),
    ("regex:", "empty regex"),
])
def test_bad_modes_are_rejected_up_front(mode, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
    trainer.TrainConfig(model_dir="/tmp/x", train_steps=1, batch_size=1, inputs_length=1,
                        targets_length=1, transfer_mode=mode)


def test_regex_list_splits_only_at_top_level_commas():
  assert transfer_modes.split_patterns(r"a{1,2},b[,]c,d\,e") == ["a{1,2}", "b[,]c", "d,e"]


def test_modes_that_take_nothing_name_themselves(tmp_path, source, parts):
  path, _ = source
  with pytest.raises(ValueError, match="K=3 exceeds the model's depth"):
    _step0(tmp_path, parts, path, "first_k_layers:3")
  with pytest.raises(ValueError, match="regex 'no_such' matches no parameter"):
    _step0(tmp_path, parts, path, "regex:encoder,no_such")


def test_lstm_family_gets_a_clear_error_for_t5_groups_and_works_by_layer():
  config = LSTMConfig(vocab_size=64, emb_dim=16, hidden_dim=8, num_layers=2)
  model = registry.build_model(config)
  x = jnp.ones((1, 4), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, x))["params"]
  names = sorted(tu.flat_numpy(jax.tree.map(lambda s: np.zeros(()), shapes)))
  for mode in ("attention_only", "mlp_only"):
    with pytest.raises(ValueError, match=f"TRANSFER_MODE '{mode}' takes no parameter"):
      transfer_modes.select(mode, names, config.embedding_names)
  taken, kept = transfer_modes.select("first_k_layers:1", names, config.embedding_names)
  assert taken == [n for n in names if n.startswith(("encoder/layers_0/",
                                                     "decoder/layers_0/"))]
  assert EMB in kept


# The project's families (a test elsewhere may register a toy family in this process).
@pytest.mark.parametrize("family", [n for n in registry.registered() if hasattr(models, n)])
def test_every_registered_family_gets_its_groups_or_a_clear_error(family):
  config = getattr(models, family)()  # default sizes: only shapes are traced
  model = registry.build_model(config)
  x = jnp.ones((1, 4), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, x))["params"]
  names = sorted(tu.flat_numpy(jax.tree.map(lambda s: np.zeros(()), shapes)))
  for mode in ("attention_only", "mlp_only", "first_k_layers:1"):
    expected = [n for n in names if EXPECTED[mode](n) and n not in config.embedding_names]
    if expected:
      assert transfer_modes.select(mode, names, config.embedding_names)[0] == expected
    else:
      with pytest.raises(ValueError, match=f"TRANSFER_MODE '{mode}' takes no parameter"):
        transfer_modes.select(mode, names, config.embedding_names)


def test_moment_matching_redraws_only_the_fresh_tensors_when_asked(tmp_path, source, parts):
  path, src = source
  default = tu.flat_numpy(parts[0].init(0).params)
  only = mm.MomentMatchingInit(path, "per_param", checkpoint_step="latest", only_fresh=True)
  everything = mm.MomentMatchingInit(path, "per_param", checkpoint_step="latest")
  got, log = _step0(tmp_path, parts, path, "attention_only", only)
  # The reference: moment matching of the whole model, no transfer.
  redrawn, _ = _step0(tmp_path, parts, None, "all", everything)
  for n in src:
    if _attention(n):
      np.testing.assert_array_equal(got[n], src[n], err_msg=n)      # transferred
    elif n == EMB:
      np.testing.assert_array_equal(got[n], default[n])             # never re-drawn
    else:
      np.testing.assert_array_equal(got[n], redrawn[n], err_msg=n)  # re-drawn
      assert not np.array_equal(got[n], default[n]), n
  assert "only the tensors the transfer kept fresh (ONLY_FRESH=True)" in log
  # Default behaviour unchanged: every grouped tensor is re-drawn, transferred or not.
  all_redrawn, _ = _step0(tmp_path, parts, path, "attention_only", everything)
  for n in src:
    if n != EMB:
      np.testing.assert_array_equal(all_redrawn[n], redrawn[n], err_msg=n)


def test_trainer_runs_a_partial_transfer_and_logs_it(tmp_path, source):
  path, src = source
  result = tu.run(str(tmp_path / "ft"), steps=1, lr=0.0, initial=path,
                  transfer_mode="mlp_only", task="identity_tiny")
  got = tu.flat_numpy(result.state.params)
  for n in src:
    if EXPECTED["mlp_only"](n):
      np.testing.assert_array_equal(got[n], src[n], err_msg=n)
    else:
      assert not np.array_equal(got[n], src[n]) or n.endswith("norm/scale"), n
  assert "(transfer mode 'mlp_only')" in "\n".join(result.restore_log)


def test_a_study_source_with_a_partial_mode_loads(tmp_path, capsys):
  gin_file = test_study._write_study(tmp_path, """
      'set': {'pretrain': ['quickstart/pretrain_set_text.gin']},
      'set_attention': {'pretrain': ['quickstart/pretrain_set_text.gin'],
                        'transfer_mode': 'attention_only', 'stats_of': 'set',
                        'bindings': ['INIT_ONLY_FRESH = True']},
      'set_regex': {'pretrain': ['quickstart/pretrain_set_text.gin'],
                        'transfer_mode': 'regex:^encoder/,relpos'},
  """)
  argv = [f"--gin_file={gin_file}", f"--study_dir={tmp_path / 'st'}", "--print_commands",
          "--only=set_attention.*.n16.*,set_regex.*.n16.*"]
  assert study_lib.main(argv) == 0
  lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines()
           if line and not line.startswith("#")]
  flat = [a for line in lines for a in line]
  attention = next(line for line in lines if "--gin.TRANSFER_MODE='attention_only'" in line)
  assert "--gin_file=init/moment_matching.gin" in attention
  assert "--gin.INIT_ONLY_FRESH=True" in attention
  assert "--gin.TRANSFER_MODE='regex:^encoder/,relpos'" in flat

  bad = test_study._write_study(tmp_path, "'a': {'transfer_mode': 'first_k_layers:0'}",
                                name="bad.gin")
  assert study_lib.main([f"--gin_file={bad}", "--study_dir=/tmp/x", "--dry_run"]) == 1
  assert "K must be an integer >= 1" in capsys.readouterr().err
