"""The synthetic catalogue derives everything from its families (tasks/synthetic/family.py):
a toy family added to `catalog.FAMILIES` is listed, drawn, inspected and given a fixed
split without touching any other module."""
import dataclasses
from typing import Any, Iterator, Mapping

import numpy as np
import pytest

from tasks import inspect as inspect_cli
from tasks.fixed_splits import specs
from tasks.synthetic import catalog
from tasks.synthetic.config import TINY
from tasks.synthetic.family import TaskFamily, Variant, per_example_batch_fn


def _count_up(task, cfg, split, seed, index):
  n = 3 + index % 4
  ids = cfg.pool_low + (np.arange(n) + seed) % cfg.pool_size
  return ids.astype(np.int32), ids[::-1].astype(np.int32)


@dataclasses.dataclass(frozen=True)
class CountUpFamily:
  name: str = "count_up"
  batch_native: bool = False
  generate: Any = _count_up
  generate_batch: Any = per_example_batch_fn(_count_up)

  def variants(self) -> Iterator[Variant]:
    yield Variant("count_up_tiny", "count_up", TINY, "_tiny")

  def max_lengths(self, task: str, cfg: Any) -> dict[str, int]:
    return {"inputs": 7, "targets": 7}

  def special_names(self, cfg: Any) -> dict[int, str]:
    return {}

  def describe(self, task: str, cfg: Any) -> str:
    return "toy family"

  def mixtures(self) -> Mapping[str, list[str]]:
    return {"count_up_mix": ["count_up_tiny"]}


@pytest.fixture
def toy_family(monkeypatch):
  family: TaskFamily = CountUpFamily()
  monkeypatch.setattr(catalog, "FAMILIES", catalog.FAMILIES + (family,))
  catalog._synthetic_tasks.cache_clear()  # pylint: disable=protected-access
  yield family
  catalog._synthetic_tasks.cache_clear()  # pylint: disable=protected-access


def test_a_family_is_listed_drawn_and_given_a_fixed_split(toy_family, capsys):
  entry = catalog.get("count_up_tiny")
  assert (entry.family, entry.task, entry.layout) == ("count_up", "count_up", "_tiny")
  batch = entry.generate_batch(entry.task, entry.cfg, "train", 0, [0, 5])
  want = _count_up("count_up", TINY, "train", 0, 5)[0]
  assert batch.example(1)[0].tolist() == want.tolist()
  assert catalog.mixtures()["count_up_mix"] == ["count_up_tiny"]
  spec = specs.fixed_spec("count_up_tiny_fixed")
  assert (spec.task, spec.generate_fn, spec.batch_fn, spec.sizes_key) == (
      "count_up", _count_up, None, "_tiny")
  assert inspect_cli.main(["count_up_tiny", "--num", "1"]) == 0
  assert "toy family" in capsys.readouterr().out


def test_the_project_families_list_every_task_once():
  names = [v.name for f in catalog.FAMILIES for v in f.variants()]
  assert names == list(catalog.synthetic_tasks()) and len(set(names)) == len(names)
  assert [f.name for f in catalog.FAMILIES] == ["simple", "lime", "nesting",
                                                "formal_languages", "procedural"]
