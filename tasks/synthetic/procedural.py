"""Procedural tasks: stack manipulation, elementary cellular automata, FST simulation.

Pure numpy: example `index` of (task, split, seed) is a pure function of those four
values and the `FormalConfig` (`seeding.example_rng`). Outputs are int32 arrays without
EOS; the ids are those of `FormalConfig.symbol_ids`. Framings (docs/tasks.md):

- stack: inputs = L operations (L in [min_len, max_len]): `push x` is the two ids
  [push, symbol + x], `pop` the id [pop]; a pop is drawn only on a non-empty stack
  (an empty stack always pushes; otherwise push with probability push_prob). targets =
  the final stack top first, or [empty] when it is empty. Draws: L, L uniforms, L values.
- eca: inputs = [rule + r] + the initial row (width cells, cell + 0/1, i.i.d. fair);
  targets = the row after `steps` updates of Wolfram rule r with periodic boundaries:
  new[i] = bit (4 * row[i-1] + 2 * row[i] + row[i+1]) of r. Draws: r (when cfg.rule is
  RANDOM_RULE: uniform over the rules whose `eca_gzip_ratio` lies in [gzip_min_ratio,
  gzip_max_ratio], all 256 by default), then the row.
- fst: a random complete deterministic Mealy transducer, start state 0: for every
  (state q, input a) a next state and one output symbol, uniform. inputs = its
  num_states * num_inputs transitions as quadruples [state + q, input + a, state + q',
  output + b] in a random order, then [sep], then the input string (L symbols, L in
  [min_len, max_len]); targets = the output string (L symbols). Draws: the next-state
  table, the output table (both num_states x num_inputs), the order, L, the string.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.synthetic.formal_config import (NUM_ECA_RULES, PROCEDURAL_KINDS, RANDOM_RULE,
                                           FormalConfig)
from tasks.synthetic.formal_languages import check_config
from tasks.synthetic.seeding import example_rng


def _stack(rng: np.random.Generator, cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
  pushes = (rng.random(length) < cfg.push_prob).tolist()
  values = (cfg.first_token + rng.integers(cfg.num_symbols, size=length)).tolist()
  out, stack = [], []
  for t in range(length):
    if not stack or pushes[t]:
      out += [cfg.push, values[t]]
      stack.append(values[t])
    else:
      out.append(cfg.pop)
      stack.pop()
  targets = stack[::-1] if stack else [cfg.empty]
  return np.asarray(out, np.int32), np.asarray(targets, np.int32)


def eca_step(row: np.ndarray, rule: int) -> np.ndarray:
  """One update of elementary cellular automaton `rule` (0..255) on a 0/1 row with
  periodic boundaries."""
  table = ((int(rule) >> np.arange(8)) & 1).astype(row.dtype)
  padded = np.concatenate([row[-1:], row, row[:1]])
  return table[4 * padded[:-2] + 2 * row + padded[2:]]


# The probe that rates a rule's complexity (our choice; NCA pre-pretraining filters
# rules by how well gzip compresses what they generate): a fixed random row of 128 cells
# (numpy's default_rng(0)), 128 updates, the 128 x 128 cells after the first row packed
# 8 to a byte (2,048 bytes), gzip level 9. ECA_PROBE_GZIP_BYTES is each rule's
# compressed size, measured once (zlib 1.2.13) and kept as data, so a task's rule set
# does not depend on the machine's zlib; tests/test_formal_languages.py recomputes it.
# Ratio = compressed / raw: about 0.02 for rules that die out, 1.01 for incompressible
# ones (rule 30), 0.87 for rule 110.
ECA_PROBE_CELLS = 128
ECA_PROBE_STEPS = 128
ECA_PROBE_RAW_BYTES = ECA_PROBE_CELLS * ECA_PROBE_STEPS // 8
ECA_PROBE_GZIP_BYTES = (
      35,   68,  270,  512,   51,   71,  402,  491,   50,  532,  366,  443,   53,  115,  525,  458,
     271,  490, 1508,   74,  414,  478, 1912,   95,  357,  719,  599,  597,  144,   72, 2071,  494,
      71,  101,  372,  628,   65,  185,  390,  582,   95, 1544,  408,  617,   76, 2071,  371,  475,
     385,  583,  107,   71,  399,  562, 1341,   81,  442,  492,  487,  625, 1507,  673,  764,  544,
      49,  706,  345,  838,   53,  122,  139,   71,   65,  849,  464, 2071,   53,   76,  129,  118,
     375,  500,  736,  580,  599,  439, 2071,  507,  462, 2071,  782,  189,  125,  119,  220,   71,
      99, 1304,  437,  532,   81, 2071, 1510,  702,  122, 1106, 2071, 1240,   85,  680, 1784,  555,
     422,  542,  477,  589,  388,  451,  826,  523, 2071, 1285, 1550,  101, 1545,  608, 1642,   71,
      69, 1642,  365,  530,   74,  233,  478, 2071,  105, 1925,  408,  373,  101,  131,  539,  529,
     384,  796, 1549, 1697,  500, 2071, 1106, 1870,  427, 1511,  443,  393,  138,  139,  485,  432,
     122, 1622,  403,  413,  144,  786,  575,  620,  184, 2071,  443,  409,  217,  466,  400,  361,
     422,  414,   95,  106,  647,  694, 1576, 1507,  484,  417,  404,  368,  407,  345,  366,  308,
     103, 1713,  413, 1506,   99,  128,  132,  139,   53,   75,  146,   75,   53,   54,   92,   54,
     425,  392,  463,  412,  615,  586,  469,  443,  152,   75,  102,   66,   91,   54,   73,   54,
     190, 2071,  473,  414,  226,  450,  401,  357,   76,   94,  122,   82,   54,   64,   92,   50,
     463,  443,  422,  392,  420,  386,  373,  326,  127,   82,   88,   71,   92,   50,   64,   36,
)


def eca_gzip_ratio(rule: int) -> float:
  """Rule `rule`'s gzip compression ratio on the fixed probe (see ECA_PROBE_CELLS)."""
  return ECA_PROBE_GZIP_BYTES[int(rule)] / ECA_PROBE_RAW_BYTES


