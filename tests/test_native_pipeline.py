"""The TensorFlow-free ("native") input path: the SeqIO path's batches bit for bit, the
numba-free generators, and a short pre-training run with tensorflow and seqio absent."""
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from synthpre_jax.data import native, pipeline
from tasks import synthetic_streams
from tasks.synthetic import catalog

REPO = Path(__file__).resolve().parents[1]
LENGTHS = {"inputs": 68, "targets": 65}
# Import names made unimportable (as if not installed) by `_hiding_env`.
LEAN_HIDDEN = ("tensorflow", "seqio", "tensorflow_datasets", "tensorflow_text", "numba")

# sitecustomize.py of a lean image: the hidden packages are not found (find_spec ->
# None, import -> ModuleNotFoundError), as if they were not installed.
SITECUSTOMIZE = """\
import os, sys
HIDDEN = set(os.environ["SYNTHPRE_TEST_HIDE"].split(","))

class _Hide:
  def __init__(self, inner):
    self._inner = inner
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in HIDDEN:
      return None
    find = getattr(self._inner, "find_spec", None)
    return find(name, path, target) if find else None
  def __getattr__(self, attr):
    return getattr(self._inner, attr)

sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
"""


def _hiding_env(tmp_path, hidden=LEAN_HIDDEN):
  site = tmp_path / "lean_site"
  site.mkdir(exist_ok=True)
  (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
  env = dict(os.environ)
  env["SYNTHPRE_TEST_HIDE"] = ",".join(hidden)
  env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")])
  return env


def _batches(path, n, **kwargs):
  args = dict(feature_lengths=LENGTHS, split="train", global_batch_size=8, seed=3,
              shuffle=True, process_index=0, process_count=1, input_pipeline=path)
  args.update(kwargs)
  it = pipeline.get_batches(**args)
  out = [next(it) for _ in range(n)]
  it.close()
  return out


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert sorted(x) == sorted(y)
    for k in x:
      assert x[k].dtype == y[k].dtype == np.int32, k
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.mark.parametrize("task", ["set_tiny", "lime_deduct_tiny", "nesting_language_tiny"])
def test_native_batches_equal_seqio_batches(task, monkeypatch):
  monkeypatch.setattr(synthetic_streams, "STREAM_BLOCK", 7)  # several blocks, partial ones
  cases = [dict(), dict(input_shards=2), dict(process_index=1, process_count=2,
                                               input_shards=2),
           dict(shuffle=False, seed=None, split="validation")]
  for case in cases:
    seqio_batches = _batches("seqio", 4, task_name=task, **case)
    native_batches = _batches("native", 4, task_name=task, **case)
    _assert_same(native_batches, seqio_batches)
    # Resume: start_step=k continues the stream exactly (both paths).
    _assert_same(_batches("native", 2, task_name=task, start_step=2, **case),
                 native_batches[2:])
    _assert_same(_batches("seqio", 1, task_name=task, start_step=3, **case),
                 native_batches[3:])


def test_shuffle_is_seeded_and_stays_inside_blocks(monkeypatch):
  monkeypatch.setattr(synthetic_streams, "STREAM_BLOCK", 16)
  seven = _batches("native", 2, task_name="identity_tiny", seed=7)
  eight = _batches("native", 2, task_name="identity_tiny", seed=8)
  plain = _batches("native", 2, task_name="identity_tiny", shuffle=False, seed=None)
  rows = lambda bs: np.concatenate([b["encoder_input_tokens"] for b in bs])
  assert not np.array_equal(rows(seven), rows(eight))
  # The first 16 examples, in another order.
  assert sorted(map(bytes, rows(seven))) == sorted(map(bytes, rows(plain)))
  np.testing.assert_array_equal(
      synthetic_streams.block_indices(1, 1, 2, None, 4), [9, 11, 13, 15])
  assert sorted(synthetic_streams.block_indices(1, 1, 2, 5, 4)) == [9, 11, 13, 15]


def test_select_input_pipeline():
  assert pipeline.select_input_pipeline("set_tiny") == "native"
  assert pipeline.select_input_pipeline("set_tiny", "seqio") == "seqio"
  assert pipeline.select_input_pipeline("set_tiny", pack=True) == "seqio"
  assert pipeline.select_input_pipeline("simple_tasks_tiny") == "seqio"  # a mixture
  assert pipeline.select_input_pipeline("set_tiny_fixed") == "native"  # a fixed split
  with pytest.raises(ValueError, match="no native"):
    pipeline.select_input_pipeline("simple_tasks_tiny", "native")
  with pytest.raises(ValueError, match="does not pack"):
    pipeline.select_input_pipeline("set_tiny", "native", pack=True)
  with pytest.raises(ValueError, match="one of"):
    pipeline.select_input_pipeline("set_tiny", "tf")


def test_auto_keeps_seqio_for_a_task_replaced_by_another_module(caplog):
  """A user module that replaces a SeqIO task keeps the native source of the old one
  registered: 'auto' must not read it for the new task."""
  import seqio
  from tasks import registry
  name = "set_tiny"
  original = seqio.TaskRegistry.get(name)
  seqio.TaskRegistry.remove(name)
  try:
    seqio.TaskRegistry.add(
        name, source=registry.IndexedSource(lambda split, shuffle_files, seed=None,
                                            shard_info=None: None, splits=("train",)),
        output_features=original.output_features, preprocessors=[], metric_fns=[])
    with caplog.at_level("WARNING"):
      assert pipeline.select_input_pipeline(name) == "seqio"
    assert "does not declare it as its twin" in caplog.text
  finally:
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add_provider(name, original)
  assert pipeline.select_input_pipeline(name) == "native"


def test_native_vocabulary_identity_is_the_seqio_tasks():
  from synthpre_jax.data import vocabulary
  for name in ("set_tiny", "set", "lime_deduct_tiny", "nesting_language_tiny"):
    source = native.native_source(name)
    task = pipeline.resolve_task(name)
    assert (vocabulary.identity_of(source.vocabulary)
            == vocabulary.task_identity(task.output_features))
    assert dict(source.max_lengths()) == pipeline_max_lengths(name)


def pipeline_max_lengths(name):
  from synthpre_jax.data import task_metadata
  return task_metadata.max_lengths(name)


def test_missing_packages_lists_hidden_ones(tmp_path):
  code = ("import json; from synthpre_jax.data import native; "
          "print(json.dumps(native.missing_packages()))")
  done = subprocess.run([sys.executable, "-c", code], env=_hiding_env(tmp_path),
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert done.returncode == 0, done.stderr[-2000:]
  missing = json.loads(done.stdout.strip().splitlines()[-1])
  assert {"tensorflow==2.21.0", "seqio==0.0.20", "numba==0.68.1"} <= set(missing)
  assert not any(m.startswith(("jax", "flax", "gin")) for m in missing)
  assert native.missing_packages() == []  # this test environment has everything


def test_generators_without_numba_make_the_same_examples(tmp_path):
  names = ["set_tiny", "sort_tiny", "count", "union_tiny", "replace", "length_tiny"]
  indices = [0, 1, 2, 511, 512, 100_003, 2**40 + 17]
  code = textwrap.dedent(f"""
      import pickle, sys
      import numpy as np
      from tasks.synthetic import catalog, kernels
      assert kernels.NUMBA_MISSING and "numba" not in sys.modules
      out = {{}}
      for name in {names!r}:
        e = catalog.get(name)
        for seed in (0, 5):
          b = e.generate_batch(e.task, e.cfg, "train", seed, np.asarray({indices!r}))
          out[name, seed] = [np.asarray(x) for x in (b.inputs, b.input_lengths,
                                                     b.targets, b.target_lengths)]
      pickle.dump(out, open(sys.argv[1], "wb"))
  """)
  result = tmp_path / "plain.pkl"
  done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code,
                         str(result)], env=_hiding_env(tmp_path), capture_output=True,
                        text=True, timeout=300, cwd=REPO)
  assert done.returncode == 0, done.stderr[-3000:]
  plain = pickle.loads(result.read_bytes())
  for (name, seed), arrays in plain.items():
    e = catalog.get(name)
    b = e.generate_batch(e.task, e.cfg, "train", seed, np.asarray(indices))
    for got, want in zip(arrays, (b.inputs, b.input_lengths, b.targets, b.target_lengths)):
      np.testing.assert_array_equal(got, want, err_msg=f"{name} seed {seed}")


