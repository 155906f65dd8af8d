"""The project's synthetic task families: the simple tasks, LIME and the nesting language.

Each is a `tasks.synthetic.family.TaskFamily`; `tasks/synthetic/catalog.py` lists them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping

from tasks.synthetic import generators, lime, nesting
from tasks.synthetic.config import PAPER, TINY
from tasks.synthetic.family import BatchFn, GenerateFn, Variant, per_example_batch_fn

# The id layouts each family is registered with, by task-name suffix.
SIMPLE_CONFIGS = {"": PAPER, "_tiny": TINY}
LIME_CONFIGS = {"": PAPER, "_tiny": lime.LIME_TINY}

# The paper's 18 simple tasks (spec order): the `simple_tasks[_tiny]` mixtures.
SIMPLE_TASKS = (
    "identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
    "last_token", "length", "longest_word", "count", "search", "delete", "sort",
    "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1")


@dataclasses.dataclass(frozen=True)
class SimpleFamily:
  """Every registered compiled generator (`generators.GENERATORS`, users' included) x
  `SIMPLE_CONFIGS`; the mixtures `simple_tasks[_tiny]` of `SIMPLE_TASKS`."""

  name: str = "simple"
  batch_native: bool = True
  generate: GenerateFn = generators.generate
  generate_batch: BatchFn = generators.generate_batch

  def variants(self) -> Iterator[Variant]:
    for task in generators.GENERATORS:
      for suffix, cfg in SIMPLE_CONFIGS.items():
        yield Variant(task + suffix, task, cfg, suffix)

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return generators.max_lengths(task, cfg)

  def special_names(self, cfg: Any) -> dict[int, str]:
    return {cfg.task_divider: "<task_div>", cfg.word_divider: "<word_div>",
            cfg.arg_divider: "<arg_div>", cfg.empty_target: "<empty>"}

  def describe(self, task: str, cfg: Any) -> str:
    return (f"generator generators.generate({task!r}), vocab {cfg.vocab_size}, pool "
            f"{cfg.pool_low}..{cfg.pool_high}, sampled lengths "
            f"{cfg.min_len}..{cfg.max_len}")

  def mixtures(self) -> Mapping[str, list[str]]:
    return {"simple_tasks" + suffix: [t + suffix for t in SIMPLE_TASKS]
            for suffix in SIMPLE_CONFIGS}


@dataclasses.dataclass(frozen=True)
class LimeFamily:
  """LIME's three modes x `LIME_CONFIGS`; the mixtures `lime[_tiny]` of the modes."""

  name: str = "lime"
  batch_native: bool = False
  generate: GenerateFn = lime.generate_lime
  generate_batch: BatchFn = per_example_batch_fn(lime.generate_lime)

  def variants(self) -> Iterator[Variant]:
    for suffix, cfg in LIME_CONFIGS.items():
      for mode in lime.LIME_MODES:
        yield Variant(lime.lime_task_name(mode) + suffix, mode, cfg, suffix)

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return lime.lime_max_lengths(cfg, task)

  def special_names(self, cfg: Any) -> dict[int, str]:
    s = lime.LimeSymbols.for_config(cfg)
    return {s.colon: ":", s.sep: "<sep>", s.upper: "<UPPER>", s.lbracket: "[",
            s.lower: "<LOWER>", s.math: "<MATH>", s.rbracket: "]"}

  def describe(self, task: str, cfg: Any) -> str:
    return (f"generator lime.generate_lime({task!r}), vocab {cfg.vocab_size}, "
            f"pool {cfg.pool_low}..{cfg.pool_high}, inputs and targets <= {cfg.max_len}")

  def mixtures(self) -> Mapping[str, list[str]]:
    return {"lime" + suffix: [lime.lime_task_name(m) + suffix for m in lime.LIME_MODES]
            for suffix in LIME_CONFIGS}


@dataclasses.dataclass(frozen=True)
class NestingFamily:
  """The nesting language x `nesting.NESTING_CONFIGS`; no mixture."""

  name: str = "nesting"
  batch_native: bool = False
  generate: GenerateFn = nesting.generate_nesting
  generate_batch: BatchFn = per_example_batch_fn(nesting.generate_nesting)

  def variants(self) -> Iterator[Variant]:
    for suffix, cfg in nesting.NESTING_CONFIGS.items():
      yield Variant(nesting.NESTING_TASK + suffix, nesting.NESTING_TASK, cfg, suffix)

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return nesting.nesting_max_lengths(cfg)

  def special_names(self, cfg: Any) -> dict[int, str]:
    return {sid: f"<extra_id_{j}>" for j, sid in enumerate(cfg.sentinel_ids)}

  def describe(self, task: str, cfg: Any) -> str:
    return (f"generator nesting.generate_nesting({task!r}), vocab {cfg.vocab_size}, "
            f"{cfg.num_pairs} pairs on ids {cfg.first_token}..{cfg.last_token}, lengths "
            f"{cfg.min_len}..{cfg.max_len}, open_prob {cfg.open_prob}, zipf_exponent "
            f"{cfg.zipf_exponent}, sentinels from {cfg.first_sentinel} down")

  def mixtures(self) -> Mapping[str, list[str]]:
    return {}
