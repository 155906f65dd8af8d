"""The report's provenance table: per source, the checkpoints read, the vocabulary and
the code version, from the records' provenance fields."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from synthpre_jax.study.summary import Summary
from synthpre_jax.study.tables import markdown_table


PROVENANCE_KEYS = ("subset_seed", "data_seed", "source_checkpoint", "init_source",
                   "vocabulary", "code_version", "gin_config_hash")


NOT_RECORDED = "not recorded"


def _describe_checkpoint(ckpt: Any, what: str = "") -> str:
  if not isinstance(ckpt, Mapping):
    return f"{what}`{ckpt}`"
  path = ckpt.get("path") or ckpt.get("params_path")
  if not path:  # an init transform that reads no checkpoint
    return f"init {ckpt.get('kind', '?')}: {ckpt.get('description') or 'no checkpoint'}"
  rule = ckpt.get("rule")
  text = f"{what}`{path}` step {ckpt.get('step', '?')}"
  return text + (f" ({rule})" if rule not in (None, "") else "")


def _describe_vocabulary(vocab: Any) -> str:
  if not isinstance(vocab, Mapping):
    return str(vocab)
  return (f"{vocab.get('name', '?')} ({vocab.get('kind', '?')}, "
          f"{vocab.get('vocab_size', '?')} ids)")


def _describe_code(code: Any) -> str:
  if not isinstance(code, Mapping):
    return str(code)
  commit = code.get("git_commit")
  if not commit:
    sha = code.get("source_sha256")
    return f"sources {sha[:12]}" if sha else NOT_RECORDED
  return commit[:10] + ("+dirty" if code.get("git_dirty") else "")


def _distinct(records: Sequence[Mapping[str, Any]], describe) -> str:
  values = [describe(r) for r in records]
  return "; ".join(dict.fromkeys(v for v in values if v)) or NOT_RECORDED


def _checkpoints_used(r: Mapping[str, Any]) -> Optional[str]:
  if "source_checkpoint" not in r and "init_source" not in r:
    return None
  parts = []
  if r.get("source_checkpoint"):
    parts.append(_describe_checkpoint(r["source_checkpoint"]))
  if r.get("init_source"):
    kind = r["init_source"].get("kind", "MomentMatchingInit")
    what = {"MomentMatchingInit": "statistics of ",
            "LSTMEmbeddingFromT5": "input embedding of "}.get(kind, f"{kind} from ")
    parts.append(_describe_checkpoint(r["init_source"], what))
  return ", ".join(parts) or "none (no checkpoint read)"


def provenance_section(summary: Summary) -> list[str]:
  """Markdown lines: per source, the checkpoint step(s) read, the vocabulary and the
  code version, from the records' provenance fields; a note when no record has any."""
  lines = ["## Provenance", ""]
  if not any(r.get(k) is not None for r in summary.records for k in PROVENANCE_KEYS):
    return lines + ["The records carry no provenance fields (written before records "
                    "had them).", ""]
  rows = [["source", "checkpoint read (step, rule)", "vocabulary", "code version",
           "records with provenance"]]
  for s in summary.sources:
    mine = [r for r in summary.records if r["source"] == s]
    with_any = sum(any(k in r for k in PROVENANCE_KEYS) for r in mine)
    rows.append([
        s, _distinct(mine, _checkpoints_used),
        _distinct(mine, lambda r: r.get("vocabulary") and _describe_vocabulary(r["vocabulary"])),
        _distinct(mine, lambda r: r.get("code_version") and _describe_code(r["code_version"])),
        f"{with_any} of {len(mine)}"])
  return lines + [markdown_table(rows), ""]
