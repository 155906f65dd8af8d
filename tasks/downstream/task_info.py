"""The paper's six downstream tasks: what each is and which metric it reports.

Their fine-tuning recipes (learning rate, batch size, steps, feature lengths, packing,
model) live in the Gin files only: `TaskInfo.gin_file`, under gin/. squad's loader is
`tasks/downstream/squad.py`, the other five's `tasks/downstream/text_files.py`.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """One paper downstream task: name, description, training-set size, the reported
  metric (in words and as keys of the metric dict), and its recipe's Gin file."""
  name: str
  description: str
  train_size: str
  metric: str                 # the paper's reported metric, in words
  metric_keys: tuple[str, ...]  # keys of the metric dict that carry it
  gin_file: str = ""          # default: finetune/<name>.gin

  def __post_init__(self):
    if not self.gin_file:
      object.__setattr__(self, "gin_file", f"finetune/{self.name}.gin")


TASK_INFO: dict[str, TaskInfo] = {info.name: info for info in (
    TaskInfo("code_translation", "CodeXGLUE Java -> C#", "10K", "exact match",
             ("exact_match",)),
    TaskInfo("mtop", "MTOP English semantic parsing", "~16-17K", "exact match",
             ("exact_match",)),
    TaskInfo("webqsp", "WebQSP semantic parsing", "2.7K", "exact match",
             ("exact_match",)),
    TaskInfo("retrosynthesis", "USPTO-50K, product -> reactants SMILES", "40K",
             "exact match", ("exact_match",)),
    TaskInfo("squad", "SQuAD 1.1 (validation set as test)", "87K", "SQuAD EM / F1",
             ("em", "f1")),
    # The natural baseline of cnndm_10k is T5 v1.1 small (finetune/cnndm_10k_t5_1_1.gin).
    TaskInfo("cnndm_10k", "10K lower-cased CNN/DailyMail examples", "10K", "ROUGE-1",
             ("rouge1",)),
)}
