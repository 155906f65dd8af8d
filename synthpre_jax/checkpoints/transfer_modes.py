"""Transfer modes: which parameters of INITIAL_CHECKPOINT_PATH a run takes, by T5X name.

A mode is a string (TRANSFER_MODE, a study source's `transfer_mode`):
  all                     every tensor
  all_but_embeddings      every tensor but the model family's `embedding_names`
  attention_only          the attention sub-layers: pre-attention norm scales, query /
                          key / value / out kernels, and the relative-position bias tables
  mlp_only                the MLP sub-layers: pre-MLP norm scales and MLP kernels
  first_k_layers:K        every tensor of encoder and decoder layers 0..K-1
  regex:P1[,P2...]        every tensor whose name one of the regexes finds (re.search)
Whatever a mode does not take keeps its fresh initialisation (seed SEED); the partial
modes never take `embedding_names`, final norms or the logits layer (unless a regex
names them). Names are those of `synthpre_jax.init.param_groups` (see
docs/init_transforms.md, "Partial transfer").

`parse` checks a mode's syntax without a model (unknown mode, bad K, bad regex);
`select` applies it to a model's names and raises when it takes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Sequence

from synthpre_jax.init import param_groups

FIXED_MODES = ("all", "all_but_embeddings", "attention_only", "mlp_only")
FORMS = FIXED_MODES + ("first_k_layers:K", "regex:PATTERN[,PATTERN...]")
# Modes that never take a tensor of `embedding_names` (a vocabulary change is allowed).
EMBEDDING_FREE = ("all_but_embeddings", "attention_only", "mlp_only", "first_k_layers")

ATTENTION_ONLY = (param_groups.PRE_ATTENTION_NORM, param_groups.ATTENTION_KERNEL,
                  param_groups.RELPOS)
MLP_ONLY = (param_groups.PRE_MLP_NORM, param_groups.MLP_KERNEL)
_LAYER = re.compile(r"^(encoder|decoder)/layers_(\d+)/")


@dataclasses.dataclass(frozen=True)
class Mode:
  """A parsed transfer mode: `kind` (a fixed mode, 'first_k_layers' or 'regex'), `k`
  for first_k_layers, `patterns` for regex."""
  text: str
  kind: str
  k: int = 0
  patterns: tuple[str, ...] = ()

  @property
  def keeps_embeddings_fresh(self) -> bool:
    return self.kind in EMBEDDING_FREE


def _unknown(mode: str) -> ValueError:
  close = difflib.get_close_matches(str(mode), FIXED_MODES + ("first_k_layers", "regex"), n=1)
  hint = f" Did you mean {close[0]!r}?" if close else ""
  return ValueError(f"Unknown TRANSFER_MODE {mode!r}; choose one of {', '.join(FORMS)}."
                    f"{hint}")


def split_patterns(text: str) -> list[str]:
  """Splits 'P1,P2' at the commas outside (), [] and {} and not escaped (`\\,`), so a
  pattern may hold 'a{1,2}' or '[,]'."""
  parts, depth, current, i = [], 0, [], 0
  while i < len(text):
    c = text[i]
    if c == "\\" and i + 1 < len(text):
      current.append(text[i:i + 2] if text[i + 1] != "," else ",")
      i += 2
      continue
    if c in "([{":
      depth += 1
    elif c in ")]}":
      depth = max(depth - 1, 0)
    if c == "," and depth == 0:
      parts.append("".join(current))
      current = []
    else:
      current.append(c)
    i += 1
  parts.append("".join(current))
  return parts


def parse(mode: str) -> Mode:
  """The parsed `mode`; raises ValueError naming it for an unknown mode, a K that is not
  an integer >= 1, or an empty or invalid regex."""
  if not isinstance(mode, str):
    raise _unknown(mode)
  if mode in FIXED_MODES:
    return Mode(mode, mode)
  if mode.startswith("first_k_layers:"):
    k = mode.split(":", 1)[1].strip()
    if not re.fullmatch(r"\d+", k) or int(k) < 1:
      raise ValueError(f"TRANSFER_MODE {mode!r}: K must be an integer >= 1 (layers "
                       f"0..K-1 of both stacks are taken), got {k!r}.")
    return Mode(mode, "first_k_layers", k=int(k))
  if mode.startswith("regex:"):
    patterns = split_patterns(mode[len("regex:"):])
    for p in patterns:
      if not p:
        raise ValueError(f"TRANSFER_MODE {mode!r}: empty regex (write "
                         "'regex:PATTERN[,PATTERN...]').")
      try:
        re.compile(p)
      except re.error as e:
        raise ValueError(f"TRANSFER_MODE {mode!r}: regex {p!r} is invalid ({e}).") from e
    return Mode(mode, "regex", patterns=tuple(patterns))
  raise _unknown(mode)


def check(mode: str) -> None:
  """Raises ValueError if `mode` is not a valid transfer mode (see `parse`)."""
  parse(mode)


def _matching(patterns: Sequence[str], names: Sequence[str]) -> set[str]:
  compiled = [re.compile(p) for p in patterns]
  return {n for n in names if any(rx.search(n) for rx in compiled)}


def _depth(names: Sequence[str]) -> int:
  found = [int(m.group(2)) for m in map(_LAYER.match, names) if m]
  return max(found) + 1 if found else 0


def select(mode: str, names: Sequence[str],
           embedding_names: Sequence[str]) -> tuple[list[str], list[str]]:
  """(names taken from the checkpoint, names kept fresh), both sorted, for a model with
  parameter `names` whose family names `embedding_names`. Raises ValueError when the
  mode takes nothing of this model (e.g. 'attention_only' for a family without T5X
  attention names), when K exceeds the model's depth, or when a regex matches no name."""
  m = parse(mode)
  names = sorted(names)
  example = f"names look like {names[:3]}"
  if m.kind == "all":
    taken = set(names)
  elif m.kind == "all_but_embeddings":
    taken = set(names) - set(embedding_names)
  elif m.kind in ("attention_only", "mlp_only"):
    taken = _matching(ATTENTION_ONLY if m.kind == "attention_only" else MLP_ONLY,
                      names) - set(embedding_names)
  elif m.kind == "first_k_layers":
    depth = _depth(names)
    if depth and m.k > depth:
      raise ValueError(f"TRANSFER_MODE {mode!r}: K={m.k} exceeds the model's depth "
                       f"({depth} layers in its deepest stack).")
    taken = {n for n in names if (x := _LAYER.match(n)) and int(x.group(2)) < m.k}
    taken -= set(embedding_names)
  else:
    for p in m.patterns:
      if not _matching([p], names):
        raise ValueError(f"TRANSFER_MODE {mode!r}: regex {p!r} matches no parameter "
                         f"of the model ({example}).")
    taken = _matching(m.patterns, names)
  if not taken:
    raise ValueError(f"TRANSFER_MODE {mode!r} takes no parameter of this model: its "
                     f"T5X names do not exist in this model family ({len(names)} "
                     f"tensors, {example}). Use 'first_k_layers:K' or 'regex:...' "
                     "with the family's own names.")
  return sorted(taken), sorted(set(names) - taken)
