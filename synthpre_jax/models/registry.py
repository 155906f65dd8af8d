"""Model families: one registry of config classes that build, count and name their model.

A model family is a frozen dataclass decorated with `@registry.register`. Its instances
must provide the `ModelConfig` protocol below. Registration records the class and makes
it Gin-configurable under its class name (`train.model_config = @T5Config()`); the
trainer, evaluation and decoding then work with any registered family through
`build_model`, `flops_per_step` and `embedding_names`. Adding a family touches only the
family's own files (see docs/models.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import gin

_REQUIRED = ("build", "flops_per_step", "embedding_names")


@runtime_checkable
class ModelConfig(Protocol):
  """What a registered model config provides.

  `build()` returns the Flax module, called as
  `model(encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
  decoder_segment_ids=None, enable_dropout=False) -> logits [batch, targets, vocab]`.
  `flops_per_step` counts one training step's FLOPs (forward + backward).
  `embedding_names` are the '/'-joined parameter names with one row or column per token
  id, which `TRANSFER_MODE='all_but_embeddings'` keeps freshly initialised.
  """

  embedding_names: tuple[str, ...]

  def build(self) -> nn.Module:
    ...

  def flops_per_step(self, batch: int, inputs_length: int, targets_length: int) -> float:
    ...


_FAMILIES: dict[str, type] = {}
_GIN_CONFIGURABLES: dict[str, Any] = {}


def register(cls: type) -> type:
  """Class decorator: registers a model config class and returns it unchanged.

  The class is also made Gin-configurable as `cls.__name__` (module None); calling the
  Gin configurable builds an instance with the parsed bindings, while calling `cls`
  itself ignores Gin. Raises TypeError if `cls` is not a frozen dataclass with the
  `ModelConfig` members, ValueError if another class is registered under its name.
  """
  name = cls.__name__
  if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
          and cls.__dataclass_params__.frozen):
    raise TypeError(f"A model config must be a frozen dataclass; {name} is not "
                    "(use @dataclasses.dataclass(frozen=True)).")
  missing = [m for m in _REQUIRED if not hasattr(cls, m)]
  if missing:
    raise TypeError(f"Model config {name} lacks {', '.join(missing)} (see "
                    "synthpre_jax.models.registry.ModelConfig).")
  if name in _FAMILIES:
    if _FAMILIES[name] is cls:
      return cls
    raise ValueError(f"A model config named {name!r} is already registered "
                     f"({_FAMILIES[name].__module__}); choose another class name.")
  _FAMILIES[name] = cls
  _GIN_CONFIGURABLES[name] = gin.external_configurable(cls, name=name, module=None)
  return cls


def registered() -> tuple[str, ...]:
  """The names of the registered config classes, in registration order."""
  return tuple(_FAMILIES)


def gin_configurables() -> dict[str, Any]:
  """{class name: Gin configurable} of every registered family (a copy)."""
  return dict(_GIN_CONFIGURABLES)


def family(config: Any) -> type:
  """The registered class `config` is an instance of (Gin's wrapped subclasses included).

  Raises TypeError naming the registered families for anything else."""
  for cls in type(config).__mro__:
    if _FAMILIES.get(cls.__name__) is cls:
      return cls
  raise TypeError(
      f"model_config must be a registered model config ({', '.join(registered())}), got "
      f"{type(config).__name__}. A new family registers its config class with "
      "@synthpre_jax.models.registry.register.")


def build_model(config: Any) -> nn.Module:
  """The Flax module of a registered `config`; TypeError for an unregistered one."""
  family(config)
  return config.build()


def flops_per_step(config: Any, batch: int, inputs_length: int,
                   targets_length: int) -> float:
  """Training FLOPs (forward + backward) of one step of a registered `config`."""
  family(config)
  return float(config.flops_per_step(batch, inputs_length, targets_length))


def embedding_names(config: Any) -> tuple[str, ...]:
  """The per-token parameter names that 'all_but_embeddings' keeps fresh."""
  family(config)
  return tuple(config.embedding_names)
