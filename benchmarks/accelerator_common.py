"""Shared pieces of the accelerator check (benchmarks/accelerator_check.py): sizes,
tolerances, the JSON line printer and the tiny-model helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's library, installed or not
  sys.path.insert(0, str(REPO))

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "gin", "clu", "etils",
            "numba", "tensorflow", "seqio", "sentencepiece", "torch", "transformers")

# Tolerances (stated in each JSON line too).
# ||cudnn - xla|| / ||xla|| in bf16 for the whole model's logits and for each parameter's
# gradient; also accepted: up to twice the same measure of bf16 XLA against float32 XLA.
ATTN_LOGITS_TOL = 2e-2
ATTN_GRADS_TOL = 5e-2
DECODE_TOL = {"float32": 1e-4, "bfloat16": 3e-2}  # max|cached - full| / max|full|
BF16_LOSS_TOL = 0.05  # max over steps of |loss_bf16 - loss_f32| / loss_f32

# Speed matrix, in priority order (a budget cut drops the tail): (model, batch, inp, tgt).
# The paper's pre-training shape first: the 3x goal is measured there.
FULL_SHAPES = (("t5_1_0_small", 128, 512, 512), ("t5_1_0_small", 64, 512, 128),
               ("t5_1_0_base", 64, 512, 128))
TINY_SHAPES = (("t5_1_0_tiny", 4, 32, 16),)
FULL_VARIANTS = (("bfloat16", 0.0), ("bfloat16", 0.1), ("float32", 0.0), ("float32", 0.1))
TINY_VARIANTS = (("bfloat16", 0.0), ("float32", 0.1))
PEER_SIZE = {"t5_1_0_small": "small", "t5_1_0_base": "base", "t5_1_0_tiny": "small"}


def emit(check: str, ok: bool, **fields) -> dict:
  """Prints one JSON line (flushed at once, so a later timeout keeps it)."""
  record = {"check": check, "ok": bool(ok), **fields}
  print(json.dumps(record, default=str), flush=True)
  return record


def _rel(a, b) -> float:
  import numpy as np
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _max_rel(a, b) -> float:
  import numpy as np
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _model_cfg(tiny: bool, **kw):
  from synthpre_jax.models import T5Config
  if tiny:  # gin/models/t5_1_0_tiny.gin's shape, written out (no Gin needed here)
    base = dict(vocab_size=512, emb_dim=64, num_heads=4, head_dim=16, num_encoder_layers=2,
                num_decoder_layers=2, mlp_dim=256, dropout_rate=0.0)
  else:  # T5 v1.0 small
    base = dict(dropout_rate=0.0)
  base.update(kw)
  return T5Config(**base)


def _padded_batch(vocab: int, batch: int, inp: int, tgt: int, seed: int = 0) -> dict:
  """Random tokens, right-padded to different lengths in every row (row 0 is full)."""
  import numpy as np
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, vocab, (batch, inp)).astype(np.int32)
  targets = rng.integers(2, vocab, (batch, tgt)).astype(np.int32)
  for r in range(1, batch):
    enc[r, max(1, inp - r * inp // (batch + 1)):] = 0
    targets[r, max(1, tgt - r * tgt // (batch + 1)):] = 0
  dec_in = np.concatenate([np.zeros((batch, 1), np.int32), targets[:, :-1]], 1)
  return dict(encoder_input_tokens=enc, decoder_input_tokens=dec_in,
              decoder_target_tokens=targets,
              decoder_loss_weights=(targets > 0).astype(np.int32))


def _init_params(cfg, seed: int = 0):
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  from synthpre_jax.models import Transformer
  tokens = jnp.ones((1, 8), jnp.int32)
  return nn.unbox(Transformer(cfg).init(jax.random.key(seed), tokens, tokens)["params"])


def _resolved(cfg) -> str:
  from synthpre_jax.models import attention
  return attention.resolve_implementation(cfg.attention_implementation, cfg.compute_dtype)
