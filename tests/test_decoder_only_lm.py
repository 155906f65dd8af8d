"""Language modelling with the decoder-only family: `loss_on='all'` (the batch rewrite
against a hand-worked example, unchanged target logits, the loss's extra terms) and the
natural LM tasks on the embedded corpus."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio

from synthpre_jax.models import DecoderOnlyConfig
from synthpre_jax.models.decoder_only import DecoderOnly, lm_batch
from synthpre_jax.training import losses
from tasks import corpus, natural, text_vocab

SMALL = dict(vocab_size=40, emb_dim=16, num_heads=2, head_dim=8, num_layers=2, mlp_dim=32,
             dropout_rate=0.0)
X = np.array([[5, 6, 1, 0], [7, 1, 0, 0], [0, 0, 0, 0]], np.int32)
Y = np.array([[8, 1, 0], [9, 10, 1], [11, 12, 1]], np.int32)
Y_IN = np.array([[0, 8, 1], [0, 9, 10], [0, 11, 12]], np.int32)


def _batch():
  return {"encoder_input_tokens": X, "decoder_target_tokens": Y,
          "decoder_input_tokens": Y_IN, "decoder_loss_weights": (Y > 0).astype(np.float32)}


def test_concatenated_batch_against_a_hand_worked_example():
  out = jax.tree.map(np.asarray, lm_batch.concatenated(_batch()))
  assert out["encoder_input_tokens"].shape == (3, 1) and not out["encoder_input_tokens"].any()
  # Row 0: sequence [5 6 1 | 0 8 1]: predicts 6 1 (inputs), then 8 1 (targets).
  np.testing.assert_array_equal(out["decoder_input_tokens"][0], [5, 6, 1, 0, 8, 1, 0])
  np.testing.assert_array_equal(out["decoder_target_tokens"][0], [6, 1, 0, 8, 1, 0, 0])
  np.testing.assert_array_equal(out["decoder_loss_weights"][0], [1, 1, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(out["decoder_input_tokens"][1], [7, 1, 0, 9, 10, 0, 0])
  np.testing.assert_array_equal(out["decoder_target_tokens"][1], [1, 0, 9, 10, 1, 0, 0])
  np.testing.assert_array_equal(out["decoder_loss_weights"][1], [1, 0, 1, 1, 1, 0, 0])
  # Empty inputs: the batch's own decoder side, nothing added.
  np.testing.assert_array_equal(out["decoder_input_tokens"][2], [0, 11, 12, 0, 0, 0, 0])
  np.testing.assert_array_equal(out["decoder_target_tokens"][2], [11, 12, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(out["decoder_loss_weights"][2], [1, 1, 1, 0, 0, 0, 0])


def test_target_logits_are_unchanged_and_the_loss_gains_the_input_terms():
  cfg = DecoderOnlyConfig(**SMALL)
  model = DecoderOnly(cfg)
  params = nn.unbox(model.init(jax.random.PRNGKey(0), X, Y_IN)["params"])
  batch = _batch()
  cat = lm_batch.concatenated(batch)
  logits = np.asarray(model.apply({"params": params}, X, Y_IN))
  cat_logits = np.asarray(model.apply({"params": params}, cat["encoder_input_tokens"],
                                      cat["decoder_input_tokens"]))
  n = (X > 0).sum(1)
  for row in range(3):
    for j in range(Y.shape[1]):  # target j sits at position n + j of the concatenation
      np.testing.assert_allclose(cat_logits[row, n[row] + j], logits[row, j], atol=1e-5)
  base = losses.batch_metrics(jnp.asarray(logits), Y, batch["decoder_loss_weights"], 0.0)
  full = losses.batch_metrics(jnp.asarray(cat_logits), cat["decoder_target_tokens"],
                              cat["decoder_loss_weights"], 0.0)
  assert float(full["num_tokens"]) == float(base["num_tokens"]) + (2 + 1 + 0)
  assert float(full["loss_sum"]) > float(base["loss_sum"])
  # The same through the config, as the train and validation steps call it.
  via_config = DecoderOnlyConfig(**SMALL, loss_on="all").training_batch(batch)
  np.testing.assert_array_equal(via_config["decoder_target_tokens"],
                                cat["decoder_target_tokens"])
  assert DecoderOnlyConfig(**SMALL).training_batch(batch) is batch


def test_loss_on_is_validated_and_packing_is_refused():
  with pytest.raises(ValueError, match="loss_on"):
    DecoderOnlyConfig(**SMALL, loss_on="inputs")
  packed = dict(_batch(), encoder_segment_ids=(X > 0).astype(np.int32))
  with pytest.raises(ValueError, match="packed"):
    lm_batch.concatenated(packed)


def test_trainer_trains_a_decoder_only_lm_on_all_tokens(tmp_path):
  import train_utils  # pylint: disable=g-import-not-at-top  (tests/ helper, on sys.path)
  from synthpre_jax.training import hooks  # pylint: disable=g-import-not-at-top
  cfg = DecoderOnlyConfig(vocab_size=512, emb_dim=32, num_heads=2, head_dim=16,
                          num_layers=2, mlp_dim=64, dropout_rate=0.0, loss_on="all")
  seen = []
  record = hooks.every_n_steps(lambda info: seen.append(info.train_metrics["loss"]), 1)
  train_utils.run(str(tmp_path / "lm"), steps=12, model=cfg, lr=3e-2, ckpt_period=12,
                  eval_period=12, log_period=1, hooks=[record])
  assert len(seen) == 12 and np.all(np.isfinite(seen))
  assert np.mean(seen[-3:]) < np.mean(seen[:3]) - 0.3, seen


def _lm_examples(split, targets):
  task = seqio.get_mixture_or_task(natural.CORPUS_LM_TASK)
  ds = task.get_dataset(sequence_length={"inputs": 1, "targets": targets}, split=split,
                        shuffle=False, num_epochs=1)
  return list(ds.as_numpy_iterator())


def test_corpus_lm_task_is_the_tokenized_corpus_in_chunks():
  vocab = text_vocab.get_vocabulary()
  got = _lm_examples("validation", 64)
  for x in got:
    np.testing.assert_array_equal(x["inputs"], [1])
    assert x["targets"][-1] == 1 and 1 not in x["targets"][:-1]
    assert 2 <= len(x["targets"]) <= 64
  paragraphs = corpus.paragraphs("validation")
  want = np.concatenate([vocab.encode(p) for p in paragraphs]).astype(np.int32)
  np.testing.assert_array_equal(np.concatenate([x["targets"][:-1] for x in got]), want)
  groups = -(-len(paragraphs) // natural.DOCS_PER_GROUP)
  assert sum(len(x["targets"]) < 64 for x in got) <= groups
  with pytest.raises(ValueError, match="targets length >= 2"):
    _lm_examples("validation", 1)
