"""Model FLOPs per training step and accelerator peaks, for tokens/s and MFU reports.

Each model family counts its own FLOPs (`ModelConfig.flops_per_step`, see
synthpre_jax/models/registry.py); this module adds the devices' peak FLOP/s.
"""

from __future__ import annotations

from typing import Optional

import jax

from synthpre_jax.models import registry
from synthpre_jax.models.registry import ModelConfig

# Dense bf16 peak FLOP/s per device, by `device_kind` substring (first match wins).
_PEAK_FLOPS = (
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12), ("TPU v4", 275e12), ("TPU v3", 123e12),
)


def flops_per_step(config: ModelConfig, batch: int, inputs_length: int,
                   targets_length: int) -> float:
  """Training FLOPs (forward + backward) of one step of a registered model config at
  the given shape (its family's `flops_per_step`); TypeError for an unregistered one."""
  return registry.flops_per_step(config, batch, inputs_length, targets_length)


def peak_flops_per_device(device: Optional[jax.Device] = None) -> Optional[float]:
  """The device's dense bf16 peak, or None where unknown (e.g. CPU)."""
  device = device or jax.devices()[0]
  kind = getattr(device, "device_kind", "")
  for key, peak in _PEAK_FLOPS:
    if key.lower() in kind.lower():
      return peak
  return None
