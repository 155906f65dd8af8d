"""SCAN (Lake & Baroni, ICML 2018), generated exactly from its grammar: no download.

Commands (phrase-structure grammar of the paper's appendix):

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

(`D[1] opposite D[2]` reads "x opposite left/right" with x a primitive U or `turn`.)
This gives exactly 20,910 distinct commands. Their meaning (interpretation function):

    [[walk]] = I_WALK, [[look]] = I_LOOK, [[run]] = I_RUN, [[jump]] = I_JUMP
    [[turn left]] = I_TURN_LEFT                [[u left]] = I_TURN_LEFT [[u]]
    [[turn opposite left]] = I_TURN_LEFT x2     [[u opposite left]] = I_TURN_LEFT x2 [[u]]
    [[turn around left]] = I_TURN_LEFT x4       [[u around left]] = (I_TURN_LEFT [[u]]) x4
    (the same with right / I_TURN_RIGHT)
    [[x twice]] = [[x]] x2    [[x thrice]] = [[x]] x3
    [[x1 and x2]] = [[x1]] [[x2]]    [[x1 after x2]] = [[x2]] [[x1]]

Splits (`split_examples(scheme, split)`):
  * `simple`: OUR OWN deterministic random 80/20 split (16,728 / 4,182 commands, the
    original sizes). The original repository's files are one particular random split
    that cannot be regenerated; ours orders commands by SHA-256 of
    "<SPLIT_SEED>:simple:<command>" and takes the first 20% as test.
  * `length`: the original rule: train = action sequences of length <= 22 (16,990),
    test = longer ones (3,920; lengths 24..48).
  * `addprim_jump`: the original rule: train = every command without "jump" (13,203)
    plus the bare command "jump" repeated JUMP_COPIES = 1,467 times (as in the original
    14,670-line training file, where the primitive is 10% of the lines); test = the
    other 7,706 commands containing "jump".
  * `validation` (all schemes; the trainer evaluates on it; not in the original): a
    deterministic 10% of the train commands (SHA-256 order of
    "<SPLIT_SEED>:validation:<scheme>:<command>"), removed from train. For addprim_jump
    it is drawn from the commands without "jump", so all 1,467 "jump" lines stay in
    train. Sizes (train / validation / test): simple 15,055 / 1,673 / 4,182;
    length 15,291 / 1,699 / 3,920; addprim_jump 13,350 (11,883 distinct + 1,467
    "jump") / 1,320 / 7,706.
Examples are (command, actions) string pairs; actions are space-separated.

Target words of the SeqIO tasks: the registered tasks spell each action as one plain
word, `ACTION_WORDS` (I_WALK -> walk, I_LOOK -> look, I_RUN -> run, I_JUMP -> jump,
I_TURN_LEFT -> left, I_TURN_RIGHT -> right). The renaming is one-to-one, so exact match is
unchanged; it exists because the text vocabulary splits "I_TURN_RIGHT" into 12 pieces
(targets up to 409 tokens) while each word is one piece (targets at most 48 + EOS).
`interpret` and `split_examples` keep the original action names.

This module is pure Python (no TensorFlow). `register_seqio_tasks()` registers the SeqIO
tasks scan_simple, scan_length and scan_addprim_jump (imports seqio when called).
"""
from __future__ import annotations

import functools
import hashlib
from typing import Sequence

PRIMITIVES = ("walk", "look", "run", "jump")
ACTIONS = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
_PRIMITIVE_ACTION = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
_TURN_ACTION = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
_REPEATS = {"twice": 2, "thrice": 3}
ACTION_WORDS = {"I_WALK": "walk", "I_LOOK": "look", "I_RUN": "run", "I_JUMP": "jump",
                "I_TURN_LEFT": "left", "I_TURN_RIGHT": "right"}

NUM_COMMANDS = 20910
SCHEMES = ("simple", "length", "addprim_jump")
SPLITS = ("train", "validation", "test")
SPLIT_SEED = 0
TEST_FRACTION = 0.2  # simple split
VALIDATION_FRACTION = 0.1  # of train, every scheme
LENGTH_THRESHOLD = 22  # length split: train iff len(actions) <= 22
ADDPRIM = "jump"
JUMP_COPIES = 1467  # "jump" lines in the original addprim_jump train file


def _interpret_v(words: Sequence[str], command: str) -> list[str]:
  """[[V]] for the words of one V phrase."""
  head = words[0] if words else ""
  if head not in _PRIMITIVE_ACTION and head != "turn":
    raise ValueError(f"not a SCAN command: {command!r} (expected walk, look, run, jump "
                     f"or turn, got {head!r})")
  action = [] if head == "turn" else [_PRIMITIVE_ACTION[head]]
  if len(words) == 1 and head != "turn":
    return action
  if len(words) == 2 and words[1] in _TURN_ACTION:
    return [_TURN_ACTION[words[1]]] + action
  if len(words) == 3 and words[2] in _TURN_ACTION:
    turn = _TURN_ACTION[words[2]]
    if words[1] == "opposite":
      return [turn, turn] + action
    if words[1] == "around":
      return ([turn] + action) * 4
  raise ValueError(f"not a SCAN command: {command!r} (bad phrase {' '.join(words)!r})")


def _interpret_s(words: Sequence[str], command: str) -> list[str]:
  """[[S]]: a V phrase, optionally followed by twice / thrice."""
  if words and words[-1] in _REPEATS:
    return _interpret_v(words[:-1], command) * _REPEATS[words[-1]]
  return _interpret_v(words, command)


