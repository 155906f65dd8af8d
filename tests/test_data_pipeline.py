"""Tests of the SeqIO-to-numpy batch adapter on the tiny synthetic tasks."""
import numpy as np
import pytest

from synthpre_jax.data import pipeline, task_metadata
from tasks.synthetic import generators
from tasks.synthetic.config import TINY

LENGTHS = {"inputs": 68, "targets": 65}


def _batches(n, **kwargs):
  args = dict(task_name="identity_tiny", feature_lengths=LENGTHS, split="train",
              global_batch_size=8, seed=0, shuffle=False, process_index=0,
              process_count=1)
  args.update(kwargs)
  it = pipeline.get_batches(**args)
  out = [next(it) for _ in range(n)]
  it.close()
  return out


def _padded_example(task, index, split="train"):
  from tasks.registry import DATA_SEED
  inputs, targets = generators.generate(task, TINY, split, DATA_SEED, index)
  pad = lambda x, n: np.pad(np.append(x, 1), (0, n - len(x) - 1))
  return pad(inputs, LENGTHS["inputs"]), pad(targets, LENGTHS["targets"])


def test_unknown_task_lists_closest_first():
  with pytest.raises(ValueError) as err:
    pipeline.resolve_task("sett")
  msg = str(err.value)
  assert "Unknown task or mixture 'sett'" in msg
  listed = msg.split("registered: ")[1].rstrip(".").split(", ")
  assert listed[0] == "set" and len(listed) == 5
  assert {"set", "set_tiny", "identity"} <= set(listed)
  assert pipeline.resolve_task("set_tiny").name == "set_tiny"


def test_feature_length_check(monkeypatch):
  assert pipeline.check_feature_lengths("set", {"inputs": 224, "targets": 221}) == []
  with pytest.raises(ValueError) as err:
    pipeline.check_feature_lengths("set", {"inputs": 100, "targets": 221})
  msg = str(err.value)
  assert "truncat" in msg.lower() and "'inputs'" in msg
  assert "224" in msg and "100" in msg and "ALLOW_TRUNCATION" in msg
  warnings = pipeline.check_feature_lengths(
      "set_tiny", {"inputs": 20, "targets": 20}, allow_truncation=True)
  assert len(warnings) == 2 and all("TRUNCATE" in w for w in warnings)
  # Tasks without known maximum lengths are not checked.
  from tasks import registry
  monkeypatch.delitem(task_metadata._MAX_LENGTHS, "set_tiny")  # pylint: disable=protected-access
  assert pipeline.check_feature_lengths("set_tiny", {"inputs": 5, "targets": 5}) == []


def test_batches_shapes_eos_and_content():
  batches = _batches(2, task_name="set_tiny")
  for step, batch in enumerate(batches):
    assert set(batch) == {"encoder_input_tokens", "decoder_input_tokens",
                          "decoder_target_tokens", "decoder_loss_weights"}
    assert batch["encoder_input_tokens"].shape == (8, 68)
    assert batch["decoder_target_tokens"].shape == (8, 65)
    assert all(v.dtype == np.int32 for v in batch.values())
    for key in ("encoder_input_tokens", "decoder_target_tokens"):
      for row in batch[key]:
        n = int(np.count_nonzero(row))
        assert row[n - 1] == 1 and 1 not in row[:n - 1] and not row[n:].any()
    np.testing.assert_array_equal(batch["decoder_loss_weights"],
                                  batch["decoder_target_tokens"] != 0)
    np.testing.assert_array_equal(batch["decoder_input_tokens"][:, 1:],
                                  batch["decoder_target_tokens"][:, :-1])
    # Unshuffled, one process: row i of batch j is example j * 8 + i.
    for i in range(8):
      inputs, targets = _padded_example("set", step * 8 + i)
      np.testing.assert_array_equal(batch["encoder_input_tokens"][i], inputs)
      np.testing.assert_array_equal(batch["decoder_target_tokens"][i], targets)


def test_resume_matches_uninterrupted_stream():
  full = _batches(5, shuffle=True, seed=7)
  resumed = _batches(2, shuffle=True, seed=7, start_step=3)
  for a, b in zip(full[3:], resumed):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  other_seed = _batches(1, shuffle=True, seed=8)
  assert not np.array_equal(full[0]["encoder_input_tokens"],
                            other_seed[0]["encoder_input_tokens"])


