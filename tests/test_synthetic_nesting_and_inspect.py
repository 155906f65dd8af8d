"""Tests of the nesting-dependency language, T5 span corruption and `tasks.inspect`.

The nesting structure is checked with an independent stack reference, and span
corruption by reconstructing the original sequence from (inputs, targets) using only
the sentinel ids.
"""
import collections
import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from synthpre_jax.data import task_metadata

from tasks import inspect as inspect_cli
from tasks.synthetic import catalog, nesting, span_corruption
from tasks.synthetic.config import TINY
from tasks.synthetic.nesting import NESTING_PAPER, NESTING_TASK, NESTING_TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"paper": NESTING_PAPER, "tiny": NESTING_TINY}
N = {"paper": 300, "tiny": 600}


def _examples(cfg_name, n=None, split="train", seed=0):
  cfg = CONFIGS[cfg_name]
  return [(nesting.nesting_sequence(NESTING_TASK, cfg, split, seed, i),
           *nesting.generate_nesting(NESTING_TASK, cfg, split, seed, i))
          for i in range(n or N[cfg_name])]


def _check_well_nested(seq, cfg):
  """Stack reference: each tail closes the most recent open head of its own pair."""
  stack = []
  for tok in seq.tolist():
    assert cfg.first_token <= tok <= cfg.last_token, tok
    pair, tail = divmod(tok - cfg.first_token, 2)
    if not tail:
      stack.append(pair)
    else:
      assert stack and stack[-1] == pair, (seq, tok)
      stack.pop()
  assert not stack, seq


def _reconstruct(inputs, targets, cfg):
  """Replace each sentinel in inputs by the span after the same sentinel in targets."""
  is_sentinel = lambda t: t > cfg.last_token  # sentinels lie above every pair id
  spans, current = {}, None
  for tok in targets.tolist():
    if is_sentinel(tok):
      current = spans.setdefault(tok, [])
    else:
      current.append(tok)
  out = []
  for tok in inputs.tolist():
    out += spans[tok] if is_sentinel(tok) else [tok]
  return out


def _noise_counts_t5(length, density=0.15, mean=3.0):
  """T5's counts, float32 arithmetic with round-half-to-even (tf.round)."""
  noise = int(np.rint(np.float32(length) * np.float32(density)))
  noise = min(max(noise, 1), length - 1)
  return noise, max(int(np.rint(np.float32(noise) / np.float32(mean))), 1)


# ------------------------------------------------------------------ the language


@pytest.mark.parametrize("name", ["paper", "tiny"])
def test_sequences_well_nested_within_bounds(name):
  cfg = CONFIGS[name]
  lengths = set()
  for seq, _, _ in _examples(name):
    assert seq.dtype == np.int32 and len(seq) % 2 == 0
    assert cfg.min_len <= len(seq) <= cfg.max_len
    _check_well_nested(seq, cfg)
    lengths.add(len(seq))
  assert max(lengths) - min(lengths) > (cfg.max_len - cfg.min_len) // 2  # lengths vary


def test_open_probability_extremes():
  never = dataclasses.replace(NESTING_TINY, open_prob=0.0)
  always = dataclasses.replace(NESTING_TINY, open_prob=1.0)
  for i in range(20):
    s = nesting.nesting_sequence(NESTING_TASK, never, "train", 0, i)
    assert (s[1::2] == s[0::2] + 1).all()  # head tail head tail ...
    s = nesting.nesting_sequence(NESTING_TASK, always, "train", 0, i)
    half = len(s) // 2  # one tree: all heads, then their tails in reverse
    assert (s[half:] == s[:half][::-1] + 1).all()
    _check_well_nested(s, always)
  # 0.4: mostly shallow, but some nesting deeper than 2.
  depths = []
  for seq, _, _ in _examples("tiny", 200):
    d = 0
    for tok in seq.tolist():
      d += 1 if (tok - NESTING_TINY.first_token) % 2 == 0 else -1
      depths.append(d)
  assert 1.0 < np.mean(depths) < 2.5 and max(depths) >= 5


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_head_frequencies_are_zipf(exponent):
  cfg = dataclasses.replace(NESTING_TINY, zipf_exponent=exponent)
  counts = collections.Counter()
  for i in range(2000):
    seq = nesting.nesting_sequence(NESTING_TASK, cfg, "train", 0, i).tolist()
    counts.update(cfg.pair(t)[0] for t in seq if cfg.pair(t)[1])
  ratio = counts[0] / counts[9]  # rank 1 vs rank 10: expected 10 ** exponent
  assert 0.7 * 10 ** exponent < ratio < 1.4 * 10 ** exponent, (exponent, ratio)
  assert counts[0] > counts[1] > counts[4] > counts[20]
  # The sampler itself, on the paper's 15,999 pairs: log-log slope of ranks 1..50.
  pairs = nesting.zipf_pairs(np.random.default_rng(0), NESTING_PAPER, 300_000)
  freq = np.bincount(pairs, minlength=NESTING_PAPER.num_pairs)
  assert pairs.min() >= 0 and pairs.max() < NESTING_PAPER.num_pairs
  slope = np.polyfit(np.log(np.arange(1, 51)), np.log(freq[:50]), 1)[0]
  assert abs(slope + 1.0) < 0.06, slope


