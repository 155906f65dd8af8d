"""benchmarks/accelerator_check.sh: the driver's budget and failure handling (fast), and
the whole check in its CPU-sized form (`--tiny`, slow; `.ci/run` runs it too)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "accelerator_check.sh"
sys.path.insert(0, str(REPO / "benchmarks"))
import accelerator_check  # noqa: E402  (benchmarks/accelerator_check.py)

# Checks that must pass on a CPU (peer and ratio pass as "skipped" without CUDA).
CPU_OK = {"packages", "env", "attention", "decode", "bf16_vs_f32", "real_run",
          "decode_speed", "speed", "input", "peer", "ratio", "summary"}


def _run(tmp_path, *args, env=None, timeout=1200):
  # One device, as on the GPU (conftest's 8 fake CPU devices are for sharding tests);
  # no carried wheels (the venv is left as it is).
  xla_flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                       if not f.startswith("--xla_force_host_platform_device_count"))
  full_env = dict(os.environ, ACC_OUT_DIR=str(tmp_path / "out"), PYTHON=sys.executable,
                  XLA_FLAGS=xla_flags, WHEELS_DIR=str(tmp_path / "no_wheels"),
                  **(env or {}))
  r = subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True,
                     text=True, env=full_env, timeout=timeout)
  lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
  assert all("check" in l and isinstance(l["ok"], bool) for l in lines), r.stdout
  return r, lines


def test_spent_budget_skips_with_ok_false_and_exit_1(tmp_path):
  r, lines = _run(tmp_path, "--tiny", env={"ONLY": "ratio", "BUDGET_S": "3"})
  assert [l["check"] for l in lines] == ["ratio", "summary"]
  assert lines[0]["ok"] is False and "budget" in lines[0]["error"]
  assert lines[1] == dict(lines[1], ok=False, failed=["ratio"])
  assert r.returncode == 1


def test_ratio_pairs_our_bf16_lines_with_the_peer(tmp_path, capsys):
  shape = dict(batch=4, inp=32, tgt=16)
  results = tmp_path / "r.jsonl"
  results.write_text("\n".join(json.dumps(r) for r in [
      dict(check="speed", ok=True, model="t5_1_0_tiny", dtype="bfloat16", dropout=0.0,
           tokens_per_s=3000, **shape),
      dict(check="speed", ok=True, model="t5_1_0_tiny", dtype="bfloat16", dropout=0.1,
           tokens_per_s=2000, **shape),
      dict(check="speed", ok=True, model="t5_1_0_tiny", dtype="float32", dropout=0.0,
           tokens_per_s=500, **shape),
      dict(check="peer", ok=True, size="small", tokens_per_s=1000, **shape)]) + "\n")
  out = accelerator_check.run("ratio", ["--tiny", "--results", str(results)])
  assert [(r["ours_dropout"], r["ratio"], r["like_for_like"]) for r in out] == [
      (0.0, 3.0, False), (0.1, 2.0, True)]
  assert capsys.readouterr().out.count("\n") == 2  # one JSON line each


def test_a_raising_piece_prints_ok_false_with_the_error(monkeypatch, capsys):
  def broken(_):
    raise RuntimeError("no device")
    yield  # pragma: no cover

  monkeypatch.setitem(accelerator_check.CHECKS, "env", broken)
  out = accelerator_check.run("env", [])
  assert out[0]["ok"] is False and "RuntimeError: no device" in out[0]["error"]
  assert json.loads(capsys.readouterr().out)["check"] == "env"


@pytest.mark.slow
def test_tiny_script_runs_every_check_on_cpu(tmp_path):
  r, lines = _run(tmp_path, "--tiny")
  by_check = {}
  for line in lines:
    by_check.setdefault(line["check"], []).append(line)
  assert set(by_check) >= CPU_OK, sorted(by_check)
  bad = [l for l in lines if l["check"] in CPU_OK and not l["ok"]]
  assert not bad, json.dumps(bad, indent=1)
  assert r.returncode == 0
  assert {l["dtype"] for l in by_check["decode"]} == {"float32", "bfloat16"}
  assert {(l["dtype"], l["dropout"]) for l in by_check["speed"]} == {
      ("bfloat16", 0.0), ("float32", 0.1)}
  assert {l["search"] for l in by_check["decode_speed"]} == {"greedy", "beam4"}
  real = by_check["real_run"][0]
  assert real["resumed_from_saved_step"] and real["loss"]["end"]["step"] == 20
  # The results file holds what stdout showed.
  saved = (tmp_path / "out" / "accelerator_check.jsonl").read_text().splitlines()
  assert len(saved) == len(lines) - 1  # all but the summary


def test_full_real_run_is_t5_small_set_300_steps_from_this_checkout(tmp_path):
  a = type("A", (), {"tiny": False})()
  cmd, path = accelerator_check._train_cmd(a, str(tmp_path / "run"))
  joined = " ".join(cmd)
  for part in ("gin/models/t5_1_0_small.gin", "gin/pretrain.gin",
               "MIXTURE_OR_TASK_NAME='set'", "TRAIN_STEPS=300", "CHECKPOINT_PERIOD=100",
               f"MODEL_DIR='{tmp_path / 'run'}'", "train.eval_split=None"):
    assert part in joined, part
  assert ("train.input_pipeline='native'" in joined) == (path == "native")


@pytest.mark.slow
def test_attention_compare_branch_runs_with_cudnn_stood_in_by_xla(monkeypatch):
  # No cuDNN on CPU: let 'cudnn' run the XLA kernel, so the comparison code is exercised
  # (and must find the two paths equal).
  import jax
  real = jax.nn.dot_product_attention

  def stand_in(*args, implementation=None, **kw):
    return real(*args, implementation=None if implementation == "cudnn" else implementation,
                **kw)

  monkeypatch.setattr(jax.nn, "dot_product_attention", stand_in)
  monkeypatch.setattr(accelerator_check, "cudnn_probe", lambda: (True, "stand-in"))
  out = accelerator_check.run("attention", ["--tiny"])
  assert out[0]["ok"] and out[0]["cudnn"] == "compared", out
  assert out[0]["cudnn_vs_xla_logits"] == 0.0 and out[0]["cudnn_vs_xla_grads_worst"] == 0.0
  # The worst parameter is named, and the relative-position bias gradients are given apart.
  assert "/" in out[0]["cudnn_vs_xla_grads_worst_param"]
  bias = out[0]["cudnn_vs_xla_relpos_bias_grads"]
  assert bias and all("relpos_bias" in name and err == 0.0 for name, err in bias.items())
