"""gin/studies/pretrain_or_not.gin ("To Pretrain or Not to Pretrain"): percentage sizes
in a study, the commands a GPU/TPU user runs for every cell, the records and report of
percentage cells, the Amazon polarity task, and one tiny LSTM cell end to end on mock
TFDS data."""
import decimal
import json
import os
import shlex

import pytest
import seqio
import tensorflow_datasets as tfds

import tasks  # noqa: F401  (registers the project's tasks)
from synthpre_jax.study import report
from synthpre_jax.study import runner as study_lib
from tasks import classification, subsets

STUDY = "gin/studies/pretrain_or_not.gin"
TASKS = {"yelp_polarity_reviews": 504000, "imdb_reviews": 22500, "ag_news_subset": 108000,
         "amazon_books_polarity": 2794968}
SIZES = ["1pct", "10pct", "30pct", "50pct", "70pct", "90pct"]
SEEDS = [0, 1, 2, 3, 4]
SOURCES = ["t5", "lstm", "lstm_t5_emb"]
T5 = "/ckpt/t5_1_0_small"


def _mini_study(tmp_path, sizes, train_size="'train_size': 100") -> str:
  path = tmp_path / "mini.gin"
  path.write_text(f"""
study.sources = {{'scratch': {{}}}}
study.tasks = {{'scan_simple': {{'gin_files': ['quickstart/finetune_scan.gin'],
                                'metric': 'exact_match', {train_size}}}}}
study.sizes = {sizes}
""")
  return str(path)


# --- percentage sizes in a study ---------------------------------------------------------

def test_percentage_sizes_name_subsets_cells_and_example_counts(tmp_path):
  spec = study_lib.load_study([_mini_study(tmp_path, "['1pct', '0.5pct', 10, None]")],
                              study_dir=str(tmp_path / "st"))
  cells = {c.cell_id: c for c in spec.cells()}
  assert sorted(cells) == sorted(f"scratch.scan_simple.{n}.seed0"
                                 for n in ("n1pct", "n0.5pct", "n10", "nall"))
  cell = cells["scratch.scan_simple.n0.5pct.seed0"]
  assert spec.cell_task_name(cell) == "scan_simple_train0.5pct_seed0"
  assert spec.cell_dir(cell).endswith("cells/scratch/scan_simple/n0.5pct/seed0")
  assert [study_lib.size_examples(n, 100) for n in ("1pct", "0.5pct", 10, None)] == [
      1, 0, 10, 100]
  assert study_lib.size_examples("1pct", None) is None
  record = study_lib.make_record(spec, cells["scratch.scan_simple.n1pct.seed0"],
                                 {"metrics": {"exact_match": 5.0}}, {})
  assert (record["size"], record["size_percent"], record["train_examples"]) == (1, "1", 1)
  record = study_lib.make_record(spec, cells["scratch.scan_simple.n10.seed0"],
                                 {"metrics": {"exact_match": 5.0}}, {})
  assert (record["size"], record["size_percent"], record["train_examples"]) == (10, None, 10)


@pytest.mark.parametrize("sizes, message", [
    ("['10.0pct']", "'10pct'"), ("['010pct']", "'10pct'"), ("['0pct']", "(0, 100]"),
    ("['101pct']", "(0, 100]"), ("['10%']", "percentages such as '10pct'"),
    ("[True]", "percentages such as '10pct'"),
])
def test_bad_percentage_sizes_are_refused(tmp_path, capsys, sizes, message):
  gin_file = _mini_study(tmp_path, sizes)
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x", "--dry_run"]) == 1
  assert message in capsys.readouterr().err


def test_percentage_sizes_need_train_size(tmp_path, capsys):
  gin_file = _mini_study(tmp_path, "['10pct']", train_size="'bindings': []")
  assert study_lib.main([f"--gin_file={gin_file}", "--study_dir=/tmp/x", "--dry_run"]) == 1
  assert "every task needs its 'train_size'" in capsys.readouterr().err


def test_example_count_is_the_subsets_count():
  """The record's count (from train_size) is the registered subset's (from the data)."""
  name = subsets.subset_name("scan_simple", percent="1.5", seed=3)
  assert subsets.ensure_subset_task(name)
  task = seqio.get_mixture_or_task(name)
  assert task.source.num_input_examples("train") == study_lib.size_examples("1.5pct", 15055)


# --- the shipped study --------------------------------------------------------------------

