"""What a run builds from its model, optimizer, mesh and loss settings alone: the model,
the optimizer, the state layout and the jitted init / train / eval functions, cached per
process so that runs repeated in one process (a study's cells) do not trace them again.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Optional

from synthpre_jax.models import registry
from synthpre_jax.training import optimizers
from synthpre_jax.training import steps as steps_lib
from synthpre_jax.training import train_state as state_lib


@dataclasses.dataclass(frozen=True)
class Parts:
  """What a run builds from its model, optimizer, mesh and loss settings alone."""
  model: Any
  tx: Any
  shapes: Any
  shardings: Any
  init: Callable[[int], Any]  # seed -> fresh state
  train_step: Callable
  eval_step: Callable


_CACHE: "collections.OrderedDict[tuple, Parts]" = collections.OrderedDict()
KEPT = 8


def get(model_config: Any, optimizer_config: Any, mesh: Any, z_loss: float,
           loss_normalizing_factor: Optional[str]) -> Parts:
  """The run's model, optimizer, state layout and jitted functions, built once per
  process for each distinct (configs, mesh, loss settings); the most recent
  `KEPT` are kept."""
  key = (config_key(model_config), config_key(optimizer_config), mesh, z_loss,
         loss_normalizing_factor)
  if key in _CACHE:
    _CACHE.move_to_end(key)
    return _CACHE[key]
  model = registry.build_model(model_config)
  tx = optimizers.make_optimizer(optimizer_config)
  shapes, shardings = state_lib.abstract_state(model, tx, mesh)
  # A family may rewrite the batch its loss is computed on (decoder-only loss_on='all').
  batch_fn = getattr(model_config, "training_batch", None)
  parts = Parts(
      model=model, tx=tx, shapes=shapes, shardings=shardings,
      init=state_lib.make_initializer(model, tx, mesh, shardings),
      train_step=steps_lib.make_train_step(
          model, tx, mesh, shardings, z_loss=z_loss,
          loss_normalizing_factor=loss_normalizing_factor,
          learning_rate_fn=optimizers.make_schedule(optimizer_config), batch_fn=batch_fn),
      eval_step=steps_lib.make_eval_step(model, mesh, shardings.params, z_loss=z_loss,
                                         batch_fn=batch_fn))
  _CACHE[key] = parts
  while len(_CACHE) > KEPT:
    _CACHE.popitem(last=False)
  return parts


def config_key(config: Any) -> Any:
  """The config itself where it is hashable (frozen dataclasses: field equality,
  callables by identity); else its type and repr."""
  try:
    hash(config)
    return config
  except TypeError:
    return (type(config).__qualname__, repr(config))


def clear() -> None:
  """Forgets every cached entry (tests)."""
  _CACHE.clear()


def cached() -> list[Parts]:
  """The cached entries, oldest first (tests)."""
  return list(_CACHE.values())
