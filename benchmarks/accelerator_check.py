"""The pieces of benchmarks/accelerator_check.sh; each prints JSON lines `{"check": ...}`.

  python benchmarks/accelerator_check.py SUBCOMMAND [--tiny] [--budget_s S] [...]

Subcommands: env, attention, decode, bf16_vs_f32, speed, peer, ratio, real_run,
decode_speed. Every line carries `check` and `ok`; a piece that raises prints its line
with `ok: false` and `error` and exits 1. `--tiny` selects the CPU-sized form (tiny
model, tiny shapes, few steps); without it the sizes of issue 15 (T5 v1.0 small/base,
the paper's pre-training shape). Sizes, tolerances and budgets are in
benchmarks/README.md ("accelerator check").
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator, Optional

from accelerator_common import (ATTN_GRADS_TOL, ATTN_LOGITS_TOL, BF16_LOSS_TOL, DECODE_TOL,
                                PACKAGES, REPO, _init_params, _max_rel, _model_cfg,
                                _padded_batch, _rel, _resolved, emit)
from accelerator_speed import (check_decode_speed, check_input, check_peer, check_ratio,
                               check_speed)


def cudnn_probe() -> tuple[bool, str]:
  """(available, why): a tiny bf16 `dot_product_attention(implementation='cudnn')`."""
  import jax
  import jax.numpy as jnp
  if jax.default_backend() != "gpu":
    return False, f"no cuDNN on {jax.default_backend()}"
  try:
    q = jnp.ones((1, 128, 2, 64), jnp.bfloat16)
    bias = jnp.zeros((1, 2, 128, 128), jnp.bfloat16)
    out = jax.nn.dot_product_attention(q, q, q, bias=bias, implementation="cudnn")
    jax.block_until_ready(out)
    return True, "ok"
  except Exception as e:  # pylint: disable=broad-except
    return False, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"


# ---------------------------------------------------------------- env
def check_env(a) -> Iterator[dict]:
  missing = [p for p in PACKAGES if importlib.util.find_spec(p.split(".")[0]) is None
             or (p == "orbax.checkpoint" and importlib.util.find_spec(p) is None)]
  yield emit("packages", True, missing=missing, python=platform.python_version(),
             wheels_installed=os.environ.get("ACC_WHEELS_INSTALLED", ""))
  import jax
  ok, why = cudnn_probe()
  devices = jax.devices()
  yield emit("env", True, jax=jax.__version__, backend=jax.default_backend(),
             devices=len(devices), device_kind=devices[0].device_kind,
             cudnn_fused_attention=ok, cudnn_detail=why)


# ---------------------------------------------------------------- model helpers
def check_attention(a) -> Iterator[dict]:
  """cuDNN vs XLA attention in the whole model: bf16 logits and loss gradients."""
  import jax
  import numpy as np
  from synthpre_jax.training import losses
  from synthpre_jax.models import Transformer

  cfg = _model_cfg(a.tiny, dtype="bfloat16")
  shape = (4, 32, 16) if a.tiny else (8, 256, 128)
  batch = _padded_batch(cfg.vocab_size, *shape)
  params = _init_params(cfg)

  def run(impl: str, dtype: str):
    model = Transformer(cfg.replace(attention_implementation=impl, dtype=dtype))

    def loss(p):
      logits = model.apply({"params": p}, batch["encoder_input_tokens"],
                           batch["decoder_input_tokens"])
      return losses.batch_metrics(logits, batch["decoder_target_tokens"],
                                  batch["decoder_loss_weights"], 1e-4)["loss_sum"], logits

    (_, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    w = batch["decoder_loss_weights"][..., None] > 0  # compare real positions only
    return np.where(w, np.asarray(logits, np.float32), 0.0), jax.tree.map(np.asarray, grads)

  xla_bf16 = run("xla", "bfloat16")
  xla_f32 = run("xla", "float32")
  fields = dict(batch=shape[0], inp=shape[1], tgt=shape[2], padded_rows=shape[0] - 1,
                relative_position_bias=True, logits_tol=ATTN_LOGITS_TOL,
                grads_tol=ATTN_GRADS_TOL,
                xla_bf16_vs_f32_logits=round(_rel(xla_bf16[0], xla_f32[0]), 5))
  ok, why = cudnn_probe()
  if not ok:
    yield emit("attention", True, cudnn=f"skipped: {why}", **fields)
    return
  cudnn = run("cudnn", "bfloat16")
  # A parameter passes when cuDNN-vs-XLA is within the tolerance or within twice what
  # bf16 itself costs against float32 for that parameter (small gradients are noisy).
  names = ["/".join(str(getattr(k, "key", k)) for k in path)
           for path, _ in jax.tree_util.tree_flatten_with_path(cudnn[1])[0]]
  grad_err = jax.tree.leaves(jax.tree.map(_rel, cudnn[1], xla_bf16[1]))
  grad_noise = jax.tree.leaves(jax.tree.map(_rel, xla_bf16[1], xla_f32[1]))
  grads_ok = all(e <= max(ATTN_GRADS_TOL, 2 * n) for e, n in zip(grad_err, grad_noise))
  logit_err = _rel(cudnn[0], xla_bf16[0])
  logits_ok = logit_err <= max(ATTN_LOGITS_TOL, 2 * fields["xla_bf16_vs_f32_logits"])
  worst = max(range(len(grad_err)), key=grad_err.__getitem__)
  # The relative-position bias enters the fused kernel as its bias input: its gradient
  # is the one a wrong cuDNN bias gradient would spoil, so it is reported on its own.
  bias = {n: round(e, 5) for n, e in zip(names, grad_err) if "relpos_bias" in n}
  yield emit("attention", logits_ok and grads_ok, cudnn="compared",
             cudnn_vs_xla_logits=round(logit_err, 5),
             cudnn_vs_xla_grads_worst=round(max(grad_err), 5),
             cudnn_vs_xla_grads_worst_param=names[worst],
             cudnn_vs_xla_relpos_bias_grads=bias,
             xla_bf16_vs_f32_grads_worst=round(max(grad_noise), 5),
             cudnn_vs_f32_logits=round(_rel(cudnn[0], xla_f32[0]), 5), **fields)


# ---------------------------------------------------------------- decode
def check_decode(a) -> Iterator[dict]:
  """Cached step-by-step decoding equals the full forward pass, in float32 and bf16."""
  import jax
  batch, inp, length = (3, 12, 10) if a.tiny else (8, 128, 48)
  for dtype in ("float32", "bfloat16"):
    # float32 at full matmul precision (GPUs default to TF32), so a cache bug cannot
    # hide in rounding; bf16 as it runs.
    with jax.default_matmul_precision("float32" if dtype == "float32" else "default"):
      yield _decode_once(a.tiny, dtype, batch, inp, length)


def _decode_once(tiny: bool, dtype: str, batch: int, inp: int, length: int) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from synthpre_jax import decoding
  from synthpre_jax.models import Transformer

  cfg = _model_cfg(tiny, dtype=dtype)
  params = _init_params(cfg)
  enc = _padded_batch(cfg.vocab_size, batch, inp, length, seed=1)["encoder_input_tokens"]
  dec = np.random.default_rng(2).integers(2, cfg.vocab_size, (batch, length)).astype(np.int32)
  dec[:, 0] = 0
  model = Transformer(cfg)
  full = np.asarray(jax.jit(model.apply)({"params": params}, enc, dec), np.float32)
  cache, cross = decoding.encode_and_init_cache(model, params, enc, max_decode_length=length)
  step = jax.jit(decoding.make_tokens_to_logits(model, params, cross))
  out = []
  for t in range(length):
    logits, cache = step(jnp.asarray(dec[:, t]), cache)
    out.append(np.asarray(logits, np.float32))
  cached = np.stack(out, axis=1)
  err = _max_rel(cached, full)
  return emit("decode", err <= DECODE_TOL[dtype], dtype=dtype, batch=batch, inp=inp,
              steps=length, max_rel_diff=round(err, 6), tol=DECODE_TOL[dtype],
              argmax_agreement=round(float((cached.argmax(-1) == full.argmax(-1)).mean()), 4),
              attention=_resolved(cfg))


def check_bf16_vs_f32(a) -> Iterator[dict]:
  """The same model, batches and optimizer in both dtypes; per-step losses compared."""
  import jax
  import numpy as np
  from synthpre_jax import partitioning
  from synthpre_jax.training import optimizers
  from synthpre_jax.training import steps
  from synthpre_jax.training import train_state
  from synthpre_jax.models import Transformer

  n_steps = 50
  batch, length = (8, 16) if a.tiny else (32, 64)
  mesh = partitioning.make_mesh(partitioning.MeshConfig(data=-1, fsdp=1, model=1))
  rng = np.random.default_rng(0)
  vocab = 512 if a.tiny else 32128
  batches = []
  for _ in range(n_steps):  # a learnable task (copy), so the loss moves
    x = rng.integers(2, min(vocab, 500), (batch, length)).astype(np.int32)
    batches.append(dict(encoder_input_tokens=x, decoder_target_tokens=x,
                        decoder_input_tokens=np.concatenate(
                            [np.zeros((batch, 1), np.int32), x[:, :-1]], 1),
                        decoder_loss_weights=np.ones_like(x)))
  curves, times = {}, {}
  for dtype in ("float32", "bfloat16"):
    model = Transformer(_model_cfg(a.tiny, dtype=dtype))
    tx = optimizers.make_optimizer(optimizers.OptimizerConfig(schedule="constant",
                                                              learning_rate=0.01))
    _, shardings = train_state.abstract_state(model, tx, mesh)
    state = train_state.create_state(model, tx, mesh, 0, shardings)
    step = steps.make_train_step(model, tx, mesh, shardings)
    key, losses_ = jax.random.key(0), []
    t0 = time.perf_counter()
    for b in batches:
      state, sums = step(state, {k: jax.device_put(v, partitioning.batch_sharding(mesh))
                                 for k, v in b.items()}, key)
      losses_.append(sums["loss_sum"] / sums["num_tokens"])
    curves[dtype] = np.asarray(jax.device_get(losses_), np.float64)
    times[dtype] = round(time.perf_counter() - t0, 2)
  f32, bf16 = curves["float32"], curves["bfloat16"]
  rel = np.abs(bf16 - f32) / np.abs(f32)
  finite = bool(np.all(np.isfinite(f32)) and np.all(np.isfinite(bf16)))
  yield emit("bf16_vs_f32", finite and float(rel.max()) <= BF16_LOSS_TOL, steps=n_steps,
             batch=batch, length=length, tol=BF16_LOSS_TOL,
             max_rel_diff=round(float(rel.max()), 5),
             mean_rel_diff=round(float(rel.mean()), 5),
             loss_f32=[round(float(f32[i]), 4) for i in (0, n_steps // 2, -1)],
             loss_bf16=[round(float(bf16[i]), 4) for i in (0, n_steps // 2, -1)],
             seconds=times)


# ---------------------------------------------------------------- speed (ours)
def _train_cmd(a, model_dir: str) -> tuple[list[str], str]:
  if a.tiny:
    gin = ["--gin_file=gin/quickstart/pretrain_set.gin"]
    binds = ["TRAIN_STEPS=20", "BATCH_SIZE=8", "CHECKPOINT_PERIOD=5", "LOG_PERIOD=5",
             "EVAL_PERIOD=1000"]
  else:
    gin = ["--gin_file=gin/models/t5_1_0_small.gin", "--gin_file=gin/pretrain.gin"]
    binds = ["MIXTURE_OR_TASK_NAME='set'", "TRAIN_STEPS=300", "BATCH_SIZE=32",
             "ACTIVATION_DTYPE='bfloat16'", "CHECKPOINT_PERIOD=100", "LOG_PERIOD=25",
             "EVAL_PERIOD=100000"]
  binds += [f"MODEL_DIR='{model_dir}'", "train.eval_split=None"]  # training only
  from synthpre_jax.cli import train as train_cli
  if "input_pipeline" in inspect.signature(train_cli.train).parameters:
    binds.append("train.input_pipeline='native'")
    path = "native"
  else:
    path = "default (train() has no input_pipeline parameter yet)"
  return ([sys.executable, "-m", "synthpre_jax.train", *gin]
          + [f"--gin.{b}" for b in binds]), path


def _saved_steps(model_dir: Path) -> list[int]:
  root = model_dir / "checkpoints"
  if not root.is_dir():
    return []
  return sorted(int(p.name) for p in root.iterdir()
                if p.name.isdigit() and (p / "commit_success.txt").exists())


def check_real_run(a) -> Iterator[dict]:
  """Train, SIGTERM after the first checkpoint, resume to the end, summarise the curve."""
  from synthpre_jax.training import metric_writers
  with tempfile.TemporaryDirectory(prefix="acc_real_run_") as tmp:
    model_dir = Path(tmp) / "run"
    cmd, path = _train_cmd(a, str(model_dir))
    t0 = time.perf_counter()
    log_path = Path(tmp) / "first.log"  # a file, not a pipe: a full pipe would block it
    log_file = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                            text=True)
    killed_after = None
    while proc.poll() is None:
      saved = [s for s in _saved_steps(model_dir) if s > 0]
      if saved:
        killed_after = saved[0]
        proc.send_signal(signal.SIGTERM)
        break
      if time.perf_counter() - t0 > a.budget_s:
        break
      time.sleep(0.1)
    try:
      proc.wait(timeout=max(a.budget_s - (time.perf_counter() - t0), 5))
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
      log_file.close()
      raise TimeoutError(f"the first training process ran past {a.budget_s:.0f} s; "
                         f"its log ends: {log_path.read_text()[-600:]}") from None
    log_file.close()
    first_log = log_path.read_text()
    first_s = time.perf_counter() - t0
    saved_at_stop = _saved_steps(model_dir)
    t1 = time.perf_counter()
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                            timeout=max(a.budget_s - (time.perf_counter() - t0), 5))
    resume_s = time.perf_counter() - t1
    m = re.search(r"found checkpoint step (\d+)", second.stdout + second.stderr)
    resumed_from = int(m.group(1)) if m else None
    records = metric_writers.read_jsonl(model_dir / "train" / "metrics.jsonl")
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    want = int(re.search(r"TRAIN_STEPS=(\d+)", " ".join(cmd)).group(1))
    summary = {}
    if losses:
      for name, (s, l) in (("start", losses[0]), ("middle", losses[len(losses) // 2]),
                           ("end", losses[-1])):
        summary[name] = {"step": s, "loss": round(l, 4)}
    finished = bool(losses) and losses[-1][0] == want and second.returncode == 0
    continued = (resumed_from is not None and bool(saved_at_stop)
                 and resumed_from == saved_at_stop[-1])
    fields = dict(input_pipeline=path, train_steps=want, first_rc=proc.returncode,
                  sigterm_after_checkpoint=killed_after, saved_at_stop=saved_at_stop,
                  resumed_from=resumed_from, resumed_from_saved_step=continued,
                  resume_rc=second.returncode, final_checkpoints=_saved_steps(model_dir),
                  loss=summary, first_s=round(first_s, 1), resume_s=round(resume_s, 1))
    if not (finished and continued):
      fields["log_tail"] = (second.stdout + second.stderr or first_log)[-800:]
    yield emit("real_run", finished and continued and killed_after is not None, **fields)


# ---------------------------------------------------------------- decode speed
CHECKS: dict[str, Callable] = {
    "env": check_env, "attention": check_attention, "decode": check_decode,
    "bf16_vs_f32": check_bf16_vs_f32, "speed": check_speed, "peer": check_peer,
    "ratio": check_ratio, "real_run": check_real_run, "decode_speed": check_decode_speed,
    "input": check_input}


def run(name: str, argv: Optional[list[str]] = None) -> list[dict]:
  """Runs one piece; returns its records (a raised error becomes an ok=false record)."""
  p = argparse.ArgumentParser()
  p.add_argument("--tiny", action="store_true")
  p.add_argument("--budget_s", type=float, default=600.0)
  p.add_argument("--results", default=None, help="ratio: the JSONL of this run")
  a = p.parse_args(argv or [])
  out = []
  try:
    for rec in CHECKS[name](a):
      out.append(rec)
  except Exception as e:  # pylint: disable=broad-except
    out.append(emit(name, False, error=f"{type(e).__name__}: {str(e)[:800]}",
                    where=traceback.format_exc().splitlines()[-3:]))
  return out


def main() -> int:
  if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
    print(f"usage: {sys.argv[0]} {{{','.join(CHECKS)}}} [--tiny] [--budget_s S]",
          file=sys.stderr)
    return 2
  records = run(sys.argv[1], sys.argv[2:])
  return 0 if records and all(r["ok"] for r in records) else 1


if __name__ == "__main__":
  sys.exit(main())