def _train(model_dir, steps, env):
  cmd = [sys.executable, "-m", "synthpre_jax.train",
         "--gin_file=gin/quickstart/pretrain_set.gin", f"--gin.MODEL_DIR='{model_dir}'",
         f"--gin.TRAIN_STEPS={steps}", "--gin.BATCH_SIZE=8", "--gin.CHECKPOINT_PERIOD=3",
         "--gin.EVAL_PERIOD=3", "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=3",
         "--gin.train.input_pipeline='native'"]
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=600)


def test_pretraining_runs_and_resumes_without_tensorflow_seqio_or_numba(tmp_path):
  env = _hiding_env(tmp_path)
  env["XLA_FLAGS"] = ""  # one CPU device
  model_dir = tmp_path / "run"
  first = _train(model_dir, 3, env)
  assert first.returncode == 0, first.stderr[-3000:]
  assert "input pipeline: native (TF-free) for set_tiny" in first.stderr
  assert (model_dir / "checkpoints" / "3").is_dir()
  resumed = _train(model_dir, 6, env)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resuming" in resumed.stderr
  assert (model_dir / "checkpoints" / "6").is_dir()
  run = json.loads((model_dir / "run.json").read_text())
  assert run["vocabulary"]["name"] == pipeline.task_vocabulary_identity("set_tiny")["name"]
