"""The device mesh (data, fsdp, model axes) and T5X-style logical axis rules.

Parameters carry logical names (`embed`, `mlp`, `heads`, `joined_kv`, `vocab`, ...);
activations carry `activation_*` names so that parameters can be sharded over `fsdp`
while activations are split over the batch. The rules map both onto the mesh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")

# (logical name, mesh axes). Parameters: the T5X names. Activations: activation_*.
LOGICAL_AXIS_RULES: tuple[tuple[str, Any], ...] = (
    ("vocab", "model"),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("joined_kv", "model"),
    ("relpos_buckets", None),
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_mlp", "model"),
    ("activation_heads", "model"),
    ("activation_kv", None),
    ("activation_vocab", "model"),
)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """Sizes of the data / fsdp / model mesh axes; -1 on one axis takes the rest."""
  data: int = -1
  fsdp: int = 1
  model: int = 1

  def __post_init__(self):
    sizes = (self.data, self.fsdp, self.model)
    if sum(s == -1 for s in sizes) > 1:
      raise ValueError(f"MeshConfig{sizes}: at most one axis may be -1.")
    if any(s == 0 or s < -1 for s in sizes):
      raise ValueError(f"MeshConfig{sizes}: axis sizes must be positive or -1.")

  def shape(self, num_devices: int) -> tuple[int, int, int]:
    """The concrete mesh shape for `num_devices` devices, or a clear error."""
    sizes = [self.data, self.fsdp, self.model]
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
      if num_devices % known:
        raise ValueError(
            f"MeshConfig(data={self.data}, fsdp={self.fsdp}, model={self.model}): "
            f"{num_devices} devices are not divisible by the fixed axes' product {known}.")
      sizes[sizes.index(-1)] = num_devices // known
    if math.prod(sizes) != num_devices:
      raise ValueError(
          f"MeshConfig(data={self.data}, fsdp={self.fsdp}, model={self.model}) needs "
          f"{math.prod(sizes)} devices but {num_devices} are available; set one axis "
          "to -1 or change the sizes.")
    return tuple(sizes)


def make_mesh(config: MeshConfig = MeshConfig(),
              devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A (data, fsdp, model) mesh over all devices of all processes, or `devices`."""
  devices = list(devices) if devices is not None else jax.devices()
  shape = config.shape(len(devices))
  # Auto axes: shardings come from the jit annotations and logical constraints, as in
  # T5X (newer jax defaults make_mesh to Explicit axes, which changes typing rules).
  auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
  return jax.make_mesh(shape, MESH_AXES, axis_types=auto, devices=devices)


@contextlib.contextmanager
def activate(mesh: Mesh, rules: Sequence[tuple[str, Any]] = LOGICAL_AXIS_RULES):
  """Context for tracing model code: the mesh plus the logical axis rules."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield


def logical_to_sharding(tree: Any, mesh: Mesh,
                        rules: Sequence[tuple[str, Any]] = LOGICAL_AXIS_RULES) -> Any:
  """NamedShardings for a tree of `nn.LogicallyPartitioned` boxes (e.g. from eval_shape)."""
  specs = nn.get_partition_spec(tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batches are split over the data and fsdp axes, replicated over model."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_shards(mesh: Mesh) -> int:
  """How many ways the global batch is split."""
  return mesh.shape["data"] * mesh.shape["fsdp"]


def shard_like_params(tree: Any, params: Any, param_shardings: Any,
                      mesh: Mesh) -> Any:
  """Shardings for an optimizer state: sub-trees shaped like `params` follow the
  parameters' shardings where a leaf has the parameter's shape; all else is replicated
  (Adafactor's factored statistics are O(rows + cols) and cheap to replicate)."""
  params_def = jax.tree_util.tree_structure(params)
  rep = replicated(mesh)

  def is_params_like(node) -> bool:
    return jax.tree_util.tree_structure(node) == params_def and node is not None

  def assign(node):
    if is_params_like(node):
      return jax.tree.map(
          lambda leaf, p, s: s if getattr(leaf, "shape", None) == p.shape else rep,
          node, params, param_shardings)
    return rep

  return jax.tree.map(assign, tree, is_leaf=is_params_like)


def process_grid(mesh: Mesh) -> Any:
  """The process index of each mesh position, shaped like the mesh (for layout checks)."""
  return np.vectorize(lambda d: d.process_index, otypes=[int])(mesh.devices)