def test_study_prints_every_cell_with_its_bindings(tmp_path, capsys):
  st = str(tmp_path / "st")
  assert study_lib.main([f"--gin_file={STUDY}", f"--study_dir={st}", "--print_commands"]) == 0
  out = capsys.readouterr().out
  blocks = {}
  lines = out.splitlines()
  for i, line in enumerate(lines):
    if line.startswith("# cell "):
      blocks[line[len("# cell "):]] = (shlex.split(lines[i + 1]), shlex.split(lines[i + 2]))
  assert not [l for l in lines if l.startswith("# pretrain")]  # nothing is pre-trained
  assert len(blocks) == len(SOURCES) * len(TASKS) * len(SIZES) * len(SEEDS) == 360
  lr = "--gin.LEARNING_RATE=1e-2"
  for source in SOURCES:
    for task in TASKS:
      for size in SIZES:
        for seed in SEEDS:
          cell_dir = f"{st}/cells/{source}/{task}/n{size}/seed{seed}"
          train, evaluate = blocks[f"{source}.{task}.n{size}.seed{seed}"]
          assert train[:3] == ["python", "-m", "synthpre_jax.train"]
          common = [f"--gin.MIXTURE_OR_TASK_NAME='{task}_train{size}_seed{seed}'",
                    f"--gin.SEED={seed}", f"--gin.DATA_SEED={seed}"]
          if source == "t5":
            want = [f"--gin_file=finetune/{task}.gin", *common,
                    f"--gin.INITIAL_CHECKPOINT_PATH='{T5}'", "--gin.TRANSFER_MODE='all'",
                    "--gin.INITIAL_CHECKPOINT_STEP='first_ge:0.99'"]
          elif source == "lstm":
            want = [f"--gin_file=finetune/{task}.gin", "--gin_file=models/lstm_classifier.gin",
                    *common, "--gin.INITIAL_CHECKPOINT_PATH=None",
                    "--gin.TRANSFER_MODE='all_but_embeddings'", lr]
          else:
            want = [f"--gin_file=finetune/{task}.gin", "--gin_file=models/lstm_classifier.gin",
                    "--gin_file=init/lstm_embedding_from_t5.gin", *common,
                    "--gin.INITIAL_CHECKPOINT_PATH=None",
                    "--gin.TRANSFER_MODE='all_but_embeddings'",
                    f"--gin.EMBEDDING_CHECKPOINT='{T5}'",
                    "--gin.EMBEDDING_CHECKPOINT_STEP='first_ge:0.99'", lr]
          assert train[3:] == want + [f"--gin.MODEL_DIR='{cell_dir}'"]
          assert evaluate == ["python", "-m", "synthpre_jax.evaluate",
                              f"--gin_file={cell_dir}/config.gin",
                              "--gin.evaluate.split='test'"]
  assert f"--study_dir={st} --collect" in out


def test_study_settings_and_recipes():
  spec = study_lib.load_study([STUDY])
  assert (spec.natural, spec.scratch) == ("t5", "lstm")
  assert {t: spec.tasks[t].train_size for t in spec.tasks} == TASKS
  assert all(t.metric == "accuracy" for t in spec.tasks.values())
  # The records' example counts: floor(P% of the 'train' split), 1% of IMDB = 225.
  assert study_lib.size_examples("1pct", TASKS["imdb_reviews"]) == 225
  assert study_lib.size_examples("90pct", TASKS["yelp_polarity_reviews"]) == 453600
  for task in TASKS:
    assert task in classification.CLASSIFICATION_TASKS
    text = open(f"gin/finetune/{task}.gin").read()
    assert f"MIXTURE_OR_TASK_NAME = '{task}'" in text and "LEARNING_RATE = 1e-3" in text
    assert "BATCH_SIZE = 128" in text and "evaluate.num_beams = 1" in text


