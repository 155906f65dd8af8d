"""Vocabulary identity: recorded in every checkpoint, checked on every transfer, and the
paper recipes refuse any text vocabulary but T5's."""
import hashlib
import json
import pathlib

import pytest

from synthpre_jax import checkpoints
from synthpre_jax.data import vocabulary
from synthpre_jax.cli import train as train_cli
from synthpre_jax.data import pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tasks" / "vocab" / "synthpre_en_8k.model"
FAST = ["--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=8", "--gin.EVAL_PERIOD=2",
        "--gin.CHECKPOINT_PERIOD=2", "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=2"]


def _identity(task: str) -> dict:
  return vocabulary.task_identity(pipeline.resolve_task(task).output_features)


def test_identities_of_the_shipped_text_vocabulary_and_the_synthetic_layouts():
  assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == vocabulary.SHIPPED_SPM_SHA256
  text = _identity("scan_simple")
  assert text["kind"] == "sentencepiece" and text["sha256"] == vocabulary.SHIPPED_SPM_SHA256
  assert text["name"].startswith("synthpre_en_8k:") and text["extra_ids"] == 100
  assert _identity("cnndm_10k") == text  # every text task shares it
  tiny, paper = _identity("set_tiny"), _identity("set")
  assert tiny["kind"] == "synthetic" and tiny["layout"]["vocab_size"] == 512
  assert _identity("identity_tiny") == tiny and paper != tiny
  assert not vocabulary.same(tiny, text)


def test_t5s_model_bytes_are_recognised_by_hash():
  ident = vocabulary.sentencepiece_identity(b"not t5", 100, 32100, "x/spiece.model")
  assert ident["name"] != "t5" and ident["name"].startswith("spiece:")
  assert vocabulary.t5_identity()["sha256"] == vocabulary.KNOWN_TEXT_VOCABULARIES["t5"]


def test_transfer_check_refuses_a_mismatch_and_names_both_and_the_fix():
  t5, ours = vocabulary.t5_identity(), _identity("scan_simple")
  with pytest.raises(ValueError) as e:
    vocabulary.check_transfer(t5, ours, source_path="/ckpt", copies_embedding=True,
                              allow_mismatch=False)
  message = str(e.value)
  assert "t5 (sentencepiece" in message and "synthpre_en_8k:" in message
  assert "SYNTHPRE_VOCAB_PATH=" in message and "ALLOW_VOCAB_MISMATCH=True" in message
  with pytest.raises(ValueError, match="Vocabulary mismatch"):  # a copied embedding
    vocabulary.check_transfer(t5, ours, source_path="/ckpt", copies_embedding=True,
                              allow_mismatch=True)
  lines = vocabulary.check_transfer(t5, ours, source_path="/ckpt", copies_embedding=False,
                                    allow_mismatch=True)
  assert "MISMATCH ALLOWED (ALLOW_VOCAB_MISMATCH=True)" in lines[0]
  assert "the same" in vocabulary.check_transfer(ours, ours, source_path="/c",
                                                 copies_embedding=True,
                                                 allow_mismatch=False)[0]


def test_paper_recipe_refuses_the_offline_vocabulary(tmp_path, capsys):
  rc = train_cli.main(["--gin_file=gin/finetune/mtop.gin", "--gin.INITIAL_CHECKPOINT_PATH=None",
                       f"--gin.MODEL_DIR='{tmp_path / 'run'}'"])
  assert rc == 1
  err = capsys.readouterr().err
  assert "requires the 't5' text vocabulary" in err and "synthpre_en_8k:" in err
  assert "SYNTHPRE_VOCAB_PATH" in err and "REQUIRED_TEXT_VOCABULARY=None" in err
  assert not (tmp_path / "run" / "checkpoints").exists()
  with pytest.raises(ValueError, match="requires the 't5'"):
    vocabulary.check_required("t5", _identity("scan_simple"), "")
  vocabulary.check_required("t5", _identity("set"), "")  # synthetic ids are not text