@functools.lru_cache(maxsize=None)
def eca_rules(cfg: FormalConfig) -> np.ndarray:
  """The rules an ECA task draws from, ascending (read-only, computed once per config):
  cfg.rule alone when fixed, else those in its gzip band. ValueError when the band holds
  none."""
  if cfg.rule != RANDOM_RULE:
    rules = np.asarray([cfg.rule])
  elif not cfg.filters_rules:
    rules = np.arange(NUM_ECA_RULES)
  else:
    ratios = np.asarray(ECA_PROBE_GZIP_BYTES) / ECA_PROBE_RAW_BYTES
    top = np.inf if cfg.gzip_max_ratio is None else cfg.gzip_max_ratio
    rules = np.flatnonzero((ratios >= cfg.gzip_min_ratio) & (ratios <= top))
    if not len(rules):
      raise ValueError(f"No ECA rule has a gzip ratio in [{cfg.gzip_min_ratio}, "
                       f"{cfg.gzip_max_ratio}]; the rules' ratios run from "
                       f"{ratios.min():.3f} to {ratios.max():.3f} "
                       "(procedural.eca_gzip_ratio).")
  rules.setflags(write=False)
  return rules


def _eca(rng: np.random.Generator, cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  if cfg.rule == RANDOM_RULE:
    rules = eca_rules(cfg)  # all 256 by default: the same draw as integers(256)
    rule = int(rules[rng.integers(len(rules))])
  else:
    rule = cfg.rule
  row = rng.integers(2, size=cfg.width).astype(np.int32)
  ids = cfg.symbol_ids()
  inputs = np.concatenate([np.asarray([ids["rule"] + rule], np.int32), ids["cell"] + row])
  for _ in range(cfg.steps):
    row = eca_step(row, rule)
  return inputs.astype(np.int32), (ids["cell"] + row).astype(np.int32)


def _fst(rng: np.random.Generator, cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  shape = (cfg.num_states, cfg.num_inputs)
  nxt = rng.integers(cfg.num_states, size=shape)
  emit = rng.integers(cfg.num_outputs, size=shape)
  order = rng.permutation(cfg.num_states * cfg.num_inputs)
  length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
  string = rng.integers(cfg.num_inputs, size=length)
  ids = cfg.symbol_ids()
  q, a = np.divmod(order, cfg.num_inputs)
  table = np.stack([ids["state"] + q, ids["input"] + a, ids["state"] + nxt[q, a],
                    ids["output"] + emit[q, a]], axis=1).reshape(-1)
  out, state = [], 0
  for sym in string.tolist():
    out.append(ids["output"] + int(emit[state, sym]))
    state = int(nxt[state, sym])
  inputs = np.concatenate([table, [cfg.sep], ids["input"] + string])
  return inputs.astype(np.int32), np.asarray(out, np.int32)


_GENERATORS = {"stack": _stack, "eca": _eca, "fst": _fst}


def generate_procedural(task: str, cfg: FormalConfig, split: str, seed: int,
                        index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): int32 (inputs, targets) without EOS, of
  the procedural task `cfg.kind` (stack, eca or fst). `task` names the random stream.
  Raises TypeError / ValueError for another config or kind, or a negative seed/index."""
  check_config(cfg, PROCEDURAL_KINDS)
  return _GENERATORS[cfg.kind](example_rng(task, split, seed, index), cfg)


def procedural_max_lengths(task: str, cfg: FormalConfig) -> dict[str, int]:
  """Longest inputs / targets INCLUDING SeqIO's EOS (attained: stack for
  0 < push_prob, eca and fst always)."""
  check_config(cfg, PROCEDURAL_KINDS)
  if cfg.kind == "stack":
    return {"inputs": 2 * cfg.max_len + 1, "targets": cfg.max_len + 1}
  if cfg.kind == "eca":
    eca_rules(cfg)  # an empty gzip band fails at registration
    return {"inputs": cfg.width + 2, "targets": cfg.width + 1}
  table = 4 * cfg.num_states * cfg.num_inputs
  return {"inputs": table + 1 + cfg.max_len + 1, "targets": cfg.max_len + 1}


def describe_procedural(task: str, cfg: FormalConfig) -> str:
  """One line on the generator and its id layout."""
  check_config(cfg, PROCEDURAL_KINDS)
  head = (f"generator procedural.generate_procedural({task!r}), vocab "
          f"{cfg.vocab_size}, ")
  if cfg.kind == "stack":
    return head + (f"stack: {cfg.min_len}..{cfg.max_len} push x / pop operations -> "
                   f"final stack top first, {cfg.num_symbols} values from id "
                   f"{cfg.first_token}, push_prob {cfg.push_prob}")
  if cfg.kind == "eca":
    rule = "drawn per example" if cfg.rule == RANDOM_RULE else str(cfg.rule)
    if cfg.filters_rules:
      top = "inf)" if cfg.gzip_max_ratio is None else f"{cfg.gzip_max_ratio}]"
      rule += (f" among the {len(eca_rules(cfg))} with gzip ratio in "
               f"[{cfg.gzip_min_ratio}, {top}")
    return head + (f"elementary cellular automaton, rule {rule} (id {cfg.first_token + 2}"
                   f" + rule), width {cfg.width} periodic, {cfg.steps} steps, cells "
                   f"{cfg.first_token}/{cfg.first_token + 1}")
  return head + (f"random Mealy FST: {cfg.num_states} states, {cfg.num_inputs} inputs, "
                 f"{cfg.num_outputs} outputs as shuffled quadruples, <sep>, a string "
                 f"of {cfg.min_len}..{cfg.max_len} -> its output string")
