"""Formal languages as seq2seq tasks: k-Dyck, k-Shuffle-Dyck and the copy language ww.

Pure numpy: example `index` of (task, split, seed) is a pure function of those four
values and the `FormalConfig` (`seeding.example_rng`). Outputs are int32 arrays without
EOS; the ids are those of `FormalConfig.symbol_ids`. Framings (docs/tasks.md):

- dyck: inputs = a prefix of a well-formed k-Dyck string whose depth never exceeds
  max_depth and ends >= 1; targets = its shortest closing suffix (the open brackets'
  closers, innermost first). Prefix + targets is well formed.
- shuffle_dyck: the k types interleave, each balanced on its own (at most max_depth
  open per type). inputs = such a prefix with >= 1 bracket open; targets = its
  shortest closing suffix in canonical order: all closers of type 0, then type 1, ...
- ww: inputs = w + [sep], targets = w; w has min_len..max_len symbols, i.i.d. uniform.

Draws, in this order: the length L uniform in [min_len, max_len], then L uniforms
deciding open / close (dyck, shuffle_dyck), then L bracket-type draws (dyck: a type
in 0..k-1; shuffle_dyck: a uniform picking among the allowed types) or L symbols (ww).
A prefix step opens when opening is allowed and (closing is not, or its uniform is
< open_prob). Closing is not allowed at the last step if it would close every bracket.
"""
from __future__ import annotations

import bisect

import numpy as np

from tasks.synthetic.formal_config import LANGUAGE_KINDS, FormalConfig
from tasks.synthetic.seeding import example_rng


def check_config(cfg: FormalConfig, kinds: tuple[str, ...]) -> None:
  """TypeError unless `cfg` is a FormalConfig, ValueError unless its kind is in `kinds`."""
  if not isinstance(cfg, FormalConfig):
    raise TypeError(f"cfg must be a FormalConfig (tasks/synthetic/formal_config.py), got "
                    f"{type(cfg).__name__}")
  if cfg.kind not in kinds:
    raise ValueError(f"cfg.kind must be one of {kinds} here, not {cfg.kind!r}")


def _length(rng: np.random.Generator, cfg: FormalConfig) -> int:
  return int(rng.integers(cfg.min_len, cfg.max_len + 1))


def _dyck(rng: np.random.Generator, cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  length = _length(rng, cfg)
  opens = (rng.random(length) < cfg.open_prob).tolist()
  types = rng.integers(cfg.k, size=length).tolist()
  base = cfg.first_token
  out, stack = [], []
  for t in range(length):
    depth = len(stack)
    can_open = depth < cfg.max_depth
    can_close = depth > 0 and not (t == length - 1 and depth == 1)
    if can_open and (not can_close or opens[t]):
      out.append(base + 2 * types[t])
      stack.append(base + 2 * types[t] + 1)
    else:
      out.append(stack.pop())
  return np.asarray(out, np.int32), np.asarray(stack[::-1], np.int32)


def _shuffle_dyck(rng: np.random.Generator,
                  cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  length = _length(rng, cfg)
  opens = (rng.random(length) < cfg.open_prob).tolist()
  picks = rng.random(length).tolist()
  base, depth = cfg.first_token, cfg.max_depth
  counts = [0] * cfg.k
  openable, closable = list(range(cfg.k)), []  # sorted: count < depth, count > 0
  out, total = [], 0
  for t in range(length):
    can_close = not (t == length - 1 and total == 1) and closable
    if openable and (not can_close or opens[t]):
      i = openable[int(picks[t] * len(openable))]
      counts[i] += 1
      total += 1
      out.append(base + 2 * i)
      if counts[i] == 1:
        bisect.insort(closable, i)
      if counts[i] == depth:
        openable.remove(i)
    else:
      i = closable[int(picks[t] * len(closable))]
      counts[i] -= 1
      total -= 1
      out.append(base + 2 * i + 1)
      if counts[i] == 0:
        closable.remove(i)
      if counts[i] == depth - 1:
        bisect.insort(openable, i)
  closers = [base + 2 * i + 1 for i in range(cfg.k) for _ in range(counts[i])]
  return np.asarray(out, np.int32), np.asarray(closers, np.int32)


def _ww(rng: np.random.Generator, cfg: FormalConfig) -> tuple[np.ndarray, np.ndarray]:
  length = _length(rng, cfg)
  w = (cfg.first_token + rng.integers(cfg.num_symbols, size=length)).astype(np.int32)
  return np.concatenate([w, np.asarray([cfg.sep], np.int32)]), w


_GENERATORS = {"dyck": _dyck, "shuffle_dyck": _shuffle_dyck, "ww": _ww}


def generate_language(task: str, cfg: FormalConfig, split: str, seed: int,
                      index: int) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of (task, split, seed): int32 (inputs, targets) without EOS, of
  the language `cfg.kind` (dyck, shuffle_dyck or ww). `task` names the random stream.
  Raises TypeError / ValueError for another config or kind, or a negative seed/index."""
  check_config(cfg, LANGUAGE_KINDS)
  return _GENERATORS[cfg.kind](example_rng(task, split, seed, index), cfg)


def _max_closing(cfg: FormalConfig, most_open: int) -> int:
  """The longest closing suffix of a prefix of length min_len..max_len: the largest
  depth e <= most_open, e <= L, e = L (mod 2), e >= 1."""
  best = 0
  for length in range(cfg.min_len, cfg.max_len + 1):
    e = min(most_open, length)
    if (e - length) % 2:
      e -= 1
    best = max(best, e)
  return best


def language_max_lengths(task: str, cfg: FormalConfig) -> dict[str, int]:
  """Longest inputs / targets INCLUDING SeqIO's EOS; attained for 0 < open_prob < 1."""
  check_config(cfg, LANGUAGE_KINDS)
  if cfg.kind == "ww":
    return {"inputs": cfg.max_len + 2, "targets": cfg.max_len + 1}
  most_open = cfg.max_depth * (cfg.k if cfg.kind == "shuffle_dyck" else 1)
  return {"inputs": cfg.max_len + 1, "targets": _max_closing(cfg, most_open) + 1}


def describe_language(task: str, cfg: FormalConfig) -> str:
  """One line on the generator and its id layout."""
  check_config(cfg, LANGUAGE_KINDS)
  head = (f"generator formal_languages.generate_language({task!r}), vocab "
          f"{cfg.vocab_size}, ")
  if cfg.kind == "ww":
    return head + (f"copy language: inputs w <sep>, targets w, {cfg.num_symbols} symbols "
                   f"from id {cfg.first_token}, |w| {cfg.min_len}..{cfg.max_len}")
  what = "k-Dyck" if cfg.kind == "dyck" else "k-Shuffle-Dyck"
  order = "innermost first" if cfg.kind == "dyck" else "by type"
  return head + (f"{what} k={cfg.k}, max depth {cfg.max_depth}"
                 f"{' per type' if cfg.kind == 'shuffle_dyck' else ''}, brackets from id "
                 f"{cfg.first_token}, prefix {cfg.min_len}..{cfg.max_len} -> shortest "
                 f"closing suffix ({order}), open_prob {cfg.open_prob}")
