"""Adafactor with the paper's settings and the `rsqrt` / `constant` learning-rate schedules."""

from __future__ import annotations

import dataclasses
from typing import Callable, Union

import jax.numpy as jnp
import optax

Schedule = Callable[[jnp.ndarray], jnp.ndarray]
SCHEDULES = ("rsqrt", "constant")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """Adafactor (T5X defaults: decay 0.8, clip 1.0, factored, parameter scaling,
  eps1 1e-30, eps2 1e-3 via optax's parameter-scale floor, no momentum, no decay).

  `schedule='rsqrt'`: lr = learning_rate / sqrt(max(step, warmup_steps)) (the paper's
  pre-training, learning_rate 1.0, warmup 10,000). `schedule='constant'`: lr =
  learning_rate (fine-tuning). A callable step -> lr is accepted too.
  """
  schedule: Union[str, Schedule] = "rsqrt"
  learning_rate: float = 1.0
  warmup_steps: int = 10_000
  decay_rate: float = 0.8
  clipping_threshold: float = 1.0
  min_dim_size_to_factor: int = 128
  multiply_by_parameter_scale: bool = True
  eps: float = 1e-30

  def __post_init__(self):
    if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
      raise ValueError(f"OptimizerConfig.schedule={self.schedule!r}; choose one of "
                       f"{SCHEDULES} or pass a callable step -> learning rate.")
    if self.warmup_steps < 1:
      raise ValueError("OptimizerConfig.warmup_steps must be >= 1 (rsqrt divides by it).")


def make_schedule(config: OptimizerConfig) -> Schedule:
  """The learning rate as a function of the (0-based) update count."""
  if callable(config.schedule):
    return config.schedule
  base, warmup = config.learning_rate, float(config.warmup_steps)
  if config.schedule == "constant":
    return lambda step: jnp.full((), base, jnp.float32)
  return lambda step: base / jnp.sqrt(jnp.maximum(jnp.asarray(step, jnp.float32), warmup))


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
  """optax.adafactor wired with `config`."""
  return optax.adafactor(
      learning_rate=make_schedule(config),
      min_dim_size_to_factor=config.min_dim_size_to_factor,
      decay_rate=config.decay_rate,
      multiply_by_parameter_scale=config.multiply_by_parameter_scale,
      clipping_threshold=config.clipping_threshold,
      momentum=None,
      eps=config.eps,
      factored=True)
