"""The nesting-dependency artificial language (Ri & Tsuruoka 2022), T5 span-corrupted.

Pure numpy: example `index` of (task, split, seed) is a pure function of those four
values and the `NestingConfig`. The choices the task's description leaves open are
listed in docs/tasks.md.

Tokens come in pairs (head, tail). Pair k (k = 0 .. num_pairs-1) is
head = first_token + 2k, tail = first_token + 2k + 1, so the pairs tile the token pool
from its low end (PAPER: pool 2..31999 -> 15,999 pairs, heads 2, 4, ..., 31998, tails
3, 5, ..., 31999; the spec's 32,000-token vocabulary would be 16,000 pairs, one more
than T5's pool of 31,998 ids holds). An id is a head iff (id - first_token) is even.

One example (all draws from `seeding.example_rng(task, split, seed, index)`, in
exactly this order):

1. Length: L uniform over the EVEN lengths in [min_len, max_len] (a balanced sequence
   has even length).
2. Decisions: L uniforms u_t; heads: L/2 pair indices drawn i.i.d. from a Zipf law
   over the pairs, P(pair k) proportional to (k + 1) ** -zipf_exponent (pair 0 is rank
   1, the most frequent; the rank order is the id order, no permutation). A tail is
   fixed by its head, so tails follow the same law.
3. Sequence: for t = 0 .. L-1 with a stack of open pairs (depth d): if d == 0, open;
   elif d == L - t (every remaining token is needed to close), close; else open iff
   u_t < open_prob. Open = emit the next drawn head and push its tail; close = pop and
   emit the most recent open tail. The result is a well-nested (Dyck) sequence of
   exactly L tokens with L/2 pairs: a run of complete trees, the last one closed early
   if needed to fit L.
4. Span corruption (tasks/synthetic/span_corruption.py), continuing the same random
   generator: T5's random-spans mask (noise density 0.15, mean noise span length 3) and
   format, sentinels counting down from `first_sentinel` (extra_id_0).

Defaults and why:
- open_prob 0.4: below 1/2 the depth is a random walk drifting back to 0, so sequences
  hold many shallow trees with occasional deeper nesting instead of one depth ~sqrt(L)
  tree. Ri & Tsuruoka's exact open probability is not known to us; 0.4 is our choice.
- zipf_exponent 1.0: the classic Zipf law of natural-language token frequencies; the
  paper's exponent is not known to us.
- Lengths: L in [10, 256] for `NESTING_PAPER` (the spec's "up to 256 tokens"; the lower
  bound 10 matches the other synthetic tasks; the paper's length distribution is not
  known to us). Set min_len = max_len for full-length sequences like T5's packed chunks.
- Noise density 0.15 and mean span 3: the spec (T5's defaults).
- Sentinels: `NESTING_PAPER` counts down from 32099 (T5's extra_id_0), at most 13 per
  example (L = 256: 38 noise tokens in 13 spans). `NESTING_TINY` (vocab 512, pool 2..499
  -> 249 pairs, L in [10, 64]) counts down from 511, the top of its vocabulary: at most
  3 sentinels (511, 510, 509). The rule, in `nesting_config`: the first sentinel is the
  layout's highest special id (its task divider, PAPER 32099, TINY 511).

Outputs are int32 arrays WITHOUT EOS; `nesting_max_lengths` includes SeqIO's EOS:
NESTING_PAPER 232 / 52, NESTING_TINY 58 / 14 (inputs / targets).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from tasks.synthetic import span_corruption
from tasks.synthetic.config import EOS_ID, PAPER, TINY, SyntheticConfig
from tasks.synthetic.seeding import example_rng

# The generator key (random stream) of the registered nesting tasks.
NESTING_TASK = "nesting_language"


@dataclasses.dataclass(frozen=True)
class NestingConfig:
  """Token layout, sampling parameters and span-corruption parameters of the language.

  vocab_size: the model vocabulary (SeqIO PassThroughVocabulary size).
  first_token, num_pairs: pair k is (first_token + 2k, first_token + 2k + 1).
  first_sentinel: span-corruption sentinel j is first_sentinel - j.
  min_len, max_len: the uncorrupted length L is uniform over the even values in range.
  open_prob: probability of opening a dependency when both moves are possible.
  zipf_exponent: P(pair k) proportional to (k + 1) ** -zipf_exponent (0 = uniform).
  noise_density, mean_noise_span_length: T5 span corruption.
  """

  vocab_size: int
  first_token: int
  num_pairs: int
  first_sentinel: int
  min_len: int
  max_len: int
  open_prob: float = 0.4
  zipf_exponent: float = 1.0
  noise_density: float = 0.15
  mean_noise_span_length: float = 3.0

  def __post_init__(self):
    def fail(msg: str):
      raise ValueError(f"Invalid NestingConfig: {msg} (got {self})")

    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      want = float if f.type in ("float", float) else int
      if isinstance(v, bool) or not isinstance(v, (int, float) if want is float else int):
        fail(f"{f.name} must be {want.__name__}, not {type(v).__name__} {v!r}")
      if want is float and not math.isfinite(v):
        fail(f"{f.name} must be finite, not {v!r}")
    if not 0.0 <= self.open_prob <= 1.0:
      fail(f"open_prob must be in [0, 1], not {self.open_prob}")
    if self.zipf_exponent < 0:
      fail(f"zipf_exponent must be >= 0, not {self.zipf_exponent}")
    if self.num_pairs < 1:
      fail(f"num_pairs must be >= 1, not {self.num_pairs}")
    if self.first_token <= EOS_ID:
      fail(f"first_token must be >= 2 so that pad (0) and EOS (1) are never emitted, "
           f"not {self.first_token}")
    if not 0 < self.min_len <= self.max_len:
      fail(f"need 0 < min_len <= max_len, got {self.min_len}, {self.max_len}")
    if not self.lengths:
      fail(f"[min_len, max_len] = [{self.min_len}, {self.max_len}] holds no even length")
    try:
      span_corruption.check_params(self.noise_density, self.mean_noise_span_length)
    except ValueError as e:
      fail(str(e))
    for length in self.lengths:
      noise, spans = span_corruption.noise_counts(
          length, self.noise_density, self.mean_noise_span_length)
      if spans > length - noise:
        fail(f"length {length} leaves {length - noise} kept tokens for {spans} noise "
             f"spans: lower noise_density or raise min_len")
    if not self.first_sentinel < self.vocab_size:
      fail(f"first_sentinel ({self.first_sentinel}) must be < vocab_size "
           f"({self.vocab_size})")
    lowest_sentinel = self.first_sentinel - self.max_num_spans + 1
    if lowest_sentinel <= self.last_token:
      fail(f"the {self.max_num_spans} sentinels {self.first_sentinel}..{lowest_sentinel} "
           f"overlap the pair ids {self.first_token}..{self.last_token}: lower "
           f"num_pairs or raise first_sentinel")

  @property
  def last_token(self) -> int:
    """The highest pair id (tail of the last pair)."""
    return self.first_token + 2 * self.num_pairs - 1

  @property
  def lengths(self) -> tuple[int, ...]:
    """The possible uncorrupted lengths: the even values in [min_len, max_len]."""
    return tuple(range(self.min_len + self.min_len % 2, self.max_len + 1, 2))

  @property
  def max_num_spans(self) -> int:
    """The most noise spans (= sentinels) an example can have."""
    return max(span_corruption.noise_counts(
        n, self.noise_density, self.mean_noise_span_length)[1] for n in self.lengths)

  @property
  def sentinel_ids(self) -> tuple[int, ...]:
    """Sentinel j = first_sentinel - j for every span an example can have."""
    return tuple(self.first_sentinel - j for j in range(self.max_num_spans))

  def pair(self, token: int) -> tuple[int, bool]:
    """(pair index, is_head) of a pair id."""
    if not self.first_token <= token <= self.last_token:
      raise ValueError(f"{token} is not a pair id of {self}")
    k, tail = divmod(token - self.first_token, 2)
    return k, not tail


def nesting_config(layout: SyntheticConfig, **overrides) -> NestingConfig:
  """A NestingConfig on a synthetic-task id layout: pairs tile the layout's token pool
  from pool_low (num_pairs = pool_size // 2), sentinels count down from the layout's
  highest special id (PAPER: 32099 = T5's extra_id_0), lengths from the layout's
  [min_len, max_len]; `overrides` replace any field."""
  fields = dict(vocab_size=layout.vocab_size, first_token=layout.pool_low,
                num_pairs=layout.pool_size // 2,
                first_sentinel=max(layout.special_ids.values()),
                min_len=layout.min_len, max_len=layout.max_len)
  fields.update(overrides)
  return NestingConfig(**fields)


# T5 ids (vocab 32128, 15,999 pairs on ids 2..31999, sentinels 32099, 32098, ...),
# sequences of 10..256 tokens.
NESTING_PAPER = nesting_config(PAPER, max_len=256)
# A CPU-sized layout: vocab 512, 249 pairs on ids 2..499, sentinels 511, 510, 509,
# sequences of 10..64 tokens.
NESTING_TINY = nesting_config(TINY)
# (suffix of the registered task name, config): nesting_language, nesting_language_tiny.
NESTING_CONFIGS: dict[str, NestingConfig] = {"": NESTING_PAPER, "_tiny": NESTING_TINY}


# ------------------------------------------------------------------ sampling


@functools.lru_cache(maxsize=16)
def _zipf_cdf(num_pairs: int, exponent: float) -> np.ndarray:
  weights = np.arange(1, num_pairs + 1, dtype=np.float64) ** -exponent
  cdf = np.cumsum(weights / weights.sum())
  cdf[-1] = 1.0
  return cdf


def zipf_pairs(rng: np.random.Generator, cfg: NestingConfig, n: int) -> np.ndarray:
  """n i.i.d. pair indices, P(k) proportional to (k + 1) ** -cfg.zipf_exponent."""
  cdf = _zipf_cdf(cfg.num_pairs, float(cfg.zipf_exponent))
  return np.searchsorted(cdf, rng.random(n), side="right")


def _check(cfg: NestingConfig) -> None:
  if not isinstance(cfg, NestingConfig):
    raise TypeError(f"cfg must be a NestingConfig (e.g. nesting.NESTING_TINY), got "
                    f"{type(cfg).__name__}")


def _sample_sequence(rng: np.random.Generator, cfg: NestingConfig) -> np.ndarray:
  """Steps 1-3 of the module docstring: a well-nested sequence of even length."""
  lengths = cfg.lengths
  length = lengths[int(rng.integers(len(lengths)))]
  opens = (rng.random(length) < cfg.open_prob).tolist()
  heads = (cfg.first_token + 2 * zipf_pairs(rng, cfg, length // 2)).tolist()
  out, stack, h = [], [], 0
  for t in range(length):
    depth = len(stack)
    if depth == 0 or (depth < length - t and opens[t]):
      out.append(heads[h])
      stack.append(heads[h] + 1)
      h += 1
    else:
      out.append(stack.pop())
  return np.asarray(out, np.int32)


def nesting_sequence(task: str, cfg: NestingConfig, split: str, seed: int,
                     index: int) -> np.ndarray:
  """The uncorrupted sequence of example `index` (the one `generate_nesting` corrupts)."""
  _check(cfg)
  return _sample_sequence(example_rng(task, split, seed, index), cfg)


def generate_nesting(task: str, cfg: NestingConfig, split: str, seed: int,
                     index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): span-corrupted int32 (inputs, targets),
  without EOS. `task` only names the random stream (registered: NESTING_TASK)."""
  _check(cfg)
  rng = example_rng(task, split, seed, index)
  seq = _sample_sequence(rng, cfg)
  mask = span_corruption.random_spans_noise_mask(
      rng, len(seq), cfg.noise_density, cfg.mean_noise_span_length)
  return span_corruption.span_corrupt(seq, mask, cfg.first_sentinel)


def nesting_max_lengths(cfg: NestingConfig) -> dict[str, int]:
  """Longest possible `inputs` / `targets` INCLUDING SeqIO's EOS (reachable bounds:
  the corrupted lengths depend only on the sequence length)."""
  _check(cfg)
  lens = [span_corruption.corrupted_lengths(n, cfg.noise_density,
                                            cfg.mean_noise_span_length)
          for n in cfg.lengths]
  return {"inputs": max(i for i, _ in lens) + 1, "targets": max(t for _, t in lens) + 1}
