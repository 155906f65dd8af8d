"""Procedural data mixed into natural language-model pre-training, in one vocabulary.

A SeqIO mixture needs one vocabulary, and a formal task's ids (tasks/synthetic/
formal_config.py) overlap the text pieces. So a formal task is re-registered in the
text vocabulary as `<task>_in_text` (e.g. `shuffle_dyck_tiny_in_text`):
- its ids move to the model's spare embedding rows, the ids at and above the text
  vocabulary's size that the text never produces (8,100..8,191 with the shipped 8k
  model and an 8,192-row embedding; 32,100..32,127 with T5's): symbol ids first, then
  the special ids its kind emits (`id_map`). Pad 0 and EOS 1 stay. The model's embedding keeps
  its shape, so the checkpoint fine-tunes on text like a natural one;
- it is framed as language modelling like `corpus_lm`: inputs empty (EOS only),
  targets = inputs, EOS, targets, EOS of the formal example: the sequence a decoder-only
  model trains on with loss_on='all' for the formal task itself.
`<text task>_with_<formal task>_<p>pct` (e.g. `corpus_lm_with_shuffle_dyck_tiny_0.1pct`,
registered on demand) is the SeqIO mixture of the text task at rate 1 - p/100 and the
formal task at rate p/100: p% of the SEQUENCES are procedural (fewer of the tokens, as
formal sequences are shorter than the text chunks); "Procedural Pretraining" (Jiang et
al. 2026) mixes in 0.1-0.3% of procedural data. A model whose embedding is too small for the moved ids is refused
before training (`task_metadata.set_id_limit`, `pipeline.check_vocabulary`).
"""
from __future__ import annotations

import functools
import re
from typing import Optional

import numpy as np
import seqio
import tensorflow as tf

from synthpre_jax.data import task_metadata
from tasks import natural
from tasks.downstream import text_features
from tasks.synthetic import catalog
from tasks.synthetic.config import EOS_ID
from tasks.synthetic.formal_config import FORMAL_TASKS, FormalConfig

SUFFIX = "_in_text"
TEXT_LM_TASKS = (natural.CORPUS_LM_TASK, natural.C4_LM_TASK)
_MIX = re.compile(r"^(?P<text>\w+?)_with_(?P<formal>\w+)_(?P<pct>\d+(?:\.\d+)?)pct$")


def formal_task_names() -> list[str]:
  """The catalogue's formal-language and procedural tasks (each layout)."""
  return [task + suffix for task, layouts in FORMAL_TASKS.items() for suffix in layouts]


# The special ids each kind emits (tasks/synthetic/formal_languages.py, procedural.py).
EMITTED_SPECIALS = {"dyck": (), "shuffle_dyck": (), "ww": ("sep",),
                    "stack": ("push", "pop", "empty"), "eca": (), "fst": ("sep",)}


def id_map(cfg: FormalConfig, first_id: int) -> dict[int, int]:
  """The formal task's ids -> text-vocabulary ids: its symbol ids, then the special ids
  its kind emits (EMITTED_SPECIALS), to first_id, first_id + 1, ...; pad and EOS
  unchanged."""
  ids = list(range(cfg.first_token, cfg.first_token + cfg.num_symbol_ids))
  ids += [cfg.special_ids[name] for name in EMITTED_SPECIALS[cfg.kind]]
  return {0: 0, EOS_ID: EOS_ID, **{old: first_id + j for j, old in enumerate(ids)}}


def _lookup_table(cfg: FormalConfig, first_id: int) -> np.ndarray:
  table = np.full(cfg.vocab_size, -1, np.int32)  # -1: an id the task never emits
  for old, new in id_map(cfg, first_id).items():
    table[old] = new
  return table


def _to_text_lm(ex: dict, table: tf.Tensor) -> dict:
  """inputs, EOS, targets (moved ids) as targets; inputs empty."""
  eos = tf.constant([EOS_ID], tf.int32)
  seq = tf.gather(table, tf.concat([ex["inputs"], eos, ex["targets"]], axis=0))
  with tf.control_dependencies([tf.debugging.assert_non_negative(
      seq, message="a formal task emitted an id outside its layout")]):
    seq = tf.identity(seq)
  return {"inputs": tf.zeros([0], tf.int32), "targets": seq}


