"""The one list of synthetic tasks: name -> (TF-free generator, id layout).

`tasks/registry.py` registers every entry here as a SeqIO task (which needs
TensorFlow); tools such as `python -m tasks.inspect` read this list directly so they
can draw examples without TensorFlow. A new task family or layout is added here only.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Any, Callable

import numpy as np

from tasks.synthetic import generators, lime, nesting
from tasks.synthetic.config import PAPER, TINY
from tasks.synthetic.ragged import Batch

# The id layouts each family is registered with (tasks.registry registers this catalog).
SIMPLE_CONFIGS = {"": PAPER, "_tiny": TINY}
LIME_CONFIGS = {"": PAPER, "_tiny": lime.LIME_TINY}


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
  """A registered synthetic task: `generate(task, cfg, split, seed, index)`."""

  name: str        # the SeqIO task name, e.g. "set_tiny"
  family: str      # "simple", "lime" or "nesting"
  task: str        # the generator key (names the random stream), e.g. "set"
  cfg: Any         # SyntheticConfig or nesting.NestingConfig
  generate: Callable[..., "tuple[np.ndarray, np.ndarray]"]
  _max_lengths: Callable[[], "dict[str, int]"] = dataclasses.field(repr=False)
  # generate_batch(task, cfg, split, seed, indices) -> ragged.Batch: the same examples
  # (compiled kernels for the simple tasks; a loop over `generate` for LIME and nesting).
  generate_batch: Callable[..., Batch] = dataclasses.field(default=None, repr=False)

  def __post_init__(self):
    if self.generate_batch is None:
      object.__setattr__(self, "generate_batch", per_example_batch_fn(self.generate))

  @property
  def config_name(self) -> str:
    return "tiny" if self.name.endswith("_tiny") else "paper"

  def max_lengths(self) -> dict[str, int]:
    """Longest inputs / targets, EOS included (what the registry stores)."""
    return self._max_lengths()

  def special_names(self) -> dict[int, str]:
    """Structural / special ids of this task's examples, by display name."""
    if self.family == "simple":
      c = self.cfg
      return {c.task_divider: "<task_div>", c.word_divider: "<word_div>",
              c.arg_divider: "<arg_div>", c.empty_target: "<empty>"}
    if self.family == "lime":
      s = lime.LimeSymbols.for_config(self.cfg)
      return {s.colon: ":", s.sep: "<sep>", s.upper: "<UPPER>", s.lbracket: "[",
              s.lower: "<LOWER>", s.math: "<MATH>", s.rbracket: "]"}
    return {sid: f"<extra_id_{j}>" for j, sid in enumerate(self.cfg.sentinel_ids)}

  def describe(self) -> str:
    """One line on the generator and its id layout."""
    c = self.cfg
    if self.family == "nesting":
      return (f"generator nesting.generate_nesting({self.task!r}), vocab {c.vocab_size}, "
              f"{c.num_pairs} pairs on ids {c.first_token}..{c.last_token}, lengths "
              f"{c.min_len}..{c.max_len}, open_prob {c.open_prob}, zipf_exponent "
              f"{c.zipf_exponent}, sentinels from {c.first_sentinel} down")
    if self.family == "lime":
      return (f"generator lime.generate_lime({self.task!r}), vocab {c.vocab_size}, "
              f"pool {c.pool_low}..{c.pool_high}, inputs and targets <= {c.max_len}")
    return (f"generator generators.generate({self.task!r}), vocab {c.vocab_size}, pool "
            f"{c.pool_low}..{c.pool_high}, sampled lengths {c.min_len}..{c.max_len}")


def per_example_batch_fn(generate: Callable[..., tuple]) -> Callable[..., Batch]:
  """A batch function (task, cfg, split, seed, indices) -> Batch calling `generate`
  once per index: the batch API for the per-example families (LIME, nesting)."""
  def generate_batch(task, cfg, split, seed, indices) -> Batch:
    return Batch.from_examples([generate(task, cfg, split, seed, int(i))
                                for i in np.asarray(indices).tolist()])
  generate_batch.__qualname__ = f"per_example_batch_fn({getattr(generate, '__qualname__', generate)})"
  return generate_batch


def synthetic_tasks() -> dict[str, SyntheticTask]:
  """Every registered synthetic task by SeqIO name, in registration order (including
  generators registered later from a user's module)."""
  return _synthetic_tasks(tuple(generators.GENERATORS))


@functools.lru_cache(maxsize=None)
def _synthetic_tasks(generator_names: tuple[str, ...]) -> dict[str, SyntheticTask]:
  """The catalog for these `generators.GENERATORS` names (cached per name list)."""
  out: dict[str, SyntheticTask] = {}

  def add(name, family, task, cfg, generate, max_lengths, generate_batch=None):
    out[name] = SyntheticTask(name, family, task, cfg, generate, max_lengths,
                              generate_batch)

  for task in generator_names:
    for suffix, cfg in SIMPLE_CONFIGS.items():
      add(task + suffix, "simple", task, cfg, generators.generate,
          functools.partial(generators.max_lengths, task, cfg), generators.generate_batch)
  for suffix, cfg in LIME_CONFIGS.items():
    for mode in lime.LIME_MODES:
      add(lime.lime_task_name(mode) + suffix, "lime", mode, cfg, lime.generate_lime,
          functools.partial(lime.lime_max_lengths, cfg, mode))
  for suffix, cfg in nesting.NESTING_CONFIGS.items():
    add(nesting.NESTING_TASK + suffix, "nesting", nesting.NESTING_TASK, cfg,
        nesting.generate_nesting, functools.partial(nesting.nesting_max_lengths, cfg))
  return out


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
