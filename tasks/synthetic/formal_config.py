"""Id layout and settings of the formal-language and procedural tasks (`FormalConfig`).

One frozen, validated dataclass per registered task: its kind (which generator), the
vocabulary, where its symbol ids start, its length range and the kind's settings. The
symbol ids of every kind start at `first_token` (see `FormalConfig.symbol_ids`); the
four special ids sit outside them at the top of the vocabulary, as the simple tasks'
specials do (TINY 511..508, PAPER 32099..32096). The framings are in docs/tasks.md.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from tasks.synthetic.config import EOS_ID, PAPER, TINY, SyntheticConfig

# Generator kinds: formal languages (tasks/synthetic/formal_languages.py) and procedural
# tasks (tasks/synthetic/procedural.py).
LANGUAGE_KINDS = ("dyck", "shuffle_dyck", "ww")
PROCEDURAL_KINDS = ("stack", "eca", "fst")
KINDS = LANGUAGE_KINDS + PROCEDURAL_KINDS
# Elementary cellular automata: the 256 Wolfram rules; rule = RANDOM_RULE draws one per
# example (the rule is always written in the inputs).
NUM_ECA_RULES = 256
RANDOM_RULE = -1


@dataclasses.dataclass(frozen=True)
class FormalConfig:
  """One formal-language or procedural task's ids and settings.

  kind: one of `KINDS`.
  vocab_size: the model vocabulary; first_token: the lowest symbol id (>= 2).
  sep, push, pop, empty: special ids (separator; stack push / pop; empty stack).
  min_len, max_len: the sampled length (prefix, word, operations or FST input string).
  k, max_depth, open_prob: bracket types, the most open brackets (Dyck: in total;
    shuffle-Dyck: per type) and the probability of opening when both moves are allowed.
  num_symbols: the alphabet of ww and of the stack's pushed values.
  push_prob: the probability of a push when the stack is not empty.
  width, steps, rule: ECA row width (periodic), steps applied, rule (RANDOM_RULE: drawn).
  gzip_min_ratio, gzip_max_ratio: ECA with a drawn rule only: draw among the rules whose
    gzip compression ratio (`procedural.eca_gzip_ratio`, a fixed probe rollout) lies in
    [min, max] (max None: no upper bound), the complexity filter of NCA pre-pretraining
    (defaults 0 and None: every rule).
  num_states, num_inputs, num_outputs: FST states, input and output alphabet sizes.
  """

  kind: str
  vocab_size: int
  first_token: int
  sep: int
  push: int
  pop: int
  empty: int
  min_len: int
  max_len: int
  k: int = 1
  max_depth: int = 2
  open_prob: float = 0.5
  num_symbols: int = 2
  push_prob: float = 0.6
  width: int = 1
  steps: int = 1
  rule: int = RANDOM_RULE
  num_states: int = 1
  num_inputs: int = 1
  num_outputs: int = 1
  gzip_min_ratio: float = 0.0
  gzip_max_ratio: Optional[float] = None

  def __post_init__(self):
    def fail(msg: str):
      raise ValueError(f"Invalid FormalConfig: {msg} (got {self})")

    if self.kind not in KINDS:
      fail(f"kind must be one of {KINDS}, not {self.kind!r}")
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if f.name == "kind":
        continue
      if f.name.endswith("_prob"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not 0.0 <= v <= 1.0:
          fail(f"{f.name} must be a float in [0, 1], not {v!r}")
      elif f.name.endswith("_ratio"):
        if (v is not None or f.name == "gzip_min_ratio") and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            or v < 0):
          fail(f"{f.name} must be a finite float >= 0 (gzip_max_ratio may be None: no "
               f"upper bound), not {v!r}")
      elif isinstance(v, bool) or not isinstance(v, int):
        fail(f"{f.name} must be an int, not {type(v).__name__} {v!r}")
    if self.first_token <= EOS_ID:
      fail(f"first_token must be >= 2 (pad 0 and EOS 1 are never emitted), "
           f"not {self.first_token}")
    if not 1 <= self.min_len <= self.max_len:
      fail(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
    for name, lowest in (("k", 1), ("max_depth", 2), ("num_symbols", 1), ("width", 1),
                         ("steps", 0), ("num_states", 1), ("num_inputs", 1),
                         ("num_outputs", 1)):
      if getattr(self, name) < lowest:
        fail(f"{name} must be >= {lowest}, not {getattr(self, name)}")
    if not RANDOM_RULE <= self.rule < NUM_ECA_RULES:
      fail(f"rule must be in 0..{NUM_ECA_RULES - 1} or RANDOM_RULE (-1), not {self.rule}")
    if self.filters_rules:
      if self.kind != "eca" or self.rule != RANDOM_RULE:
        fail("gzip_min_ratio / gzip_max_ratio filter the drawn rules of kind 'eca' with "
             "rule = RANDOM_RULE (-1); leave them at 0 and None otherwise")
      if self.gzip_max_ratio is not None and self.gzip_min_ratio > self.gzip_max_ratio:
        fail(f"need gzip_min_ratio <= gzip_max_ratio, got {self.gzip_min_ratio}, "
             f"{self.gzip_max_ratio}")
    specials = self.special_ids
    if len(set(specials.values())) != len(specials):
      fail(f"special ids must be distinct, got {specials}")
    top = self.first_token + self.num_symbol_ids - 1
    for name, sid in specials.items():
      if not top < sid < self.vocab_size:
        fail(f"{name} ({sid}) must lie above the symbol ids {self.first_token}..{top} "
             f"and below vocab_size ({self.vocab_size})")

  @property
  def filters_rules(self) -> bool:
    """Whether the gzip band restricts the drawn ECA rules."""
    return self.gzip_min_ratio > 0.0 or self.gzip_max_ratio is not None

  @property
  def special_ids(self) -> dict[str, int]:
    """The four special ids by field name."""
    return {"sep": self.sep, "push": self.push, "pop": self.pop, "empty": self.empty}

  @property
  def num_symbol_ids(self) -> int:
    """How many ids from `first_token` up the kind uses (see `symbol_ids`)."""
    return {
        "dyck": 2 * self.k, "shuffle_dyck": 2 * self.k, "ww": self.num_symbols,
        "stack": self.num_symbols, "eca": 2 + NUM_ECA_RULES,
        "fst": self.num_states + self.num_inputs + self.num_outputs,
    }[self.kind]

  def symbol_ids(self) -> dict[str, int]:
    """Where each group of symbol ids starts, from `first_token`:
    dyck / shuffle_dyck: bracket type i opens with open + 2i and closes with open + 2i + 1;
    ww / stack: symbol j is symbol + j;
    eca: cell value c is cell + c (c = 0, 1), rule r is rule + r;
    fst: state q is state + q, input symbol a is input + a, output symbol b is
    output + b."""
    f = self.first_token
    if self.kind in ("dyck", "shuffle_dyck"):
      return {"open": f}
    if self.kind in ("ww", "stack"):
      return {"symbol": f}
    if self.kind == "eca":
      return {"cell": f, "rule": f + 2}
    return {"state": f, "input": f + self.num_states,
            "output": f + self.num_states + self.num_inputs}


def formal_config(kind: str, layout: SyntheticConfig, **settings) -> FormalConfig:
  """A FormalConfig on a synthetic-task id layout: symbols from the layout's pool_low,
  specials = the layout's four special ids (sep = task divider, push = word divider,
  pop = arg divider, empty = empty target); `settings` set the other fields."""
  return FormalConfig(kind=kind, vocab_size=layout.vocab_size, first_token=layout.pool_low,
                      sep=layout.task_divider, push=layout.word_divider,
                      pop=layout.arg_divider, empty=layout.empty_target, **settings)


# The registered tasks: name -> {layout suffix: config}. Tiny lengths keep every part
# within 64 ids (EOS included); paper lengths within 220 (the simple tasks' bound).
# The settings are our choices (docs/tasks.md).
FORMAL_TASKS: dict[str, dict[str, FormalConfig]] = {
    "dyck": {
        "": formal_config("dyck", PAPER, min_len=10, max_len=219, k=16, max_depth=32),
        "_tiny": formal_config("dyck", TINY, min_len=8, max_len=63, k=4, max_depth=8)},
    "shuffle_dyck": {
        "": formal_config("shuffle_dyck", PAPER, min_len=10, max_len=219, k=16,
                          max_depth=16),
        "_tiny": formal_config("shuffle_dyck", TINY, min_len=8, max_len=63, k=4,
                               max_depth=8)},
    "ww": {
        "": formal_config("ww", PAPER, min_len=10, max_len=218, num_symbols=1024),
        "_tiny": formal_config("ww", TINY, min_len=4, max_len=62, num_symbols=64)},
    "stack": {
        "": formal_config("stack", PAPER, min_len=10, max_len=109, num_symbols=1024),
        "_tiny": formal_config("stack", TINY, min_len=4, max_len=31, num_symbols=64)},
    "eca": {
        "": formal_config("eca", PAPER, min_len=1, max_len=1, width=128, steps=8),
        "_tiny": formal_config("eca", TINY, min_len=1, max_len=1, width=32, steps=4)},
    # Only the rules whose rollouts gzip compresses least (38 of 256, e.g. 30, 45, 54,
    # 110, 150; `procedural.eca_gzip_ratio` >= 0.5): the complex / chaotic end.
    "eca_complex": {
        "": formal_config("eca", PAPER, min_len=1, max_len=1, width=128, steps=8,
                          gzip_min_ratio=0.5),
        "_tiny": formal_config("eca", TINY, min_len=1, max_len=1, width=32, steps=4,
                               gzip_min_ratio=0.5)},
    "eca_rule110": {
        "": formal_config("eca", PAPER, min_len=1, max_len=1, width=128, steps=8,
                          rule=110),
        "_tiny": formal_config("eca", TINY, min_len=1, max_len=1, width=32, steps=4,
                               rule=110)},
    "fst": {
        "": formal_config("fst", PAPER, min_len=10, max_len=90, num_states=8,
                          num_inputs=4, num_outputs=4),
        "_tiny": formal_config("fst", TINY, min_len=8, max_len=32, num_states=3,
                               num_inputs=2, num_outputs=2)},
}

# Length-curriculum stages (Jiang et al. 2026, "Procedural Pretraining"): the same task
# with its examples cut to about a quarter and a half of the full max_len, as
# `<task>_len<L>[_tiny]` (their own random streams). `synthpre_jax.training.curriculum`
# trains such stages in order and moves on when validation token accuracy reaches a
# threshold; the full task is the last stage (gin/procedural/length_curriculum.gin).
CURRICULUM_TASKS = ("dyck", "shuffle_dyck", "ww", "stack")


def curriculum_stage_lengths(cfg: FormalConfig) -> tuple[int, ...]:
  """The max_len of each shorter stage of `cfg` (quarter, half; at least min_len)."""
  return tuple(sorted({max(cfg.min_len, cfg.max_len // 4), max(cfg.min_len, cfg.max_len // 2)}))


def _curriculum_stages() -> dict[str, dict[str, FormalConfig]]:
  stages: dict[str, dict[str, FormalConfig]] = {}
  for task in CURRICULUM_TASKS:
    for suffix, cfg in FORMAL_TASKS[task].items():
      for length in curriculum_stage_lengths(cfg):
        stages.setdefault(f"{task}_len{length}", {})[suffix] = dataclasses.replace(
            cfg, max_len=length)
  return stages


FORMAL_TASKS.update(_curriculum_stages())
