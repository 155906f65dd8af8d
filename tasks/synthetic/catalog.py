"""The one list of synthetic tasks: the families of `FAMILIES` and every task they name.

`tasks/registry.py` registers every task and mixture here with SeqIO (which needs
TensorFlow), `tasks/fixed_splits/` gives each a `_fixed` twin, and tools such as
`python -m tasks.inspect` read this list directly, without TensorFlow. A new family
(`tasks.synthetic.family.TaskFamily`) is added to `FAMILIES` only; a new simple task
only registers its generator (`tasks/synthetic/registration.py`).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Any

from tasks.synthetic import families, formal_families, generators
from tasks.synthetic.family import BatchFn, GenerateFn, TaskFamily

# Every family, in registration order.
FAMILIES: tuple[TaskFamily, ...] = (
    families.SimpleFamily(), families.LimeFamily(), families.NestingFamily(),
    formal_families.FormalLanguageFamily(), formal_families.ProceduralFamily())

# The id layouts of the simple and LIME families, by task-name suffix.
SIMPLE_CONFIGS = families.SIMPLE_CONFIGS
LIME_CONFIGS = families.LIME_CONFIGS

__all__ = ["FAMILIES", "LIME_CONFIGS", "SIMPLE_CONFIGS", "SyntheticTask", "closest_names",
           "get", "mixtures", "synthetic_tasks"]


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
  """A registered synthetic task: `generate(task, cfg, split, seed, index)` and
  `generate_batch(task, cfg, split, seed, indices) -> ragged.Batch` (the same examples)."""

  name: str          # the SeqIO task name, e.g. "set_tiny"
  family: str        # the family's name: "simple", "lime" or "nesting"
  task: str          # the generator key (names the random stream), e.g. "set"
  cfg: Any           # the id layout: SyntheticConfig or nesting.NestingConfig
  layout: str        # the layout's suffix: "" (paper) or "_tiny"
  source: TaskFamily = dataclasses.field(repr=False, compare=False)

  @property
  def generate(self) -> GenerateFn:
    return self.source.generate

  @property
  def generate_batch(self) -> BatchFn:
    return self.source.generate_batch

  @property
  def batch_native(self) -> bool:
    """Whether `generate_batch` is the family's own batch generator (not a loop)."""
    return self.source.batch_native

  @property
  def config_name(self) -> str:
    return "tiny" if self.name.endswith("_tiny") else "paper"

  def max_lengths(self) -> dict[str, int]:
    """Longest inputs / targets, EOS included (what the registry stores)."""
    return self.source.max_lengths(self.task, self.cfg)

  def special_names(self) -> dict[int, str]:
    """Structural / special ids of this task's examples, by display name."""
    return self.source.special_names(self.cfg)

  def describe(self) -> str:
    """One line on the generator and its id layout."""
    return self.source.describe(self.task, self.cfg)


def synthetic_tasks() -> dict[str, SyntheticTask]:
  """Every registered synthetic task by SeqIO name, in registration order (including
  generators registered later from a user's module)."""
  return _synthetic_tasks(tuple(generators.GENERATORS))


@functools.lru_cache(maxsize=None)
def _synthetic_tasks(generator_names: tuple[str, ...]) -> dict[str, SyntheticTask]:
  """The catalogue for these `generators.GENERATORS` names (cached per name list)."""
  del generator_names  # the cache key: the simple family lists GENERATORS
  return {v.name: SyntheticTask(v.name, family.name, v.task, v.cfg, v.layout, family)
          for family in FAMILIES for v in family.variants()}


def mixtures() -> dict[str, list[str]]:
  """Every family's mixtures: name -> task names (equal rates), in registration order."""
  return {name: list(names) for family in FAMILIES
          for name, names in family.mixtures().items()}


def get(name: str) -> SyntheticTask:
  """The synthetic task `name`; ValueError listing the known names, closest first."""
  tasks = synthetic_tasks()
  if name not in tasks:
    raise ValueError(f"Unknown synthetic task {name!r}. Registered synthetic tasks "
                     f"(closest first): {', '.join(closest_names(name))}")
  return tasks[name]


def closest_names(name: str) -> list[str]:
  """All registered synthetic task names, the most similar to `name` first."""
  names = list(synthetic_tasks())
  return difflib.get_close_matches(name, names, n=len(names), cutoff=0.0)
