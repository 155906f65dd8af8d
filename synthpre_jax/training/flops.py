"""Model FLOPs per training step and accelerator peaks, for tokens/s and MFU reports.

The count is the one `shared/bench/hf_t5_bench.py` uses (matmuls + attention scores,
x3 for forward + backward), so figures compare side by side; gated MLPs (T5 v1.1)
count their extra input projection.
"""

from __future__ import annotations

from typing import Optional

import jax

from synthpre_jax.models.config import T5Config

# Dense bf16 peak FLOP/s per device, by `device_kind` substring (first match wins).
_PEAK_FLOPS = (
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12), ("TPU v4", 275e12), ("TPU v3", 123e12),
)


def flops_per_step(config: T5Config, batch: int, inputs_length: int,
                   targets_length: int) -> float:
  """Training FLOPs (forward + backward) of one step at the given shape."""
  d, f, hd = config.emb_dim, config.mlp_dim, config.num_heads * config.head_dim
  n_wi = len(config.mlp_activations)
  mlp = (n_wi + 1) * d * f
  enc_layer = 4 * d * hd + mlp
  dec_layer = 8 * d * hd + mlp
  li, lt = inputs_length, targets_length
  fwd = 2 * batch * (li * enc_layer * config.num_encoder_layers
                     + lt * dec_layer * config.num_decoder_layers
                     + lt * d * config.vocab_size)
  fwd += 4 * batch * hd * (config.num_encoder_layers * li * li
                           + config.num_decoder_layers * (lt * lt + lt * li))
  return 3.0 * fwd


def peak_flops_per_device(device: Optional[jax.Device] = None) -> Optional[float]:
  """The device's dense bf16 peak, or None where unknown (e.g. CPU)."""
  device = device or jax.devices()[0]
  kind = getattr(device, "device_kind", "")
  for key, peak in _PEAK_FLOPS:
    if key.lower() in kind.lower():
      return peak
  return None
