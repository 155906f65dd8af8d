"""Groupings of parameters by T5X name, for initialization from parameter statistics.

A grouping maps the model's parameter names to groups: `{label: [names]}`. Moment
matching pools every element of a group's pre-trained tensors into one mean and SD and
re-draws all the group's tensors from them; tensors in no group keep their default init.
The token embedding (`token_embedder/embedding`) is never in a group.

Groupings match names, not positions, so they work for every depth (6 layers or 24),
for T5 v1.0 (`mlp/wi`) and v1.1 (`mlp/wi_0`, `mlp/wi_1`, `decoder/logits_dense`).

Built in (`GROUPINGS`):
  per_param            each tensor alone
  whole_model          all attention+MLP kernels; all norm scales; both relpos tables
  across_layers        all query / key / value / attention-out kernels (4 groups); all
                       MLP kernels; all pre-MLP norms; all pre-attention norms; the two
                       final norms; the two relpos tables
  per_layer            per stack and layer: its kernels; its norm scales
  pre_attention_norms  only the pre-attention norm scales, each alone (encoder
                       pre_attention_layer_norm, decoder pre_self_attention_layer_norm
                       and pre_cross_attention_layer_norm: 18 in T5 small)
  pre_mlp_norms        only the pre-MLP norm scales, each alone
  attention_kernels    only the attention query/key/value/out kernels, each alone
  mlp_kernels          only the MLP kernels (wi, wi_0, wi_1, wo), each alone
In the pooled groupings (whole_model, across_layers, per_layer) every tensor that no
pattern names (e.g. v1.1's `decoder/logits_dense/kernel`, or per_layer's final norms
and relpos tables) is a group of its own, so they re-draw the whole model but the
embedding.

Adding a grouping (a function `names -> {label: [names]}`, or `pooled` / `each_alone`
over regexes, registered in `GROUPINGS`): docs/init_transforms.md. Every pattern must
match at least one tensor, and a grouping that matches nothing is an error.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Mapping, Sequence, Union

EMBEDDING = "token_embedder/embedding"

Groups = dict[str, list[str]]
Grouping = Callable[[Sequence[str]], Groups]

# T5X parameter names (see synthpre_jax/models/network.py).
NORM_SCALE = r"norm/scale$"
PRE_ATTENTION_NORM = (r"^encoder/layers_\d+/pre_attention_layer_norm/scale$|"
                      r"^decoder/layers_\d+/pre_(self|cross)_attention_layer_norm/scale$")
PRE_MLP_NORM = r"/layers_\d+/pre_mlp_layer_norm/scale$"
FINAL_NORM = r"^(encoder/encoder_norm|decoder/decoder_norm)/scale$"
_ATTENTION = r"/layers_\d+/(attention|self_attention|encoder_decoder_attention)/"
ATTENTION_KERNEL = _ATTENTION + r"(query|key|value|out)/kernel$"
MLP_KERNEL = r"/layers_\d+/mlp/(wi|wi_\d+|wo)/kernel$"
RELPOS = r"/relpos_bias/rel_embedding$"


def is_norm_scale(name: str) -> bool:
  """True for RMS-norm scales (layer norms and the final norms)."""
  return re.search(NORM_SCALE, name) is not None


def pooled(patterns: Sequence[tuple[str, str]], *, others_alone: bool) -> Grouping:
  """A grouping from `(label, regex)` pairs: every name the regex finds joins the group
  `match.expand(label)` (the first pair that matches wins). `others_alone`: every name
  no pattern matches becomes a group of its own; otherwise it is left out (kept at its
  default init)."""
  compiled = [(label, re.compile(rx)) for label, rx in patterns]

  def grouping(names: Sequence[str]) -> Groups:
    groups: Groups = {}
    used = [False] * len(compiled)
    for name in sorted(names):
      for i, (label, rx) in enumerate(compiled):
        m = rx.search(name)
        if m:
          used[i] = True
          groups.setdefault(m.expand(label), []).append(name)
          break
      else:
        if others_alone:
          groups[name] = [name]
    unused = [rx.pattern for (_, rx), u in zip(compiled, used) if not u]
    if unused:
      raise ValueError(f"Grouping pattern {unused[0]!r} matches no parameter of the model "
                       f"(names look like {sorted(names)[:2]}).")
    return groups

  return grouping


def each_alone(pattern: str) -> Grouping:
  """A partial grouping: every name `pattern` finds is a group of its own; the rest
  keep their default init."""
  rx = re.compile(pattern)
  return lambda names: {n: [n] for n in sorted(names) if rx.search(n)}


_MLP_ANY = r"/mlp/(wi|wi_\d+|wo)/kernel$"

GROUPINGS: dict[str, Grouping] = {
    "per_param": pooled([], others_alone=True),
    "whole_model": pooled([
        ("kernels", ATTENTION_KERNEL + "|" + MLP_KERNEL),
        ("norm_scales", NORM_SCALE),
        ("relpos_tables", RELPOS),
    ], others_alone=True),
    "across_layers": pooled([
        ("query_kernels", _ATTENTION + r"query/kernel$"),
        ("key_kernels", _ATTENTION + r"key/kernel$"),
        ("value_kernels", _ATTENTION + r"value/kernel$"),
        ("attention_out_kernels", _ATTENTION + r"out/kernel$"),
        ("mlp_kernels", MLP_KERNEL),
        ("pre_mlp_norms", PRE_MLP_NORM),
        ("pre_attention_norms", PRE_ATTENTION_NORM),
        ("final_norms", FINAL_NORM),
        ("relpos_tables", RELPOS),
    ], others_alone=True),
    "per_layer": pooled([
        (r"\1/layers_\2/kernels", r"^(encoder|decoder)/layers_(\d+)/.*/kernel$"),
        (r"\1/layers_\2/norm_scales", r"^(encoder|decoder)/layers_(\d+)/.*norm/scale$"),
    ], others_alone=True),
    "pre_attention_norms": each_alone(PRE_ATTENTION_NORM),
    "pre_mlp_norms": each_alone(PRE_MLP_NORM),
    "attention_kernels": each_alone(ATTENTION_KERNEL),
    "mlp_kernels": each_alone(MLP_KERNEL),
}


def check_grouping_name(grouping: Union[str, Grouping]) -> None:
  """Raises ValueError for an unknown grouping name, listing the known ones."""
  if isinstance(grouping, str) and grouping not in GROUPINGS:
    close = difflib.get_close_matches(grouping, GROUPINGS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown GROUPING {grouping!r}; known groupings: "
                     f"{', '.join(GROUPINGS)}.{hint} To add one, see "
                     "synthpre_jax/init/param_groups.py.")


def make_groups(grouping: Union[str, Grouping], names: Sequence[str]) -> Groups:
  """Applies a grouping (a name in GROUPINGS or a function) to the model's parameter
  names and checks the result: the embedding is never grouped, every name is real and
  in at most one group, and at least one tensor is matched."""
  check_grouping_name(grouping)
  fn: Grouping = GROUPINGS[grouping] if isinstance(grouping, str) else grouping
  label = grouping if isinstance(grouping, str) else getattr(grouping, "__name__", "grouping")
  candidates = sorted(n for n in names if n != EMBEDDING)
  groups = {k: sorted(v) for k, v in fn(candidates).items() if v}
  seen: dict[str, str] = {}
  for key, members in groups.items():
    for name in members:
      if name not in candidates:
        raise ValueError(f"Grouping {label!r} put {name!r} in group {key!r}, but the model "
                         "has no such parameter (or it is the token embedding, which is "
                         "never in a group).")
      if name in seen:
        raise ValueError(f"Grouping {label!r} puts {name!r} in two groups, {seen[name]!r} "
                         f"and {key!r}.")
      seen[name] = key
  if not groups:
    raise ValueError(f"Grouping {label!r} matches no parameter of the model ({len(names)} "
                     f"tensors, e.g. {candidates[:2]}); nothing would be re-drawn.")
  return groups


def select(grouping: Union[str, Grouping], names: Sequence[str]) -> list[str]:
  """The sorted names a grouping covers."""
  return sorted(n for members in make_groups(grouping, names).values() for n in members)


def describe(groups: Mapping[str, Sequence[str]]) -> str:
  """'3 groups (kernels: 24 tensors, norm_scales: 12, relpos_tables: 2)' for logs."""
  parts = [f"{k}: {len(v)}" for k, v in list(groups.items())[:4]]
  more = f", ... (+{len(groups) - 4} more)" if len(groups) > 4 else ""
  return f"{len(groups)} groups ({', '.join(parts)}{more})"
