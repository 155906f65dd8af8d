"""The training state (step, params, optimizer state) and its sharded creation."""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from synthpre_jax import partitioning


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds: `step` (int32), `params`, `opt_state`."""
  step: jax.Array
  params: Any
  opt_state: Any


def _init_params(model: nn.Module, rng: jax.Array) -> Any:
  tokens = jnp.ones((1, 8), jnp.int32)
  return model.init({"params": rng}, tokens, tokens)["params"]


def abstract_params(model: nn.Module, mesh: Mesh) -> tuple[Any, Any]:
  """(shape/dtype tree, sharding tree) of the parameters, without allocating them."""
  with partitioning.activate(mesh):
    boxed = jax.eval_shape(lambda: _init_params(model, jax.random.key(0)))
  return nn.unbox(boxed), partitioning.logical_to_sharding(boxed, mesh)


def abstract_state(model: nn.Module, tx: optax.GradientTransformation,
                   mesh: Mesh) -> tuple[TrainState, TrainState]:
  """(shape/dtype tree, sharding tree) of the state, computed without allocating it."""
  params, param_shardings = abstract_params(model, mesh)
  opt_state = jax.eval_shape(tx.init, params)
  opt_shardings = partitioning.shard_like_params(opt_state, params, param_shardings, mesh)
  shapes = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=params,
                      opt_state=opt_state)
  shardings = TrainState(step=partitioning.replicated(mesh), params=param_shardings,
                         opt_state=opt_shardings)
  return shapes, shardings


def make_initializer(model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh,
                     shardings: TrainState) -> Callable[[int], TrainState]:
  """`seed -> freshly initialised state`, created directly in its sharded layout; one
  jitted function for every seed."""

  def init(rng):
    params = nn.unbox(_init_params(model, rng))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=tx.init(params))

  jitted = jax.jit(init, out_shardings=shardings)

  def create(seed: int) -> TrainState:
    with partitioning.activate(mesh):
      return jitted(jax.random.key(seed))
  return create


def create_state(model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh,
                 seed: int, shardings: TrainState) -> TrainState:
  """A freshly initialised state, created directly in its sharded layout."""
  return make_initializer(model, tx, mesh, shardings)(seed)
