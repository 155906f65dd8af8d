"""SCAN's source tokenizes once per process; its batches are unchanged by it."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "benchmarks"))
import input_pipeline  # noqa: E402  pylint: disable=wrong-import-position

# SHA-256 of the first 80 batches (batch 32, lengths 20/50, seed 0, 2.6 epochs of the
# 1,000-example subset) as the code that re-tokenized every epoch gave them.
DIGESTS = {
    "scan_simple_train1000_seed0":
        "062b817217c0068663a68a80ec4ce2df22e8202d0b75e462a53f0f1455fed2f1",
    "scan_simple": "ecd2a2fbbc43a2f2fa84434ded9c4169fc2a797ea97fce57585ec7f2e0cbc88b",
}

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SYNTHPRE_VOCAB_PATH")),
    reason="digests are of the shipped 8k vocabulary")


@pytest.mark.parametrize("task", sorted(DIGESTS))
def test_scan_batches_bit_identical_to_per_epoch_tokenization(task):
  stream = input_pipeline.batches(task, (20, 50), 32, seed=0)
  assert input_pipeline.digest(stream, 80) == DIGESTS[task]


def test_scan_tokenizes_each_split_once():
  from tasks.downstream import in_memory, scan
  from synthpre_jax.data import pipeline
  task = pipeline.resolve_task("scan_length")
  before = dict(in_memory._TOKENIZED)  # pylint: disable=protected-access
  for _ in range(2):
    next(task.get_dataset(sequence_length=None, split="validation", shuffle=False)
         .as_numpy_iterator())
  added = set(in_memory._TOKENIZED) - set(before)  # pylint: disable=protected-access
  assert {(k[0], k[1]) for k in added} == {("scan_length", "validation")}
  ex = next(task.get_dataset(sequence_length=None, split="validation", shuffle=False)
            .as_numpy_iterator())
  assert ex["targets_pretokenized"].decode() == scan.to_target_words(
      scan.split_examples("length", "validation")[0][1])
  assert ex["targets"][-1] == 1  # EOS appended after the ids


def test_a_subsets_length_report_reads_its_rows_of_the_base_splits_counts():
  """A seeded subset's overlong counts equal a direct count of its own examples, and
  come from the base split's per-process counts (a study measures each split once)."""
  from tasks import subsets
  from tasks.downstream import length_report
  import seqio
  lengths = {"inputs": 9, "targets": 20}
  name = "scan_simple_train300_seed4"
  subsets.ensure_subset_task(name)
  report = length_report.length_report(name, "train", lengths)
  assert ("scan_simple", "train", ("inputs", "targets")) in length_report._EXAMPLE_LENGTHS  # pylint: disable=protected-access
  ds = seqio.get_mixture_or_task(name).get_dataset(
      sequence_length=None, split="train", shuffle=False, num_epochs=1,
      trim_output_features=False, use_cached=False)
  rows = [(len(ex["inputs"]), len(ex["targets"])) for ex in ds.as_numpy_iterator()]
  assert report.examples == len(rows) == 300
  assert report.too_long == {"inputs": sum(a > 9 for a, _ in rows),
                             "targets": sum(b > 20 for _, b in rows)}
  assert report.too_long["inputs"] > 0 and report.too_long["targets"] > 0
  assert report.longest == {"inputs": max(a for a, _ in rows),
                            "targets": max(b for _, b in rows)}
  assert report.lossy_targets == 0
