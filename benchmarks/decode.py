"""Times jit-compiled greedy and beam search; prints one JSON line per (model, search).

Runs `synthpre_jax.decoding.make_decode_fn` (encoder once, cached decoder steps) on
random inputs with random weights. EOS is switched off (`eos_id=-1`), so every
decode runs the full `--out` steps and the figures do not depend on when a random
model happens to stop:

  python benchmarks/decode.py --models tiny small --batch 16 --inp 64 --out 32
"""

from __future__ import annotations

import argparse
import json
import time

import flax.linen as nn
import jax
import numpy as np

from synthpre_jax import decoding
from synthpre_jax.models import T5Config, Transformer

MODELS = {
    # The tests' scale: 2+2 layers of width 64.
    "tiny": T5Config(vocab_size=512, emb_dim=64, num_heads=4, head_dim=16,
                     num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128,
                     dropout_rate=0.0),
    # T5 v1.0 small, the paper's model (60.5M parameters).
    "small": T5Config(dropout_rate=0.0),
}


def bench(name: str, cfg: T5Config, *, batch: int, inp: int, out: int, beams: int,
          alpha: float, repeats: int) -> dict:
  model = Transformer(cfg)
  rng = np.random.default_rng(0)
  tokens = rng.integers(2, cfg.vocab_size, (batch, inp)).astype(np.int32)
  params = nn.unbox(model.init(jax.random.key(0), tokens[:1], tokens[:1, :1])["params"])
  fn = decoding.make_decode_fn(model, max_decode_length=out, num_beams=beams, alpha=alpha,
                               eos_id=-1)
  t0 = time.perf_counter()
  jax.block_until_ready(fn(params, tokens))
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(params, tokens))
    times.append(time.perf_counter() - t0)
  best = min(times)
  return dict(project="synthpre_jax", bench="decode", model=name,
              search="greedy" if beams == 1 else f"beam{beams}", batch=batch, inp=inp,
              out=out, examples_per_s=round(batch / best, 2),
              decode_steps_per_s=round(out / best, 1), batch_s=round(best, 4),
              compile_s=round(compile_s, 2), device=jax.devices()[0].device_kind,
              backend=jax.default_backend(), jax=jax.__version__)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", nargs="+", default=["tiny", "small"], choices=sorted(MODELS))
  p.add_argument("--beams", nargs="+", type=int, default=[1, 4])
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--inp", type=int, default=64)
  p.add_argument("--out", type=int, default=32)
  p.add_argument("--alpha", type=float, default=0.6)
  p.add_argument("--repeats", type=int, default=3)
  a = p.parse_args()
  for name in a.models:
    for beams in a.beams:
      print(json.dumps(bench(name, MODELS[name], batch=a.batch, inp=a.inp, out=a.out,
                             beams=beams, alpha=a.alpha, repeats=a.repeats)), flush=True)


if __name__ == "__main__":
  main()
