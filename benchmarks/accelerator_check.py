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
import json
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


# ---------------------------------------------------------------- attention
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


def _resolved(cfg) -> str:
  from synthpre_jax.models import attention
  return attention.resolve_implementation(cfg.attention_implementation, cfg.compute_dtype)


# ---------------------------------------------------------------- bf16 vs f32
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
def check_speed(a) -> Iterator[dict]:
  """benchmarks/train_step.py's `measure` over the matrix, in priority order."""
  sys.path.insert(0, str(Path(__file__).resolve().parent))
  import train_step  # benchmarks/train_step.py

  shapes = TINY_SHAPES if a.tiny else FULL_SHAPES
  variants = TINY_VARIANTS if a.tiny else FULL_VARIANTS
  n_steps, warmup = (2, 1) if a.tiny else (10, 2)
  start, cost = time.perf_counter(), {}
  # Per dtype (bf16 first), each shape with both dropouts side by side, so a budget cut
  # drops float32 and T5 base before the paper shape's like-for-like (dropout 0.1) row.
  order = [(dtype, dropout, shape) for dtype in dict.fromkeys(d for d, _ in variants)
           for shape in shapes for d, dropout in variants if d == dtype]
  for dtype, dropout, (model, batch, inp, tgt) in order:
    conf = dict(model=model, batch=batch, inp=inp, tgt=tgt, dtype=dtype, dropout=dropout)
    left = a.budget_s - (time.perf_counter() - start)
    # Expected: this shape's slowest run so far, else the slowest of any shape.
    expect = cost.get((model, batch, inp, tgt), max(cost.values(), default=0.0))
    if left < expect * 1.2:
      yield emit("speed", False, skipped=f"budget: {left:.0f} s left", **conf)
      continue
    t0 = time.perf_counter()
    try:
      rec = train_step.measure(model=model, batch=batch, inp=inp, tgt=tgt,
                               steps=n_steps, warmup=warmup, dtype=dtype,
                               dropout=dropout)
      yield emit("speed", True, **rec)
    except Exception as e:  # pylint: disable=broad-except
      yield emit("speed", False, error=f"{type(e).__name__}: {str(e)[:500]}", **conf)
    cost[(model, batch, inp, tgt)] = max(cost.get((model, batch, inp, tgt), 0.0),
                                        time.perf_counter() - t0)


# ---------------------------------------------------------------- peer
def peer_path() -> Optional[Path]:
  for p in (os.environ.get("PEER_BENCH", "benchmarks/peer/hf_t5_bench.py"),
            "../shared/bench/hf_t5_bench.py"):
    path = Path(p) if Path(p).is_absolute() else REPO / p
    if path.is_file():
      return path
  return None


