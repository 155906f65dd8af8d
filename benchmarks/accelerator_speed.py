"""The speed pieces of the accelerator check: the train step's speed matrix, the peer
(Hugging Face T5), their ratio, decoding speed and the native input path's speed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from accelerator_common import (FULL_SHAPES, FULL_VARIANTS, PEER_SIZE, REPO, TINY_SHAPES,
                                TINY_VARIANTS, emit)


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
