"""The cached fixed splits (`<task>_fixed`) on the TensorFlow-free path: the SeqIO path's
batches bit for bit (shards, processes, resume, epochs, validation), the TF-free
TFRecord reader against tf.data, damaged files, and a host without TensorFlow.

Every cache here is a few hundred examples in a tmp_path directory."""
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tasks  # noqa: F401  (registers the tasks)
from synthpre_jax.data import native, pipeline, tfrecord
from tasks import synthetic_streams
from tasks.fixed_splits import build as fixed_build
from tasks.fixed_splits import cache as fixed_cache
from tasks.fixed_splits import records as fixed_records, specs
from tasks.synthetic.ragged import Batch
from tests.test_native_pipeline import _assert_same, _hiding_env, REPO

TASK = "set_tiny_fixed"
SMALL = specs.FixedSizes(num_generated=300, num_train=200, num_validation=50, num_files=4)
LENGTHS = {"inputs": 68, "targets": 65}


@pytest.fixture
def small(tmp_path, monkeypatch):
  """`_tiny` fixed tasks of 200 + 50 examples in 4 files of 8-example records, read
  in shuffle blocks of 16; the cache under tmp_path/data."""
  monkeypatch.setenv(fixed_cache.ENV_DATA_DIR, str(tmp_path / "data"))
  monkeypatch.setitem(specs.FIXED_SIZES, "_tiny", SMALL)
  monkeypatch.setattr(specs, "_BUILT", {})
  monkeypatch.setattr(fixed_records, "RECORD_EXAMPLES", 8)
  monkeypatch.setattr(synthetic_streams, "STREAM_BLOCK", 16)
  return specs.ensure_built(TASK)


def _batches(path, n, **kwargs):
  args = dict(task_name=TASK, feature_lengths=LENGTHS, split="train",
              global_batch_size=12, seed=3, shuffle=True, process_index=0,
              process_count=1, input_pipeline=path)
  args.update(kwargs)
  it = pipeline.get_batches(**args)
  out = [b for _, b in zip(range(n), it)]
  it.close()
  return out


def test_native_fixed_batches_equal_seqio_batches(small):
  from synthpre_jax.data import vocabulary
  from synthpre_jax.data import task_metadata
  source = native.native_source(TASK)
  assert pipeline.select_input_pipeline(TASK) == "native"
  assert (vocabulary.identity_of(source.vocabulary)
          == vocabulary.task_identity(pipeline.resolve_task(TASK).output_features))
  assert dict(source.max_lengths()) == task_metadata.max_lengths(TASK)
  # 20 batches of 12 > 200 examples: the stream crosses an epoch inside a batch.
  cases = [dict(), dict(input_shards=2), dict(process_index=1, process_count=2,
                                               input_shards=2),
           dict(input_shards=3),  # 3 does not divide the 4 files: every file read
           dict(start_step=7),  # resume
           dict(split="validation", shuffle=False, seed=None, num_epochs=1,
                pad_last_batch=True)]
  for case in cases:
    n = 6 if case.get("split") == "validation" else 20
    want = _batches("seqio", n, **case)
    got = _batches("native", n, **case)
    _assert_same(got, want)
    if case.get("split") == "validation":
      assert len(got) == 5  # 50 examples: 4 full batches and a padded one
  full = _batches("native", 20)
  _assert_same(_batches("native", 13, start_step=7), full[7:])


def test_shuffle_permutes_inside_blocks_and_epochs_repeat(small):
  source = native.native_source(TASK)
  order = [len(b) for b in source.blocks("train", shard_index=0, num_shards=1,
                                         seed=3, start=0)]
  assert order == [16] * 12 + [8]  # 200 positions: 12 blocks of 16, a partial one
  plain = Batch.concatenate(list(source.blocks("train", shard_index=0, num_shards=1,
                                                  seed=None, start=0)))
  shuffled = Batch.concatenate(list(source.blocks("train", shard_index=0,
                                                     num_shards=1, seed=3, start=0)))
  rows = [tuple(x[0]) for x in plain]
  srows = [tuple(x[0]) for x in shuffled]
  assert srows != rows
  for b in range(13):  # the same examples inside each block
    assert sorted(srows[16 * b:16 * b + 16]) == sorted(rows[16 * b:16 * b + 16])


