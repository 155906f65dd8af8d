"""Cheap structural checks: TF-free core imports, Gin files, checkpoint retention."""

import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import pytest

from synthpre_jax import checkpoints
from synthpre_jax.cli import gin_utils
from synthpre_jax.training import optimizers
from synthpre_jax.cli import train as train_cli

REPO = Path(__file__).resolve().parents[1]


def test_core_imports_without_tensorflow_or_seqio():
  code = textwrap.dedent("""
      import sys
      class Block:
          def find_spec(self, name, path=None, target=None):
              if name.split('.')[0] in ('tensorflow', 'seqio', 'tensorflow_datasets', 'tasks'):
                  raise ImportError('blocked: ' + name)
      sys.meta_path.insert(0, Block())
      import synthpre_jax.models, synthpre_jax.training.trainer, synthpre_jax.checkpoints
      import synthpre_jax.training.steps, synthpre_jax.partitioning, synthpre_jax.cli.train
      import synthpre_jax.data.pipeline
      import synthpre_jax.init.param_groups, synthpre_jax.init.moment_matching, synthpre_jax.init.param_stats
      assert 'matplotlib' not in sys.modules  # imported only when plotting
      print('ok')
  """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
  assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# The T5 model files (the LSTM ones are checked in tests/test_lstm.py).
@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "gin" / "models").glob("t5_*.gin")))
def test_every_model_gin_file_parses_into_a_valid_config(name):
  gin_utils.parse_gin([f"models/{name}.gin"], [])
  cfg = train_cli.CONFIGURABLES["T5Config"]()
  v11 = name.startswith("t5_1_1")
  assert cfg.mlp_activations == (("gelu", "linear") if v11 else ("relu",))
  assert cfg.logits_via_embedding is (not v11)
  assert cfg.vocab_size == (8192 if name.endswith("tiny_text")
                            else 512 if name.endswith("tiny") else 32128)


def test_recipes_parse_and_name_unset_macros():
  for recipe in ("quickstart/pretrain_set.gin", "quickstart/finetune_identity.gin"):
    with pytest.raises(ValueError, match="MODEL_DIR: usually set by the command line"):
      gin_utils.parse_gin([recipe], [])
  gin_utils.parse_gin(["quickstart/pretrain_set.gin"], ["MODEL_DIR = '/tmp/x'"])


def test_packaged_gin_dir_holds_the_recipes():
  root = Path(gin_utils.packaged_gin_dir())
  assert (root / "pretrain.gin").exists() and (root / "models" / "t5_1_0_small.gin").exists()


def test_keeps_last_n_plus_best_checkpoint(tmp_path):
  manager = checkpoints.make_manager(str(tmp_path), checkpoints.CheckpointConfig(keep=2))
  state_like = {"w": jnp.ones((2,))}
  accuracy = {1: 0.3, 2: 0.9, 3: 0.4, 4: None, 5: 0.5}
  for step, acc in accuracy.items():
    manager.save(step, args=checkpoints.ocp.args.Composite(
        params=checkpoints.ocp.args.StandardSave(state_like)),
        metrics=None if acc is None else {checkpoints.BEST_METRIC: acc})
  manager.wait_until_finished()
  assert manager.all_steps() == [2, 4, 5]


def test_rsqrt_schedule_is_the_papers():
  lr = optimizers.make_schedule(optimizers.OptimizerConfig())
  assert float(lr(0)) == pytest.approx(0.01)
  assert float(lr(40_000)) == pytest.approx(1 / 200)
  const = optimizers.make_schedule(optimizers.OptimizerConfig(schedule="constant",
                                                              learning_rate=1e-3))
  assert float(const(123)) == pytest.approx(1e-3)