def register_in_text(formal_task: str) -> str:
  """Registers `<formal_task>_in_text` in the project's text vocabulary (idempotent) and
  returns its name. ValueError for a task that is not a formal-language or procedural
  catalogue task."""
  name = formal_task + SUFFIX
  if name in seqio.TaskRegistry.names():
    return name
  if formal_task not in formal_task_names():
    raise ValueError(f"{formal_task!r} is not a formal-language or procedural task; "
                     f"choose one of {formal_task_names()}.")
  vocabulary = text_features.TEXT_VOCABULARY
  entry = catalog.get(formal_task)
  first_id = int(vocabulary.vocab_size)
  table = _lookup_table(entry.cfg, first_id)
  lengths = entry.max_lengths()  # EOS included on both sides
  task_metadata.set_max_lengths(name, {"inputs": 1,
                                       "targets": lengths["inputs"] + lengths["targets"]})
  task_metadata.set_id_limit(name, int(table.max()) + 1)
  source = seqio.get_mixture_or_task(formal_task).source
  seqio.TaskRegistry.add(
      name, source=source, output_features=text_features.text_features(vocabulary),
      preprocessors=[functools.partial(_map, table=table),
                     seqio.preprocessors.append_eos_after_trim],
      metric_fns=[], shuffle_buffer_size=None)
  return name


def _map(ds: tf.data.Dataset, table: np.ndarray) -> tf.data.Dataset:
  table_t = tf.constant(table)
  return ds.map(lambda ex: _to_text_lm(ex, table_t), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)


def mixture_name(text_task: str, formal_task: str, percent: float) -> str:
  """The on-demand mixture name, e.g. corpus_lm_with_shuffle_dyck_tiny_0.1pct."""
  return f"{text_task}_with_{formal_task}_{percent:g}pct"


def register_mixture(text_task: str, formal_task: str, percent: float) -> str:
  """Registers `text_task` mixed with `percent`% of `formal_task` (idempotent); returns
  its name. ValueError for an unknown task or a percentage outside (0, 100)."""
  if text_task not in TEXT_LM_TASKS:
    raise ValueError(f"The text task must be one of {TEXT_LM_TASKS}, not {text_task!r}.")
  if not 0.0 < percent < 100.0:
    raise ValueError(f"The procedural share is a percentage in (0, 100), not {percent}.")
  name = mixture_name(text_task, formal_task, percent)
  if not _MIX.match(name):
    raise ValueError(f"{percent}% gives the name {name!r}, which cannot be read back; "
                     "write the share as a plain decimal (e.g. 0.1, 0.25).")
  if name not in seqio.MixtureRegistry.names():
    in_text = register_in_text(formal_task)
    seqio.MixtureRegistry.add(
        name, [(text_task, 1.0 - percent / 100.0), (in_text, percent / 100.0)])
    task_metadata.set_id_limit(name, task_metadata.id_limit(in_text))
  return name


def _resolve(name: str) -> bool:
  if name.endswith(SUFFIX) and name[:-len(SUFFIX)] in formal_task_names():
    register_in_text(name[:-len(SUFFIX)])
    return True
  m = _MIX.match(name)
  if not m or m["text"] not in TEXT_LM_TASKS or m["formal"] not in formal_task_names():
    return False
  percent = float(m["pct"])
  if mixture_name(m["text"], m["formal"], percent) != name:
    return False  # one spelling per mixture (e.g. 0.1pct, not 0.10pct)
  register_mixture(m["text"], m["formal"], percent)
  return True


def _hint(name: str) -> Optional[str]:
  if "_with_" not in name and not name.endswith(SUFFIX):
    return None
  return ("Procedural data in natural LM pre-training is named "
          "<text task>_with_<formal task>_<p>pct (e.g. "
          f"{mixture_name(natural.CORPUS_LM_TASK, 'shuffle_dyck_tiny', 0.1)}), the text "
          f"task one of {TEXT_LM_TASKS} and the formal task one of "
          f"{formal_task_names()[:6]} ... (tasks/procedural_in_text.py).")


def _base(name: str) -> Optional[str]:
  m = _MIX.match(name)
  return m["text"] if m else None


task_metadata.add_name_resolver(_resolve, _hint, _base)