def interpret(command: str) -> list[str]:
  """The action sequence of a SCAN command; ValueError if it is not in the grammar."""
  words = command.split(" ")
  for conj in ("and", "after"):
    if conj in words:
      i = words.index(conj)
      first, second = _interpret_s(words[:i], command), _interpret_s(words[i + 1:],
                                                                    command)
      return first + second if conj == "and" else second + first
  return _interpret_s(words, command)


def _v_phrases() -> list[str]:
  out = []
  for u in PRIMITIVES + ("turn",):
    if u != "turn":
      out.append(u)
    for direction in ("left", "right"):
      out.append(f"{u} {direction}")
    for modifier in ("opposite", "around"):
      for direction in ("left", "right"):
        out.append(f"{u} {modifier} {direction}")
  return out


@functools.lru_cache(maxsize=1)
def all_commands() -> tuple[str, ...]:
  """Every SCAN command (20,910), in grammar enumeration order."""
  s_phrases = [v + suffix for v in _v_phrases() for suffix in ("", " twice", " thrice")]
  commands = list(s_phrases)
  for conj in ("and", "after"):
    commands.extend(f"{a} {conj} {b}" for a in s_phrases for b in s_phrases)
  assert len(commands) == len(set(commands)) == NUM_COMMANDS, len(commands)
  return tuple(commands)


@functools.lru_cache(maxsize=1)
def all_examples() -> tuple[tuple[str, str], ...]:
  """(command, actions) for every command; actions space-separated."""
  return tuple((c, " ".join(interpret(c))) for c in all_commands())


def _hash_order(commands: Sequence[str], salt: str) -> list[str]:
  """Commands in a fixed pseudo-random order (SHA-256 of salt + command)."""
  def key(command: str) -> bytes:
    return hashlib.sha256(f"{SPLIT_SEED}:{salt}:{command}".encode()).digest()
  return sorted(commands, key=key)


def _has_addprim(command: str) -> bool:
  return ADDPRIM in command.split(" ")


@functools.lru_cache(maxsize=None)
def _scheme_commands(scheme: str) -> dict[str, tuple[str, ...]]:
  """split -> commands (enumeration order; addprim_jump train holds the copies)."""
  commands = all_commands()
  actions = dict(all_examples())
  if scheme == "simple":
    shuffled = _hash_order(commands, "simple")
    test = set(shuffled[:round(TEST_FRACTION * len(commands))])
    train_pool = [c for c in commands if c not in test]
    extra: list[str] = []
  elif scheme == "length":
    long = {c for c in commands if len(actions[c].split(" ")) > LENGTH_THRESHOLD}
    test, train_pool, extra = long, [c for c in commands if c not in long], []
  elif scheme == "addprim_jump":
    test = {c for c in commands if _has_addprim(c) and c != ADDPRIM}
    train_pool = [c for c in commands if not _has_addprim(c)]
    extra = [ADDPRIM] * JUMP_COPIES
  else:
    raise ValueError(f"unknown SCAN split scheme {scheme!r}; expected one of {SCHEMES}")
  validation = set(_hash_order(train_pool, f"validation:{scheme}")
                   [:round(VALIDATION_FRACTION * len(train_pool))])
  return {
      "train": tuple([c for c in train_pool if c not in validation] + extra),
      "validation": tuple(c for c in train_pool if c in validation),
      "test": tuple(c for c in commands if c in test),
  }


def split_examples(scheme: str, split: str) -> list[tuple[str, str]]:
  """The (command, actions) examples of `split` ('train'/'validation'/'test') of `scheme`."""
  if split not in SPLITS:
    raise ValueError(f"unknown SCAN split {split!r}; expected one of {SPLITS}")
  actions = dict(all_examples())
  return [(c, actions[c]) for c in _scheme_commands(scheme)[split]]


def to_target_words(actions: str) -> str:
  """'I_TURN_LEFT I_WALK' -> 'left walk': the registered tasks' target text."""
  return " ".join(ACTION_WORDS[a] for a in actions.split(" "))


# --- SeqIO registration (imports seqio/TensorFlow only when called) -------------------

TASK_NAMES = {f"scan_{scheme}": scheme for scheme in SCHEMES}


def split_text(scheme: str, split: str) -> tuple[list[str], list[str]]:
  """(commands, target words) of `split`: the registered tasks' text."""
  examples = split_examples(scheme, split)
  return [c for c, _ in examples], [to_target_words(a) for _, a in examples]


def register_seqio_tasks(vocabulary=None) -> None:
  """Registers scan_simple, scan_length and scan_addprim_jump (idempotent).

  Features inputs/targets: text tokenized with the project's text vocabulary (the
  shared lazy proxy `text_features.TEXT_VOCABULARY`, i.e. tasks.text_vocab.
  get_vocabulary() on first use) plus EOS, with the text kept as `*_pretokenized`; the
  source tokenizes each split once per process (`tasks.downstream.in_memory`), so epochs
  after the first cost no tokenization; splits train/validation/test; metric: exact match
  (synthpre_jax.evaluation.metrics.exact_match). Needs seqio: imported here, so that
  the generator above stays importable without it.
  """
  # pylint: disable=g-import-not-at-top  (optional dependency: seqio and TensorFlow)
  from tasks.downstream import in_memory, text_features
  for name, scheme in TASK_NAMES.items():
    in_memory.register_task(
        name, functools.partial(split_text, scheme),
        num_examples={s: len(_scheme_commands(scheme)[s]) for s in SPLITS},
        metric_fns=[text_features.METRIC_FNS["exact_match"]], vocabulary=vocabulary)
