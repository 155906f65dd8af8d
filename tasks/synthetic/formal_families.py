"""The formal-language and procedural task families (`tasks.synthetic.family.TaskFamily`).

`FormalLanguageFamily`: dyck, shuffle_dyck, ww; `ProceduralFamily`: stack, eca,
eca_rule110, fst; each x the layouts of `formal_config.FORMAL_TASKS` ("" paper,
"_tiny"). `tasks/synthetic/catalog.py` lists them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping

from tasks.synthetic import formal_languages, procedural
from tasks.synthetic.formal_config import FORMAL_TASKS, LANGUAGE_KINDS, FormalConfig
from tasks.synthetic.family import BatchFn, GenerateFn, Variant, per_example_batch_fn

# The procedural tasks of the `procedural[_tiny]` mixtures (equal parts).
PROCEDURAL_MIXTURE = ("stack", "eca", "fst")


def _variants(language: bool) -> Iterator[Variant]:
  for task, layouts in FORMAL_TASKS.items():
    for suffix, cfg in layouts.items():
      if (cfg.kind in LANGUAGE_KINDS) == language:
        yield Variant(task + suffix, task, cfg, suffix)


def _special_names(cfg: FormalConfig) -> dict[int, str]:
  if cfg.kind in ("dyck", "shuffle_dyck"):
    return {cfg.first_token + 2 * i + c: ("(" if c == 0 else ")") + str(i)
            for i in range(cfg.k) for c in (0, 1)}
  if cfg.kind == "stack":
    return {cfg.push: "<push>", cfg.pop: "<pop>", cfg.empty: "<empty>"}
  if cfg.kind in ("ww", "fst"):
    return {cfg.sep: "<sep>"}
  return {}


@dataclasses.dataclass(frozen=True)
class FormalLanguageFamily:
  """k-Dyck, k-Shuffle-Dyck and ww (tasks/synthetic/formal_languages.py); no mixture."""

  name: str = "formal_languages"
  batch_native: bool = False
  generate: GenerateFn = formal_languages.generate_language
  generate_batch: BatchFn = per_example_batch_fn(formal_languages.generate_language)

  def variants(self) -> Iterator[Variant]:
    return _variants(language=True)

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return formal_languages.language_max_lengths(task, cfg)

  def special_names(self, cfg: Any) -> dict[int, str]:
    return _special_names(cfg)

  def describe(self, task: str, cfg: Any) -> str:
    return formal_languages.describe_language(task, cfg)

  def mixtures(self) -> Mapping[str, list[str]]:
    return {}


@dataclasses.dataclass(frozen=True)
class ProceduralFamily:
  """Stack manipulation, elementary cellular automata and FST simulation
  (tasks/synthetic/procedural.py); the mixtures `procedural[_tiny]` of
  `PROCEDURAL_MIXTURE`."""

  name: str = "procedural"
  batch_native: bool = False
  generate: GenerateFn = procedural.generate_procedural
  generate_batch: BatchFn = per_example_batch_fn(procedural.generate_procedural)

  def variants(self) -> Iterator[Variant]:
    return _variants(language=False)

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return procedural.procedural_max_lengths(task, cfg)

  def special_names(self, cfg: Any) -> dict[int, str]:
    return _special_names(cfg)

  def describe(self, task: str, cfg: Any) -> str:
    return procedural.describe_procedural(task, cfg)

  def mixtures(self) -> Mapping[str, list[str]]:
    return {"procedural" + suffix: [t + suffix for t in PROCEDURAL_MIXTURE]
            for suffix in ("", "_tiny")}
