"""Procedural data in natural LM pre-training (tasks/procedural_in_text.py): the moved ids
give back the formal examples, the mixture draws its share, and training refuses a
model whose embedding cannot hold the moved ids."""
import os

import numpy as np
import pytest

import tasks  # noqa: F401  (registers the tasks)
from synthpre_jax.cli import train as train_cli
from synthpre_jax.data import pipeline, task_metadata
from tasks import procedural_in_text as pit
from tasks import text_vocab
from tasks.synthetic import catalog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT_IDS = text_vocab.get_vocabulary().vocab_size  # 8,100 with the shipped model


def test_in_text_examples_are_the_formal_examples_with_moved_ids():
  name = pit.register_in_text("shuffle_dyck_tiny")
  assert name == "shuffle_dyck_tiny_in_text"
  cfg = catalog.get("shuffle_dyck_tiny").cfg
  moved = pit.id_map(cfg, TEXT_IDS)
  back = {new: old for old, new in moved.items()}
  assert len(back) == len(moved) == 2 + cfg.num_symbol_ids  # one-to-one, no specials
  assert sorted(moved.values())[2:] == list(range(TEXT_IDS, TEXT_IDS + len(moved) - 2))
  task = pipeline.resolve_task(name)
  assert task.output_features["targets"].vocabulary == text_vocab.get_vocabulary()
  ds = task.get_dataset({"inputs": 1, "targets": 128}, split="train", shuffle=False)
  entry = catalog.get("shuffle_dyck_tiny")
  for i, ex in enumerate(ds.take(50).as_numpy_iterator()):
    inputs, targets = entry.generate(entry.task, entry.cfg, "train", 0, i)
    assert ex["inputs"].tolist() == [1]
    assert [back[t] for t in ex["targets"].tolist()] == (
        inputs.tolist() + [1] + targets.tolist() + [1])
  lengths = entry.max_lengths()
  assert task_metadata.max_lengths(name)["targets"] == lengths["inputs"] + lengths["targets"]


def test_mixture_draws_its_share_deterministically():
  name = pit.register_mixture("corpus_lm", "shuffle_dyck_tiny", 1)
  assert name == "corpus_lm_with_shuffle_dyck_tiny_1pct"
  mix = pipeline.resolve_task(name)
  assert {t.name: mix.get_rate(t) for t in mix.tasks} == {
      "corpus_lm": 0.99, "shuffle_dyck_tiny_in_text": 0.01}

  def draws(n):
    ds = mix.get_dataset({"inputs": 1, "targets": 128}, split="train", shuffle=True,
                         seed=3)
    return [ex["targets"] for ex in ds.take(n).as_numpy_iterator()]

  got = draws(3000)
  procedural = sum(int(t.max() >= TEXT_IDS) for t in got)
  # Binomial(3000, 0.01): mean 30, sd 5.4; 12..48 is beyond +-3.3 sd.
  assert 12 <= procedural <= 48, procedural
  again = draws(300)
  assert all(np.array_equal(a, b) for a, b in zip(got[:300], again))


def test_names_errors_and_the_embedding_check():
  assert pipeline.resolve_task("corpus_lm_with_dyck_tiny_0.1pct").name == \
      "corpus_lm_with_dyck_tiny_0.1pct"
  assert task_metadata.id_limit("corpus_lm_with_dyck_tiny_0.1pct") == TEXT_IDS + 8
  pipeline.check_vocabulary("corpus_lm_with_dyck_tiny_0.1pct", 8192)
  for bad in ("corpus_lm_with_set_tiny_1pct", "corpus_lm_with_dyck_tiny_0.10pct",
              "wordnet_definitions_with_dyck_tiny_1pct"):
    with pytest.raises(ValueError, match="<text task>_with_<formal task>_<p>pct"):
      pipeline.resolve_task(bad)
  with pytest.raises(ValueError, match="percentage"):
    pit.register_mixture("corpus_lm", "dyck_tiny", 100)
  with pytest.raises(ValueError, match="not a formal-language"):
    pit.register_in_text("set_tiny")
  # ECA's 258 symbol ids do not fit the 92 spare rows of 8,192.
  with pytest.raises(ValueError, match="DecoderOnlyConfig.vocab_size = 8448"):
    pipeline.check_vocabulary("corpus_lm_with_eca_tiny_0.1pct", 8192)
  with pytest.raises(ValueError, match="plain decimal"):
    pit.register_mixture("corpus_lm", "dyck_tiny", 0.00001)
  # A user's mixture holding an _in_text task is checked through its sub-task.
  import seqio
  seqio.MixtureRegistry.add("user_mix_with_eca_in_text",
                            [("corpus_lm", 1.0), (pit.register_in_text("eca_tiny"), 1.0)])
  with pytest.raises(ValueError, match="emits ids up to 8357"):
    pipeline.check_vocabulary("user_mix_with_eca_in_text", 8192)


@pytest.mark.parametrize("task", ["dyck_tiny", "ww_tiny", "stack_tiny", "fst_tiny",
                                  "eca_complex_tiny"])
def test_every_kind_moves_only_the_ids_it_emits(task):
  """The map covers every id each kind emits (an unmapped id fails the dataset)."""
  name = pit.register_in_text(task)
  entry = catalog.get(task)
  back = {new: old for old, new in pit.id_map(entry.cfg, TEXT_IDS).items()}
  ds = pipeline.resolve_task(name).get_dataset({"inputs": 1, "targets": 512},
                                               split="validation", shuffle=False)
  for i, ex in enumerate(ds.take(40).as_numpy_iterator()):
    inputs, targets = entry.generate(entry.task, entry.cfg, "validation", 0, i)
    assert [back[t] for t in ex["targets"].tolist()] == (
        inputs.tolist() + [1] + targets.tolist() + [1])


def test_natural_lm_pretraining_trains_on_the_mixture(tmp_path, capsys):
  base = ["--gin_file=gin/procedural/pretrain_natural_lm.gin",
          "--gin.MIXTURE_OR_TASK_NAME='corpus_lm_with_shuffle_dyck_tiny_0.1pct'",
          "--gin.TRAIN_STEPS=4", "--gin.BATCH_SIZE=8", "--gin.EVAL_PERIOD=4",
          "--gin.EVAL_STEPS=1", "--gin.LOG_PERIOD=2", "--gin.CHECKPOINT_PERIOD=4"]
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    rc = train_cli.main(base + [f"--gin.MODEL_DIR='{tmp_path / 'run'}'"])
    err = capsys.readouterr().err
    assert rc == 0, err[-3000:]
    assert "step 4/4" in err
    rc = train_cli.main(base + [f"--gin.MODEL_DIR='{tmp_path / 'bad'}'",
                                "--gin.MIXTURE_OR_TASK_NAME='corpus_lm_with_eca_tiny_1pct'"])
    err = capsys.readouterr().err
  finally:
    os.chdir(cwd)
  assert rc == 1 and "emits ids up to 8357" in err
  assert not os.path.exists(tmp_path / "bad" / "checkpoints")
