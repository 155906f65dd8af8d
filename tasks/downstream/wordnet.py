"""The WordNet tasks (tasks/wordnet): a real-language downstream task with no download.

* `wordnet_reverse_dictionary`: inputs a definition, targets the word; exact match.
* `wordnet_definitions`: inputs the word, targets its definition; ROUGE.

Both read the shipped file through `tasks.wordnet.glosses` (word-disjoint splits) and
tokenize each split once per process (`tasks.downstream.in_memory`). Sizes: train
94,356; validation 11,408; test 11,613. Besides the decoded metric, evaluation reports
the teacher-forced log-likelihood of the reference (`synthpre_jax.cli.evaluate`), which at
CPU scale separates sources long before exact match moves (docs/tasks.md). Needs
seqio (imported by `tasks/downstream/__init__.py` only where it is installed).
"""
from __future__ import annotations

import functools

from tasks import wordnet
from tasks.downstream import in_memory, text_features

TASKS = {"wordnet_reverse_dictionary": ("definition", "word"),
         "wordnet_definitions": ("word", "definition")}
METRICS = {"wordnet_reverse_dictionary": "exact_match", "wordnet_definitions": "rouge"}


def split_text(name: str, split: str) -> tuple[list[str], list[str]]:
  """(inputs, targets) texts of task `name`'s `split`, in file order."""
  source, target = TASKS[name]
  rows = wordnet.glosses(split)
  return [getattr(r, source) for r in rows], [getattr(r, target) for r in rows]


def register_seqio_tasks(vocabulary=None) -> None:
  """Registers both WordNet tasks (idempotent; imports seqio)."""
  for name in TASKS:
    in_memory.register_task(
        name, functools.partial(split_text, name),
        num_examples=dict(wordnet.SIZES),
        metric_fns=[text_features.METRIC_FNS[METRICS[name]]], vocabulary=vocabulary)