def test_fine_tuning_checks_the_checkpoints_vocabulary(tmp_path, capsys, monkeypatch):
  """A Set model (synthetic ids) fine-tuned on SCAN (text): refused with its embedding,
  refused without the explicit override, allowed and logged with it; every checkpoint
  and the run record name the vocabulary."""
  source = tmp_path / "set"
  assert train_cli.main(["--gin_file=gin/quickstart/pretrain_set_text.gin",
                         f"--gin.MODEL_DIR='{source}'", *FAST]) == 0
  meta = checkpoints.read_meta(source / "checkpoints" / "2" / "params")
  assert meta["vocabulary"] == _identity("set_tiny")
  finetune = ["--gin_file=gin/quickstart/finetune_scan.gin", *FAST,
              f"--gin.INITIAL_CHECKPOINT_PATH='{source}'"]
  capsys.readouterr()
  assert train_cli.main(finetune + [f"--gin.MODEL_DIR='{tmp_path / 'a'}'"]) == 1
  assert "Vocabulary mismatch" in capsys.readouterr().err
  assert train_cli.main(finetune + [f"--gin.MODEL_DIR='{tmp_path / 'b'}'",
                                    "--gin.TRANSFER_MODE='all_but_embeddings'"]) == 1
  assert "ALLOW_VOCAB_MISMATCH=True" in capsys.readouterr().err
  assert train_cli.main(finetune + [f"--gin.MODEL_DIR='{tmp_path / 'c'}'",
                                    "--gin.TRANSFER_MODE='all_but_embeddings'",
                                    "--gin.ALLOW_VOCAB_MISMATCH=True"]) == 0
  assert "vocabulary MISMATCH ALLOWED" in capsys.readouterr().err
  run = json.loads((tmp_path / "c" / "run.json").read_text())
  assert run["vocabulary"] == _identity("scan_simple") and run["allow_vocab_mismatch"]
  assert run["initial_checkpoint"]["step"] == 2
  assert run["initial_checkpoint"]["rule"] == "first_ge:0.99"
  assert run["data_seed"] == 0 and len(run["gin_config_hash"]) == 64
  meta = checkpoints.read_meta(tmp_path / "c" / "checkpoints" / "2" / "params")
  assert meta["vocabulary"] == _identity("scan_simple")
  # Resuming the run with another vocabulary is refused too (its own embedding goes on).
  monkeypatch.setattr(vocabulary, "task_identity", lambda _: vocabulary.t5_identity())
  capsys.readouterr()
  assert train_cli.main(finetune + [f"--gin.MODEL_DIR='{tmp_path / 'c'}'",
                                    "--gin.TRANSFER_MODE='all_but_embeddings'",
                                    "--gin.ALLOW_VOCAB_MISMATCH=True",
                                    "--gin.REQUIRED_TEXT_VOCABULARY=None",
                                    "--gin.TRAIN_STEPS=4"]) == 1
  assert "Vocabulary mismatch" in capsys.readouterr().err


def test_all_but_embeddings_keeps_every_per_token_tensor_fresh():
  """T5 v1.1's untied output layer has a row per token id, like the input embedding."""
  loaded = {"token_embedder": {"embedding": 1}, "decoder": {"logits_dense": {"kernel": 1},
                                                            "layers_0": {"w": 1}}}
  fresh = {"token_embedder": {"embedding": 0}, "decoder": {"logits_dense": {"kernel": 0},
                                                           "layers_0": {"w": 0}}}
  params, taken, kept = checkpoints.transfer(loaded, fresh, "all_but_embeddings")
  assert kept == ["decoder/logits_dense/kernel", "token_embedder/embedding"]
  assert taken == ["decoder/layers_0/w"] and params["decoder"]["layers_0"]["w"] == 1
  assert params["decoder"]["logits_dense"]["kernel"] == 0