def test_deterministic_and_index_dependent():
  for cfg in CONFIGS.values():
    a = [nesting.generate_nesting(NESTING_TASK, cfg, "train", 3, i) for i in range(30)]
    b = [nesting.generate_nesting(NESTING_TASK, cfg, "train", 3, i) for i in range(30)]
    for (ai, at), (bi, bt) in zip(a, b):
      assert ai.dtype == at.dtype == np.int32
      np.testing.assert_array_equal(ai, bi)
      np.testing.assert_array_equal(at, bt)
    assert len({x.tobytes() for x, _ in a}) == len(a)
    for other in ([nesting.generate_nesting(NESTING_TASK, cfg, "validation", 3, i)
                   for i in range(30)],
                  [nesting.generate_nesting(NESTING_TASK, cfg, "train", 4, i)
                   for i in range(30)]):
      assert sum(np.array_equal(x[0], y[0]) for x, y in zip(a, other)) == 0


_SNIPPET = """
import json, sys
sys.modules["seqio"] = None  # as on a lean host: no registry, no TensorFlow
from tasks.synthetic import nesting
assert "tensorflow" not in sys.modules
print(json.dumps([[a.tolist() for a in nesting.generate_nesting(
    nesting.NESTING_TASK, cfg, "train", 7, i)]
    for cfg in (nesting.NESTING_PAPER, nesting.NESTING_TINY) for i in (0, 5, 10**9)]))
"""


def test_same_examples_in_subprocess_without_tensorflow():
  env = dict(os.environ, PYTHONHASHSEED="321", PYTHONPATH=REPO)
  out = subprocess.run([sys.executable, "-c", _SNIPPET], cwd=REPO, env=env,
                       capture_output=True, text=True, check=True, timeout=120).stdout
  here = [[a.tolist() for a in nesting.generate_nesting(NESTING_TASK, cfg, "train", 7, i)]
          for cfg in (NESTING_PAPER, NESTING_TINY) for i in (0, 5, 10**9)]
  assert json.loads(out.strip().splitlines()[-1]) == here


def test_bad_configs_rejected():
  for kw, match in [({"open_prob": 1.5}, "open_prob"), ({"zipf_exponent": -1.0}, "zipf"),
                    ({"num_pairs": 255}, "overlap"), ({"first_sentinel": 512}, "vocab"),
                    ({"min_len": 70}, "min_len"), ({"first_token": 1}, "first_token"),
                    ({"min_len": 3, "max_len": 3}, "even"), ({"num_pairs": True}, "int"),
                    ({"noise_density": 0.0}, "noise_density"),
                    ({"mean_noise_span_length": 0.5}, "mean_noise_span"),
                    ({"noise_density": 0.9, "min_len": 10}, "kept tokens")]:
    with pytest.raises(ValueError, match=match):
      dataclasses.replace(NESTING_TINY, **kw)
  with pytest.raises(TypeError, match="NestingConfig"):
    nesting.generate_nesting(NESTING_TASK, TINY, "train", 0, 0)
  assert NESTING_PAPER.pair(2) == (0, True)
  assert NESTING_PAPER.pair(31999) == (15998, False)


# ------------------------------------------------------------------ span corruption


