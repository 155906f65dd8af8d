"""Times the compiled, sharded train step and prints one JSON line (tokens/s, MFU).

Uses the project's own step (`synthpre_jax.training.steps.make_train_step`) on fixed-shape random
batches, the model sizes of gin/models/, and the FLOP count of
shared/bench/hf_t5_bench.py, so the figures compare side by side with that peer:

  python benchmarks/train_step.py --model t5_1_0_small --batch 64 --inp 512 --tgt 128
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from synthpre_jax import partitioning
from synthpre_jax.training import flops
from synthpre_jax.cli import gin_utils
from synthpre_jax.training import optimizers
from synthpre_jax.training import train_state
from synthpre_jax.training import steps as steps_lib
from synthpre_jax.cli import train as train_cli
from synthpre_jax.models import T5Config, Transformer, attention


def model_config(name: str, dtype: str, dropout: float) -> T5Config:
  """The T5Config of gin/models/<name>.gin, with the benchmark's dtype and dropout."""
  gin_utils.parse_gin([f"models/{name}.gin"],
                      [f"DROPOUT_RATE = {dropout}", f"ACTIVATION_DTYPE = '{dtype}'"])
  return train_cli.CONFIGURABLES["T5Config"]()


def measure(*, model: str = "t5_1_0_small", batch: int = 64, inp: int = 512,
            tgt: int = 128, steps: int = 20, warmup: int = 3, dtype: str = "bfloat16",
            dropout: float = 0.0, attention_impl: str = "auto", remat: str = "none",
            fsdp: int = 1, model_axis: int = 1) -> dict:
  """Compiles and times the train step for one configuration; returns the JSON record."""
  cfg = model_config(model, dtype, dropout).replace(
      attention_implementation=attention_impl, remat_policy=remat)
  mesh = partitioning.make_mesh(partitioning.MeshConfig(data=-1, fsdp=fsdp,
                                                        model=model_axis))
  net = Transformer(cfg)
  tx = optimizers.make_optimizer(optimizers.OptimizerConfig(schedule="rsqrt"))
  shapes, shardings = train_state.abstract_state(net, tx, mesh)
  state = train_state.create_state(net, tx, mesh, 0, shardings)
  step = steps_lib.make_train_step(net, tx, mesh, shardings)
  rng = np.random.default_rng(0)
  targets = rng.integers(2, cfg.vocab_size, (batch, tgt)).astype(np.int32)
  data = dict(
      encoder_input_tokens=rng.integers(2, cfg.vocab_size, (batch, inp)).astype(np.int32),
      decoder_target_tokens=targets,
      decoder_input_tokens=np.concatenate([np.zeros((batch, 1), np.int32),
                                           targets[:, :-1]], 1),
      decoder_loss_weights=np.ones_like(targets))
  data = {k: jax.device_put(v, partitioning.batch_sharding(mesh)) for k, v in data.items()}
  key = jax.random.key(0)

  t0 = time.perf_counter()
  state, sums = step(state, data, key)
  jax.block_until_ready(sums)
  compile_s = time.perf_counter() - t0
  for _ in range(warmup - 1):
    state, sums = step(state, data, key)
  jax.block_until_ready(sums)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, sums = step(state, data, key)
  jax.block_until_ready((state, sums))
  dt = (time.perf_counter() - t0) / steps

  fl = flops.flops_per_step(cfg, batch, inp, tgt)
  peak = flops.peak_flops_per_device()
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes.params))
  return dict(
      project="synthpre_jax", model=model, dtype=dtype, dropout=dropout, batch=batch,
      inp=inp, tgt=tgt, remat=remat,
      attention=attention.resolve_implementation(cfg.attention_implementation,
                                                 cfg.compute_dtype),
      step_s=round(dt, 5), tokens_per_s=round(batch * (inp + tgt) / dt),
      mfu=round(fl / dt / (peak * jax.device_count()), 4) if peak else None,
      compile_s=round(compile_s, 2), params_m=round(n_params / 1e6, 1),
      devices=jax.device_count(), device=jax.devices()[0].device_kind,
      jax=jax.__version__, loss_sum=float(sums["loss_sum"]))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="t5_1_0_small", help="a file name under gin/models/")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--inp", type=int, default=512)
  p.add_argument("--tgt", type=int, default=128)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--dtype", default="bfloat16")
  p.add_argument("--dropout", type=float, default=0.0)
  p.add_argument("--attention", default="auto", choices=["auto", "xla", "cudnn"])
  p.add_argument("--remat", default="none", choices=["none", "full", "minimal"])
  p.add_argument("--fsdp", type=int, default=1)
  p.add_argument("--model_axis", type=int, default=1)
  a = p.parse_args()
  print(json.dumps(measure(model=a.model, batch=a.batch, inp=a.inp, tgt=a.tgt,
                           steps=a.steps, warmup=a.warmup, dtype=a.dtype,
                           dropout=a.dropout, attention_impl=a.attention, remat=a.remat,
                           fsdp=a.fsdp, model_axis=a.model_axis)))


if __name__ == "__main__":
  main()