def test_process_shards_are_disjoint_and_cover():
  whole = _batches(3)
  shards = [_batches(3, process_index=p, process_count=2) for p in range(2)]
  rows = []
  for p, shard in enumerate(shards):
    for j, batch in enumerate(shard):
      assert batch["encoder_input_tokens"].shape == (4, 68)
      for i in range(4):  # process p reads examples p, p + 2, p + 4, ...
        inputs, _ = _padded_example("identity", (j * 4 + i) * 2 + p)
        np.testing.assert_array_equal(batch["encoder_input_tokens"][i], inputs)
      rows += [tuple(r) for r in batch["encoder_input_tokens"]]
  assert len(set(rows)) == len(rows) == 24
  assert set(rows) == {tuple(r) for b in whole for r in b["encoder_input_tokens"]}


def test_argument_errors():
  with pytest.raises(ValueError, match="multiple of the process count"):
    pipeline.get_batches(task_name="set_tiny", feature_lengths=LENGTHS, split="train",
                         global_batch_size=6, seed=0, shuffle=False, process_index=0,
                         process_count=4)
  with pytest.raises(ValueError, match="seed"):
    pipeline.get_batches(task_name="set_tiny", feature_lengths=LENGTHS, split="train",
                         global_batch_size=8, seed=None, shuffle=True, process_index=0,
                         process_count=1)


def test_process_defaults_come_from_jax():
  batch = next(pipeline.get_batches(
      task_name="identity_tiny", feature_lengths=LENGTHS, split="validation",
      global_batch_size=4, seed=0, shuffle=False))
  assert batch["encoder_input_tokens"].shape == (4, 68)
  inputs, _ = _padded_example("identity", 0, split="validation")
  np.testing.assert_array_equal(batch["encoder_input_tokens"][0], inputs)


def test_finite_split_pads_the_last_batch_with_weightless_rows():
  import seqio
  import tensorflow as tf

  name = "test_finite_five_examples"
  if name not in seqio.TaskRegistry.names():
    vocab = seqio.PassThroughVocabulary(size=512, eos_id=1)
    data = {"inputs": [[5, 6, 7]] * 5, "targets": [[8, 9]] * 5}
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(
            lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensor_slices(
                {k: tf.constant(v, tf.int32) for k, v in data.items()}),
            splits=["validation"]),
        output_features={k: seqio.Feature(vocab, add_eos=True, dtype=tf.int32)
                         for k in ("inputs", "targets")},
        preprocessors=[seqio.preprocessors.append_eos_after_trim], metric_fns=[])
  batches = list(pipeline.get_batches(
      task_name=name, feature_lengths={"inputs": 8, "targets": 4}, split="validation",
      global_batch_size=4, seed=None, shuffle=False, num_epochs=1, process_index=0,
      process_count=1, pad_last_batch=True))
  assert [b["decoder_target_tokens"].shape for b in batches] == [(4, 4), (4, 4)]
  weights = np.concatenate([b["decoder_loss_weights"] for b in batches])
  assert weights.sum(axis=1).tolist() == [3, 3, 3, 3, 3, 0, 0, 0]
  assert not batches[1]["encoder_input_tokens"][1:].any()


def test_every_spec_task_id_is_registered_with_its_tiny_variant():
  import seqio
  from tasks import registry

  simple = list(registry.SIMPLE_TASKS)
  lime_ids = ["lime_deduct", "lime_abduct", "lime_induct"]
  assert len(simple) == 18
  for name in simple + lime_ids:
    for suffix in ("", "_tiny"):
      assert pipeline.resolve_task(name + suffix).name == name + suffix
  for suffix in ("", "_tiny"):
    mixture = seqio.get_mixture_or_task("lime" + suffix)
    assert sorted(t.name for t in mixture.tasks) == sorted(t + suffix for t in lime_ids)
  with pytest.raises(ValueError, match="TRUNCATE"):
    pipeline.check_feature_lengths("lime_tiny", {"inputs": 100, "targets": 100})
  batch = next(pipeline.get_batches(
      task_name="lime_tiny", feature_lengths={"inputs": 128, "targets": 100}, split="train",
      global_batch_size=4, seed=0, shuffle=False, process_index=0, process_count=1))
  assert batch["encoder_input_tokens"].shape == (4, 128)