@pytest.mark.parametrize("name", ["paper", "tiny"])
def test_span_corruption_round_trip_and_rates(name):
  cfg = CONFIGS[name]
  bounds = nesting.nesting_max_lengths(cfg)
  total_len = total_noise = total_spans = 0
  span_lengths = []
  for seq, inputs, targets in _examples(name):
    assert _reconstruct(inputs, targets, cfg) == seq.tolist()
    sent_in = [t for t in inputs.tolist() if t > cfg.last_token]
    sent_out = [t for t in targets.tolist() if t > cfg.last_token]
    k = len(sent_in)
    assert sent_in == sent_out == [cfg.first_sentinel - j for j in range(k)]
    assert targets[0] == cfg.first_sentinel and inputs[0] != cfg.first_sentinel
    assert inputs[-1] == cfg.first_sentinel - (k - 1)  # T5's mask ends with noise
    noise = len(targets) - k
    assert (noise, k) == _noise_counts_t5(len(seq))
    assert len(inputs) < bounds["inputs"] and len(targets) < bounds["targets"]
    total_len += len(seq)
    total_noise += noise
    total_spans += k
    bounds_of = np.flatnonzero(targets > cfg.last_token).tolist() + [len(targets)]
    span_lengths += np.diff(bounds_of).tolist()
  assert abs(total_noise / total_len - 0.15) < 0.01
  tol = 0.15 if name == "paper" else 0.35  # short sequences round the span count
  assert abs(total_noise / total_spans - 3.0) < tol
  assert abs(np.mean(span_lengths) - 1 - 3.0) < tol  # (sentinel + span) - 1
  # The bounds are reached at the longest sequence (lengths depend on L only).
  i, t = span_corruption.corrupted_lengths(cfg.max_len, 0.15, 3.0)
  assert {"inputs": i + 1, "targets": t + 1} == bounds


def test_noise_mask_segmentation():
  rng = np.random.default_rng(0)
  firsts = []
  for length in [1, 2, 3, 10, 30, 57, 100, 256]:
    noise, spans = _noise_counts_t5(max(length, 2))
    for _ in range(50):
      m = span_corruption.random_spans_noise_mask(rng, length)
      assert m.dtype == bool and len(m) == length
      if length == 1:
        assert not m.any()
        continue
      runs = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
      assert not m[0] and m[-1] and m.sum() == noise and len(runs) // 2 == spans
      if length == 100:
        firsts.append(runs[1] - runs[0])
  # Uniform random composition of 15 noise tokens into 5 spans: E[first span] = 3.
  assert abs(np.mean(firsts) - 3.0) < 0.6
  # float32 as in T5: 190 * 0.15 is 28.500002 in float32 (-> 29), 28.5 in float64 (-> 28).
  assert span_corruption.noise_counts(190, 0.15, 3.0) == (29, 10)
  assert span_corruption.noise_counts(30, 0.15, 3.0) == (4, 1)  # 4.5: half to even
  tokens = np.arange(10, 20)
  mask = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 1], bool)
  inputs, targets = span_corruption.span_corrupt(tokens, mask, 99)
  assert inputs.tolist() == [10, 11, 99, 14, 98, 16, 17, 97]
  assert targets.tolist() == [99, 12, 13, 98, 15, 97, 18, 19]


# ------------------------------------------------------------------ registry


def test_registered_tasks_and_catalog_match_registry():
  import seqio
  from tasks import registry
  assert task_metadata.max_lengths("nesting_language") == {"inputs": 232, "targets": 52}
  assert task_metadata.max_lengths("nesting_language_tiny") == {"inputs": 58,
                                                                "targets": 14}
  task = seqio.TaskRegistry.get("nesting_language_tiny")
  assert task.output_features["inputs"].vocabulary.vocab_size == 512
  ds = task.get_dataset(sequence_length=None, split="validation", shuffle=False)
  for i, ex in enumerate(ds.take(3).as_numpy_iterator()):
    inputs, targets = nesting.generate_nesting(NESTING_TASK, NESTING_TINY, "validation",
                                               registry.DATA_SEED, i)
    assert ex["inputs"].tolist() == inputs.tolist() + [1]
    assert ex["targets"].tolist() == targets.tolist() + [1]
  # The TF-free catalog that `tasks.inspect` uses lists what the registry registers.
  assert catalog.SIMPLE_CONFIGS == registry.CONFIGS
  assert catalog.LIME_CONFIGS == registry.LIME_CONFIGS
  assert inspect_cli.DEFAULT_SEED == registry.DATA_SEED
  for name, spec in catalog.synthetic_tasks().items():
    assert task_metadata.max_lengths(name) == spec.max_lengths(), name
    assert name in seqio.TaskRegistry.names()