def test_tf_free_reader_decodes_what_tf_wrote(small, monkeypatch):
  for split in fixed_records.SPLITS:
    for path in small.files(split):  # the record framing, record by record
      assert list(tfrecord.read_records(path)) == [
          r.numpy() for r in tf.data.TFRecordDataset(path)]
    tf_examples = [(e["inputs"].tolist(), e["targets"].tolist(), int(e["index"]))
                   for e in small.dataset(split, with_index=True).as_numpy_iterator()]
    source = native.native_source(TASK)
    for n in (1, 2, 3):  # every example of every shard equals tf.data's decoding
      for p in range(n):
        got = Batch.concatenate(list(source.blocks(split, shard_index=p, num_shards=n,
                                                      seed=None, start=0)))
        assert [(i.tolist(), t.tolist()) for i, t in got] == [
            (i, t) for i, t, _ in tf_examples[p::n]]
    for path in small.files(split):  # the generator indices too
      indices = [fixed_records.deserialize_block(r, small.manifest["token_dtype"])[0]
                 for r in tfrecord.read_records(path)]
      want = [i for _, _, i in tf_examples[int(path[-14:-9])::SMALL.num_files]]
      assert np.concatenate(indices).tolist() == want
  # The CRCs, with a (slow) CRC-32C: TensorFlow's are verified, a flipped bit is found.
  monkeypatch.setattr(tfrecord, "CRC32C", _crc32c)
  path = small.files("validation")[0]
  assert len(list(tfrecord.read_records(path))) == 2
  damaged = bytearray(open(path, "rb").read())
  damaged[40] ^= 1
  bad = small.directory.parent / "flipped.tfrecord"
  bad.write_bytes(bytes(damaged))
  with pytest.raises(ValueError, match="flipped.tfrecord: record 0 .*CRC mismatch"):
    list(tfrecord.read_records(bad))


def _crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit."""
  crc = 0xFFFFFFFF
  for byte in bytes(data):
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


def test_damaged_file_is_a_clear_error_naming_it(small, tmp_path, monkeypatch):
  path = small.files("train")[1]
  cut = tmp_path / "cut.tfrecord"
  shutil.copy(path, cut)
  with open(cut, "r+b") as f:
    f.truncate(cut.stat().st_size - 10)
  with pytest.raises(ValueError, match=r"cut\.tfrecord: record 6 at byte \d+: truncated"):
    list(tfrecord.read_records(cut))
  with pytest.raises(ValueError, match="cut.tfrecord"):
    list(tfrecord.read_records(cut, skip=6))
  # A damaged cache on a host without TensorFlow: the reuse check finds it, and the
  # error says how to rebuild it elsewhere.
  shutil.copy(cut, path)
  monkeypatch.setattr(specs, "_BUILT", {})
  monkeypatch.setattr(fixed_build, "can_write", lambda: False)
  with pytest.raises(RuntimeError, match=r"truncated or overwritten.*python -m "
                                         r"tasks\.build_fixed_splits "
                                         r"set_tiny_fixed --cache_dir DIR"):
    _batches("native", 1)


def test_missing_cache_without_tensorflow_says_where_to_build_it(tmp_path, monkeypatch):
  monkeypatch.setenv(fixed_cache.ENV_DATA_DIR, str(tmp_path / "empty"))
  monkeypatch.setitem(specs.FIXED_SIZES, "_tiny", SMALL)
  monkeypatch.setattr(specs, "_BUILT", {})
  monkeypatch.setattr(fixed_build, "can_write", lambda: False)
  with pytest.raises(RuntimeError, match="not built yet.*needs TensorFlow.*copy DIR/"
                                         "set_tiny_fixed-"):
    _batches("native", 1)
  assert not (tmp_path / "empty").exists()


def test_native_fixed_batches_without_tensorflow_or_seqio(small, tmp_path):
  code = textwrap.dedent(f"""
      import pickle, sys
      from tasks import synthetic_streams
      from tasks.fixed_splits import records as fixed_records, specs
      from synthpre_jax.data import pipeline
      specs.FIXED_SIZES["_tiny"] = specs.FixedSizes(*{tuple(vars(SMALL).values())!r})
      fixed_records.RECORD_EXAMPLES = 8
      synthetic_streams.STREAM_BLOCK = 16
      it = pipeline.get_batches(task_name={TASK!r}, feature_lengths={LENGTHS!r},
                                split="train", global_batch_size=12, seed=3, shuffle=True,
                                process_index=0, process_count=1, input_shards=2,
                                start_step=5, input_pipeline="auto")
      out = [b for _, b in zip(range(15), it)]
      assert "tensorflow" not in sys.modules and "seqio" not in sys.modules
      pickle.dump(out, open(sys.argv[1], "wb"))
  """)
  env = _hiding_env(tmp_path)
  env[fixed_cache.ENV_DATA_DIR] = str(small.directory.parent)
  result = tmp_path / "lean.pkl"
  done = subprocess.run([sys.executable, "-c", code, str(result)], env=env,
                        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert done.returncode == 0, done.stderr[-3000:]
  _assert_same(pickle.loads(result.read_bytes()),
               _batches("seqio", 15, input_shards=2, start_step=5))
