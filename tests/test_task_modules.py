"""Tasks defined in a user's own module: registration, MIXTURE_OR_TASK_MODULE, the CLIs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from synthpre_jax.data import task_metadata

from synthpre_jax.data import task_modules

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The README's example ("Adding a task"), kept identical to it by test_readme_example.
MY_TASKS = textwrap.dedent('''\
    """My synthetic task `rotate`: the target is the input sequence rotated right by one."""
    from tasks.synthetic.generators import register
    from tasks.synthetic.kernels import begin, draw_int, draw_token, end, kernel, stream_key


    @register("rotate")
    @kernel
    def rotate(keys, p, out):
      """seq = L ~ U{min_len..max_len} random tokens; target = seq[-1:] + seq[:-1]."""
      for e in range(len(keys)):
        at, t0 = begin(out, e)
        n = draw_int(stream_key(keys[e], 1), 0, p.min_len, p.max_len)
        for j in range(n):
          out.inputs[at + j] = draw_token(stream_key(keys[e], 2), j, p)
        out.targets[t0] = out.inputs[at + n - 1]
        out.targets[t0 + 1:t0 + n] = out.inputs[at:at + n - 1]
        end(out, e, n, n, p.empty_target)
    ''')


def _run(args: list[str], cwd, timeout: int = 600) -> subprocess.CompletedProcess:
  env = {**os.environ, "PYTHONPATH": str(cwd)}
  env.pop("SYNTHPRE_VOCAB_PATH", None)
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_readme_example():
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  assert MY_TASKS in readme


def test_user_module_trains_inspects_and_evaluates_outside_the_repo(tmp_path):
  (tmp_path / "my_tasks.py").write_text(MY_TASKS)
  run = tmp_path / "run"
  train = _run(["-m", "synthpre_jax.cli.train", "--gin_file=models/t5_1_0_tiny.gin",
                "--gin_file=pretrain.gin", "--gin.MIXTURE_OR_TASK_MODULE='my_tasks'",
                "--gin.MIXTURE_OR_TASK_NAME='rotate_tiny'",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 68, 'targets': 65}",
                "--gin.TRAIN_STEPS=3", "--gin.BATCH_SIZE=8", "--gin.EVAL_PERIOD=3",
                "--gin.EVAL_STEPS=1", "--gin.CHECKPOINT_PERIOD=3", "--gin.LOG_PERIOD=1",
                f"--gin.MODEL_DIR='{run}'"], tmp_path)
  assert train.returncode == 0, train.stderr[-3000:]
  assert "MIXTURE_OR_TASK_MODULE = 'my_tasks'" in (run / "config.gin").read_text()

  inspect = _run(["-m", "tasks.inspect", "rotate_tiny", "--num", "2",
                  "--mixture_or_task_module", "my_tasks"], tmp_path)
  assert inspect.returncode == 0, inspect.stderr[-3000:]
  assert "== rotate_tiny: 2 example(s)" in inspect.stdout
  assert inspect.stdout.count("  inputs  (") == 2 and "special ids: <task_div>" in inspect.stdout

  evaluate = _run(["-m", "synthpre_jax.cli.evaluate", f"--gin_file={run}/config.gin",
                   "--gin.evaluate.split='validation'", "--gin.evaluate.max_examples=4"],
                  tmp_path)
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  [metrics_file] = (run / "eval").glob("validation_step3*.metrics.json")
  scored = json.loads(metrics_file.read_text())
  assert scored["task"] == "rotate_tiny" and scored["num_examples"] == 4


def test_train_names_a_missing_module(tmp_path):
  res = _run(["-m", "synthpre_jax.cli.train", "--gin_file=models/t5_1_0_tiny.gin",
              "--gin_file=pretrain.gin", "--gin.MIXTURE_OR_TASK_MODULE='no_such_tasks'",
              "--gin.MIXTURE_OR_TASK_NAME='rotate_tiny'",
              f"--gin.MODEL_DIR='{tmp_path / 'run'}'"], tmp_path)
  assert res.returncode == 1
  assert "Cannot import MIXTURE_OR_TASK_MODULE 'no_such_tasks'" in res.stderr
  assert "sys.path" in res.stderr and str(tmp_path) in res.stderr


def test_import_task_modules_errors(tmp_path, monkeypatch):
  assert task_modules.module_names(None) == []
  assert task_modules.module_names("a, b") == ["a", "b"]
  with pytest.raises(ValueError, match=r"'no_such_module_xyz'.*sys\.path"):
    task_modules.import_task_modules("no_such_module_xyz")
  # A module that exists but imports a missing one: that error propagates unchanged.
  (tmp_path / "broken_tasks.py").write_text("import no_such_dependency_xyz\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
    task_modules.import_task_modules("broken_tasks")


def test_register_after_import_registers_seqio_tasks():
  import seqio
  import tasks  # noqa: F401  (registers the project's tasks)
  from tasks import registry
  from tasks.fixed_splits import specs as fixed_specs
  from tasks.synthetic import catalog, generators, kernels
  from tasks.synthetic.config import TINY

  @generators.register("copy_for_test")
  @kernels.kernel
  def copy_for_test(keys, p, out):  # pylint: disable=unused-variable
    for e in range(len(keys)):
      at, t0 = kernels.begin(out, e)
      n = kernels.draw_int(kernels.stream_key(keys[e], 1), 0, p.min_len, p.max_len)
      for j in range(n):
        out.inputs[at + j] = kernels.draw_token(kernels.stream_key(keys[e], 2), j, p)
      out.targets[t0:t0 + n] = out.inputs[at:at + n]
      kernels.end(out, e, n, n, p.empty_target)

  names = set(seqio.TaskRegistry.names())
  for name in ("copy_for_test", "copy_for_test_tiny", "copy_for_test_fixed",
               "copy_for_test_tiny_fixed"):
    assert name in names, name
  assert task_metadata.max_lengths("copy_for_test_tiny") == {"inputs": 68, "targets": 65}
  assert "copy_for_test_tiny_fixed" in fixed_specs.FIXED_TASKS
  assert catalog.get("copy_for_test_tiny").task == "copy_for_test"
  ex = next(seqio.get_mixture_or_task("copy_for_test_tiny").get_dataset(
      sequence_length=None, split="train", shuffle=False).as_numpy_iterator())
  inputs, targets = generators.generate("copy_for_test", TINY, "train", 0, 0)
  assert ex["targets"].tolist() == targets.tolist() + [1]  # + EOS
  assert ex["inputs"].tolist() == inputs.tolist() + [1]


def test_register_rolls_back_when_the_config_check_fails():
  import tasks  # noqa: F401
  from tasks.synthetic import generators

  def never(task, cfg):
    raise ValueError(f"{task} needs a larger pool")

  with pytest.raises(ValueError, match="needs a larger pool"):
    generators.register("unsampleable_for_test", check=never)(lambda keys, p, out: None)
  assert "unsampleable_for_test" not in generators.GENERATORS


def test_flag_is_the_gin_macro():
  from synthpre_jax.cli import gin_utils
  _, bindings = gin_utils.parse_args(
      ["--gin_file=x.gin", "--mixture_or_task_module=my_tasks"], "test")
  assert bindings == ["MIXTURE_OR_TASK_MODULE = 'my_tasks'"]