def check_peer(a) -> Iterator[dict]:
  """The peer (HF T5 in PyTorch, --compile) on the same shapes, one subprocess each."""
  shapes = TINY_SHAPES if a.tiny else FULL_SHAPES
  path = peer_path()
  why = None
  if path is None:
    why = ("no peer script: copy ../shared/bench/hf_t5_bench.py to "
           "benchmarks/peer/ (or set PEER_BENCH)")
  elif any(importlib.util.find_spec(p) is None for p in ("torch", "transformers")):
    why = "torch or transformers not importable"
  else:
    probe = subprocess.run([sys.executable, "-c",
                            "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True, timeout=120)
    if probe.stdout.strip() != "True":
      why = "torch sees no CUDA device" + (f" ({probe.stderr.strip()[-200:]})"
                                           if probe.returncode else "")
  if why:
    for model, batch, inp, tgt in shapes:
      yield emit("peer", True, skipped=why, size=PEER_SIZE[model], batch=batch, inp=inp,
                 tgt=tgt)
    return
  start = time.perf_counter()
  for model, batch, inp, tgt in shapes:
    conf = dict(size=PEER_SIZE[model], batch=batch, inp=inp, tgt=tgt, compile=True)
    left = a.budget_s - (time.perf_counter() - start)
    if left < 20:
      yield emit("peer", False, skipped=f"budget: {left:.0f} s left", **conf)
      continue
    cmd = [sys.executable, str(path), "--size", conf["size"], "--batch", str(batch),
           "--inp", str(inp), "--tgt", str(tgt), "--steps", "3" if a.tiny else "10",
           "--compile"]
    try:
      r = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
      lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
      if r.returncode == 0 and lines:
        yield emit("peer", True, **json.loads(lines[-1]))
      else:
        yield emit("peer", False, error=(r.stderr or r.stdout)[-500:], **conf)
    except subprocess.TimeoutExpired:
      yield emit("peer", False, error=f"timeout after {left:.0f} s", **conf)


# ---------------------------------------------------------------- ratio
def check_ratio(a) -> Iterator[dict]:
  """Ours / peer tokens/s per shape, from the JSON lines of this run (--results)."""
  records = _records(a.results)
  ours = {(r["model"], r["batch"], r["inp"], r["tgt"], r["dtype"], r["dropout"]): r
          for r in records if r.get("check") == "speed" and r.get("tokens_per_s")}
  peers = {(r["size"], r["batch"], r["inp"], r["tgt"]): r for r in records
           if r.get("check") == "peer" and r.get("tokens_per_s")}
  found = False
  for model, batch, inp, tgt in (TINY_SHAPES if a.tiny else FULL_SHAPES):
    peer = peers.get((PEER_SIZE[model], batch, inp, tgt))
    if peer is None:
      continue
    for dropout in (0.0, 0.1):
      mine = ours.get((model, batch, inp, tgt, "bfloat16", dropout))
      if mine is None:
        continue
      found = True
      # The peer's T5Config keeps transformers' default dropout_rate=0.1.
      yield emit("ratio", True, model=model, batch=batch, inp=inp, tgt=tgt,
                 ours_dtype="bfloat16", ours_dropout=dropout, peer_dropout=0.1,
                 like_for_like=dropout == 0.1, ours_tokens_per_s=mine["tokens_per_s"],
                 peer_tokens_per_s=peer["tokens_per_s"],
                 ratio=round(mine["tokens_per_s"] / peer["tokens_per_s"], 3))
  if not found:
    yield emit("ratio", True, skipped="no shape has both our and the peer's figure")


# ---------------------------------------------------------------- real run
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
def check_decode_speed(a) -> Iterator[dict]:
  """benchmarks/decode.py: greedy and beam-4 throughput (random weights, EOS off)."""
  args = (["--models", "tiny", "--batch", "4", "--inp", "16", "--out", "8", "--repeats", "1"]
          if a.tiny else ["--models", "small", "--batch", "64", "--inp", "512", "--out",
                          "64", "--repeats", "2"])
  r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "decode.py"), *args,
                      "--beams", "1", "4"], cwd=REPO, capture_output=True, text=True,
                     timeout=a.budget_s)
  lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
  for rec in lines:
    yield emit("decode_speed", True, **rec)
  if r.returncode != 0 or len(lines) != 2:
    yield emit("decode_speed", False, error=(r.stderr or r.stdout)[-600:])


# ---------------------------------------------------------------- input pipeline
def check_input(a) -> Iterator[dict]:
  """Tokens/s of the native (TF-free) input path for Set at the paper's shape, against
  the fastest train step measured at that shape in this run: the pipeline must keep up."""
  sys.path.insert(0, str(Path(__file__).resolve().parent))
  import input_pipeline  # benchmarks/input_pipeline.py
  from synthpre_jax.data import pipeline, task_modules

  task_modules.import_task_modules(["tasks"])
  task, batch, inp, tgt = ("set_tiny", 4, 68, 68) if a.tiny else ("set", 128, 512, 512)
  stream = pipeline.get_batches(
      task_name=task, feature_lengths={"inputs": inp, "targets": tgt}, split="train",
      global_batch_size=batch, seed=0, shuffle=True, process_index=0, process_count=1,
      input_pipeline="native")
  rec = input_pipeline.measure(stream, n=10 if a.tiny else 40, warmup=2)
  rec = {k: round(v, 3) for k, v in rec.items()}
  shape = TINY_SHAPES[0] if a.tiny else FULL_SHAPES[0]
  steps = [r for r in _records(a.results) if r.get("check") == "speed"
           and (r.get("model"), r.get("batch"), r.get("inp"), r.get("tgt")) == shape
           and r.get("tokens_per_s")]
  need = max((r["tokens_per_s"] for r in steps), default=None)
  yield emit("input", True, task=task, batch=batch, inp=inp, tgt=tgt, path="native", **rec,
             step_tokens_per_s=need, step_shape=list(shape),
             keeps_up=None if need is None or a.tiny else rec["tokens_per_s"] >= need)


def _records(path: Optional[str]) -> list[dict]:
  """The JSON lines written so far in this run (--results), unreadable lines skipped."""
  out = []
  if path and Path(path).is_file():
    for line in Path(path).read_text().splitlines():
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return out


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