# ------------------------------------------------------------------ tasks.inspect


@pytest.fixture(scope="module")
def cli_outputs():
  """`python -m tasks.inspect` (real: with the registry and TF), two runs in parallel."""
  cmds = {"examples": ["set_tiny", "--num", "3"],
          "stats": ["set_tiny", "--stats", "--num", "300"]}
  procs = {k: subprocess.Popen([sys.executable, "-m", "tasks.inspect", *args], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for k, args in cmds.items()}
  out = {}
  for k, p in procs.items():
    stdout, stderr = p.communicate(timeout=180)
    assert p.returncode == 0, stderr
    out[k] = stdout
  return out


def test_inspect_examples(cli_outputs):
  out = cli_outputs["examples"]
  assert re.findall(r"^example (\d+)$", out, re.M) == ["0", "1", "2"]
  assert len(re.findall(r"^  inputs  \(\d+\): \[", out, re.M)) == 3
  assert len(re.findall(r"^  targets \(\d+\): \[", out, re.M)) == 3
  assert out.count("<task_div>") >= 3
  from tasks.synthetic import generators
  inputs, targets = generators.generate("set", TINY, "train", 0, 1)
  assert f"  targets ({len(targets)}): {targets.tolist()}" in out


def test_inspect_stats(cli_outputs):
  out = cli_outputs["stats"]
  assert "max lengths (EOS included; task_metadata): inputs 68, " \
         "targets 65" in out
  assert re.search(r"^inputs length \(EOS excluded\): min \d+, mean [\d.]+, max \d+", out,
                   re.M)
  assert re.search(r"^targets length", out, re.M)
  bars = re.findall(r"^ +\d+(?:-\d+)? +\|#*\s*\| (\d+)$", out, re.M)
  assert 2 < len(bars) <= 20 and sum(map(int, bars)) == 600  # <= 10 bins x 2 features
  assert re.search(r"^duplicate inputs: \d+\.\d\d% \(\d+ of 300 ", out, re.M)


def test_inspect_in_process_all_families(capsys):
  assert inspect_cli.main(["all", "--stats", "--num", "20", "--config", "tiny"]) == 0
  out = capsys.readouterr().out
  tiny = [n for n in catalog.synthetic_tasks() if n.endswith("_tiny")]
  assert re.findall(r"^== (\S+): ", out, re.M) == tiny
  assert "nesting_language_tiny" in tiny and "lime_induct_tiny" in tiny
  assert inspect_cli.main(["nesting_language", "--num", "2", "--start", "5",
                           "--split", "validation", "--config", "tiny"]) == 0
  out = capsys.readouterr().out
  assert "== nesting_language_tiny: 2 example(s) of split 'validation'" in out
  assert "<extra_id_0>" in out and "indices 5..6" in out
  assert inspect_cli.main(["lime_abduct_tiny", "--num", "1"]) == 0
  assert "<sep>" in capsys.readouterr().out
  assert inspect_cli.main(["set_tiny", "--config", "paper"]) == 2
  assert "conflicts" in capsys.readouterr().err
  assert inspect_cli.histogram([4, 4, 4]) == [
      "    4 |" + "#" * inspect_cli.BAR_WIDTH + "| 3"]


def test_inspect_unknown_task_exits_2():
  # Runs the CLI module without seqio (fast; the lean-host path).
  code = ("import runpy, sys; sys.modules['seqio'] = None; "
          "sys.argv = ['tasks.inspect', 'sett', '--num', '1']; "
          "runpy.run_module('tasks.inspect', run_name='__main__')")
  res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
  assert res.returncode == 2 and res.stdout == ""
  names = res.stderr.split("(closest first): ")[1].strip().split(", ")
  assert names[:2] == ["set", "set_tiny"]
  assert set(names) == set(catalog.synthetic_tasks())