def test_report_of_percentage_cells_gives_the_gap_vs_size(tmp_path):
  """Records of the three arms at two percentages x three seeds: the report's per-size
  tables show the example counts, and the curves (score and gap to lstm) are drawn."""
  spec = study_lib.load_study([STUDY], [
      "study.sizes = ['1pct', '10pct']", "study.seeds = [0, 1, 2]"],
      study_dir=str(tmp_path / "st"))
  os.makedirs(os.path.join(spec.study_dir, "records"))
  study_lib.write_study_json(spec)
  base = {"t5": 90.0, "lstm_t5_emb": 85.0, "lstm": 80.0}
  for cell in spec.cells():
    score = base[cell.source] + (5.0 if cell.size == "10pct" else 0.0) + cell.seed * 0.1
    record = study_lib.make_record(spec, cell, {"metrics": {"accuracy": score}}, {})
    with open(spec.record_path(cell), "w") as f:
      json.dump(record, f)
  path, _ = report.write_report(spec.study_dir, param_stats_plot=False)
  text = open(path).read()
  assert "Missing" not in text
  rows = [line for line in text.splitlines() if line.startswith("| ")]
  for label in ("1% (225 ex.)", "10% (2,250 ex.)"):  # imdb's 1% and 10%, one row per arm
    assert {r.split(" | ")[1] for r in rows if r.split(" | ")[0] in (
        f"| {label}", f"| {label} {report.FLAG}")} == set(SOURCES)
  for task in TASKS:
    assert os.path.exists(os.path.join(spec.study_dir, "report_files", f"curves_{task}.png"))
  assert "are not plotted" not in text


# --- the Amazon polarity task -------------------------------------------------------------

def test_amazon_books_polarity_from_mocked_tfds():
  name = "amazon_books_polarity"
  info = classification.CLASSIFICATION_TASKS[name]
  task = seqio.get_mixture_or_task(name)
  assert info.split_map == {"train": "train[:90%]", "validation": "train[90%:95%]",
                            "test": "train[95%:]"}
  assert set(task.source.splits) == set(info.split_map)
  with tfds.testing.mock_data(num_examples=30, max_value=6):
    raw = list(task.source.get_dataset("test", shuffle=False).as_numpy_iterator())
    records = classification.classification_examples(name, "test")
  kept = [r["data"] for r in raw if r["data"]["star_rating"] in (1, 2, 4, 5)]
  assert 0 < len(kept) < len(raw) and len(records) == len(kept)
  for rec, r in zip(records, kept):
    assert rec.label == (0 if r["star_rating"] <= 2 else 1)
    text = f"{r['review_headline'].decode()} {r['review_body'].decode()}"
    assert rec.text == " ".join(text.split())
  assert info.label_words == ("negative", "positive")


# --- one cell end to end --------------------------------------------------------------------

TINY = ["TRAIN_STEPS = 4", "BATCH_SIZE = 8", "EVAL_PERIOD = 4", "CHECKPOINT_PERIOD = 4",
        "EVAL_STEPS = 1", "LOG_PERIOD = 4", "REQUIRED_TEXT_VOCABULARY = None",
        "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 8}",
        "LSTMConfig.vocab_size = 8192", "LSTMConfig.emb_dim = 16",
        "LSTMConfig.hidden_dim = 16", "LSTMConfig.num_layers = 1"]


@pytest.mark.slow  # ~25-45 s on the 2-core CPU machine
def test_one_lstm_cell_runs_end_to_end_on_mock_data(tmp_path, monkeypatch, capsys):
  from tasks import tfds_source
  # Mocked TFDS has no file list; one "shard" per split is what one process reads.
  monkeypatch.setattr(tfds_source.ReadOnlyTfdsSource, "list_shards",
                      lambda self, split: [split])
  st = tmp_path / "st"
  tasks_binding = ("{'ag_news_subset': {'gin_files': ['finetune/ag_news_subset.gin'], "
                   "'metric': 'accuracy', 'train_size': 16}}")
  with tfds.testing.mock_data(num_examples=16):
    rc = study_lib.main([f"--gin_file={STUDY}", f"--study_dir={st}",
                         "--only=lstm.ag_news_subset.n50pct.seed0",
                         f"--gin.study.finetune_bindings={TINY!r}",
                         "--gin.study.evaluate_bindings=['evaluate.batch_size = 8']",
                         f"--gin.study.tasks={tasks_binding}"])
  out = capsys.readouterr().out
  assert rc == 0, out
  record = json.loads((st / "records" / "lstm.ag_news_subset.n50pct.seed0.json").read_text())
  assert record["mixture_or_task_name"] == "ag_news_subset_train50pct_seed0"
  assert (record["size"], record["size_percent"], record["train_examples"]) == (8, "50", 8)
  assert record["metric"] == "accuracy" and 0.0 <= record["score"] <= 100.0
  config = (st / "cells/lstm/ag_news_subset/n50pct/seed0/config.gin").read_text()
  assert "LSTMConfig.num_layers = 1" in config and "evaluate.num_beams = 1" in config
  assert (st / "report.md").exists()
  assert decimal.Decimal(record["size_percent"]) == 50
