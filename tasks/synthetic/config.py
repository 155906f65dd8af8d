"""Token-id layout of the synthetic tasks: vocabulary, token pool, special ids, lengths.

One frozen, validated dataclass so the paper's T5 ids (`PAPER`) and a tiny CPU-sized
layout (`TINY`) are interchangeable everywhere in the data layer.
"""
from __future__ import annotations

import dataclasses
import zlib

# Ids 0 (pad) and 1 (EOS) are reserved by the model and never sampled.
PAD_ID = 0
EOS_ID = 1

# Number of ids in every task's name prefix (see `SyntheticConfig.name_prefix`).
NAME_PREFIX_LEN = 2

# Longest sampled part accepted: a sanity bound far above every recipe's feature length
# (the kernels size their per-example scratch arrays by max_len).
MAX_LEN_LIMIT = 2047


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Vocabulary size, token pool [pool_low, pool_high], special ids and length range."""

  vocab_size: int
  pool_low: int
  pool_high: int
  task_divider: int
  word_divider: int
  arg_divider: int
  empty_target: int
  min_len: int = 10
  max_len: int = 220

  def __post_init__(self):
    def fail(msg: str):
      raise ValueError(f"Invalid SyntheticConfig: {msg} (got {self})")

    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if isinstance(v, bool) or not isinstance(v, int):
        fail(f"{f.name} must be an int, not {type(v).__name__} {v!r}")
    if self.vocab_size < 8:
      fail(f"vocab_size must be >= 8, not {self.vocab_size}")
    if self.pool_low <= EOS_ID:
      fail(f"pool_low must be >= 2 so that pad (0) and EOS (1) are never sampled, "
           f"not {self.pool_low}")
    if self.pool_high < self.pool_low:
      fail(f"pool_high ({self.pool_high}) must be >= pool_low ({self.pool_low})")
    if self.pool_high >= self.vocab_size:
      fail(f"pool_high ({self.pool_high}) must be < vocab_size ({self.vocab_size})")
    specials = self.special_ids
    for name, sid in specials.items():
      if not EOS_ID < sid < self.vocab_size:
        fail(f"{name} ({sid}) must lie in [2, vocab_size={self.vocab_size})")
      if self.pool_low <= sid <= self.pool_high:
        fail(f"{name} ({sid}) must lie outside the token pool "
             f"[{self.pool_low}, {self.pool_high}]")
    if len(set(specials.values())) != len(specials):
      fail(f"special ids must be distinct, got {specials}")
    if self.min_len < 1:
      fail(f"min_len must be >= 1, not {self.min_len}")
    if self.max_len < self.min_len:
      fail(f"max_len ({self.max_len}) must be >= min_len ({self.min_len})")
    if self.max_len > MAX_LEN_LIMIT:
      fail(f"max_len must be <= {MAX_LEN_LIMIT} (the longest sampled part the "
           f"generators accept), not {self.max_len}")

  @property
  def special_ids(self) -> dict[str, int]:
    """The four special ids by field name."""
    return {
        "task_divider": self.task_divider,
        "word_divider": self.word_divider,
        "arg_divider": self.arg_divider,
        "empty_target": self.empty_target,
    }

  @property
  def pool_size(self) -> int:
    """Number of ids in the token pool."""
    return self.pool_high - self.pool_low + 1

  def name_prefix(self, task: str) -> tuple[int, ...]:
    """The fixed ids standing for the task's name at the start of every input.

    Stand-in for the reference code's SentencePiece tokens of the name. Rule:
    `NAME_PREFIX_LEN` ids, the j-th being
    `pool_low + zlib.crc32(f"{task}/{j}".encode()) % pool_size` (j = 0, 1, ...), so the
    prefix is a pure function of (task name, pool) and lies inside the token pool.
    """
    return tuple(
        self.pool_low + zlib.crc32(f"{task}/{j}".encode("utf-8")) % self.pool_size
        for j in range(NAME_PREFIX_LEN))


# The paper's ids: T5 SentencePiece pieces 2..31999 as opaque symbols, T5 sentinels
# 32099..32096 as specials, T5's padded vocabulary of 32128.
PAPER = SyntheticConfig(
    vocab_size=32128, pool_low=2, pool_high=31999,
    task_divider=32099, word_divider=32098, arg_divider=32097, empty_target=32096,
    min_len=10, max_len=220)

# A CPU-sized layout for tests and the quickstart.
TINY = SyntheticConfig(
    vocab_size=512, pool_low=2, pool_high=499,
    task_divider=511, word_divider=510, arg_divider=509, empty_target=508,
    min_len=10, max_len=64)
