"""The formal-language and procedural task families (tasks/synthetic/formal_*.py,
procedural.py): every example checked by an independent checker written here, exact
maximum lengths, determinism, and the catalogue's SeqIO / `_fixed` / native twins."""
import dataclasses

import numpy as np
import pytest
import seqio

import tasks  # noqa: F401  (registers the tasks)
from synthpre_jax.data import native, pipeline, task_metadata, vocabulary
from tasks import registry  # noqa: F401  (SeqIO registration)
from tasks.fixed_splits import specs
from tasks.fixed_splits import seqio_tasks  # noqa: F401  (the `_fixed` twins)
from tasks.synthetic import catalog, formal_languages, procedural
from tasks.synthetic.formal_config import FORMAL_TASKS, FormalConfig

NAMES = [t + s for t, layouts in FORMAL_TASKS.items() for s in layouts]
TINY_NAMES = [n for n in NAMES if n.endswith("_tiny")]
NUM = 300  # examples checked per task


def draw(name, index, seed=0, split="train"):
  e = catalog.get(name)
  inputs, targets = e.generate(e.task, e.cfg, split, seed, index)
  assert inputs.dtype == targets.dtype == np.int32
  return inputs.tolist(), targets.tolist()


# ------------------------------------------------------------------ independent checkers


def check_dyck(cfg, prefix, target):
  """prefix is a Dyck prefix ending open; prefix + target is well formed with depth
  <= max_depth; target has exactly as many closers as open brackets (shortest)."""
  stack, deepest = [], 0
  for pos, tok in enumerate(prefix + target):
    kind, parity = divmod(tok - cfg.first_token, 2)
    assert 0 <= kind < cfg.k, tok
    if parity == 0:
      assert pos < len(prefix), "the completion only closes"
      stack.append(kind)
    else:
      assert stack and stack.pop() == kind, "a closer matches the innermost open bracket"
    deepest = max(deepest, len(stack))
    if pos == len(prefix) - 1:
      assert len(stack) == len(target) >= 1  # shortest non-empty completion
  assert not stack and deepest <= cfg.max_depth


def check_shuffle_dyck(cfg, prefix, target):
  """Each type balanced on its own, <= max_depth open per type; the target closes
  every open bracket, type 0 first, and nothing else."""
  counts = [0] * cfg.k
  for tok in prefix:
    kind, parity = divmod(tok - cfg.first_token, 2)
    assert 0 <= kind < cfg.k
    counts[kind] += 1 if parity == 0 else -1
    assert 0 <= counts[kind] <= cfg.max_depth
  assert sum(counts) == len(target) >= 1
  want = []
  for kind, n in enumerate(counts):
    want += [cfg.first_token + 2 * kind + 1] * n
  assert target == want


def run_stack(cfg, ops):
  stack, pos = [], 0
  while pos < len(ops):
    if ops[pos] == cfg.push:
      value = ops[pos + 1]
      assert cfg.first_token <= value < cfg.first_token + cfg.num_symbols
      stack.append(value)
      pos += 2
    else:
      assert ops[pos] == cfg.pop and stack, "pop only on a non-empty stack"
      stack.pop()
      pos += 1
  return list(reversed(stack)) or [cfg.empty]


def run_eca(rule_bits, row, steps):
  """rule_bits: Wolfram's 8-character code, the new cell for 111, 110, ..., 000."""
  table = {(a, b, c): int(rule_bits[7 - (4 * a + 2 * b + c)])
           for a in (0, 1) for b in (0, 1) for c in (0, 1)}
  width = len(row)
  for _ in range(steps):
    row = [table[(row[i - 1], row[i], row[(i + 1) % width])] for i in range(width)]
  return row


def run_fst(cfg, inputs):
  state0, in0 = cfg.first_token, cfg.first_token + cfg.num_states
  out0 = in0 + cfg.num_inputs
  sep = inputs.index(cfg.sep)
  table, quads = {}, inputs[:sep]
  assert len(quads) == 4 * cfg.num_states * cfg.num_inputs
  for j in range(0, len(quads), 4):
    q, a, nxt, b = quads[j:j + 4]
    assert state0 <= q < in0 and state0 <= nxt < in0 and in0 <= a < out0
    assert out0 <= b < out0 + cfg.num_outputs
    assert (q, a) not in table, "deterministic"
    table[(q, a)] = (nxt, b)
  state, out = state0, []
  for a in inputs[sep + 1:]:
    state, b = table[(state, a)]
    out.append(b)
  return out


@pytest.mark.parametrize("name", NAMES)
def test_every_example_passes_the_independent_checker(name):
  cfg = catalog.get(name).cfg
  for index in range(NUM if name in TINY_NAMES else NUM // 6):
    inputs, targets = draw(name, index)
    assert cfg.min_len <= len(inputs) or cfg.kind in ("eca",)
    if cfg.kind == "dyck":
      check_dyck(cfg, inputs, targets)
    elif cfg.kind == "shuffle_dyck":
      check_shuffle_dyck(cfg, inputs, targets)
    elif cfg.kind == "ww":
      assert inputs == targets + [cfg.sep]
      assert cfg.min_len <= len(targets) <= cfg.max_len
      assert all(cfg.first_token <= t < cfg.first_token + cfg.num_symbols for t in targets)
    elif cfg.kind == "stack":
      assert targets == run_stack(cfg, inputs)
    elif cfg.kind == "eca":
      rule = inputs[0] - cfg.first_token - 2
      assert 0 <= rule < 256 and (cfg.rule < 0 or rule == cfg.rule)
      row = [c - cfg.first_token for c in inputs[1:]]
      assert len(row) == cfg.width and set(row) <= {0, 1}
      want = run_eca(format(rule, "08b"), row, cfg.steps)
      assert targets == [cfg.first_token + c for c in want]
    else:
      assert targets == run_fst(cfg, inputs)
      assert cfg.min_len <= len(targets) <= cfg.max_len


def test_eca_rule_110_matches_its_table():
  # Rule 110 from its definition: 111->0 110->1 101->1 100->0 011->1 010->1 001->1 000->0.
  table = {"111": 0, "110": 1, "101": 1, "100": 0, "011": 1, "010": 1, "001": 1, "000": 0}
  row = np.asarray([0, 0, 0, 1, 0, 0, 1, 1, 0, 1], np.int32)
  got = procedural.eca_step(row, 110).tolist()
  r = row.tolist()
  want = [table[f"{r[i - 1]}{r[i]}{r[(i + 1) % len(r)]}"] for i in range(len(r))]
  assert got == want


def probe_gzip_ratio(rule):
  """The gzip ratio of a rule's probe rollout, rebuilt from its definition (the
  procedural module's docstring): 128 updates of a fixed 128-cell row, packed 8 cells
  to a byte, most significant first."""
  import gzip
  row = np.random.default_rng(0).integers(2, size=128).tolist()
  cells = []
  for _ in range(128):
    row = run_eca(format(rule, "08b"), row, 1)
    cells += row
  raw = bytes(int("".join(map(str, cells[i:i + 8])), 2) for i in range(0, len(cells), 8))
  return len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw)


def test_eca_gzip_band_draws_only_and_all_its_rules():
  cfg = FORMAL_TASKS["eca_complex"]["_tiny"]
  ratios = {rule: probe_gzip_ratio(rule) for rule in range(256)}
  # The stored sizes are this computation (another zlib may differ by a few bytes).
  for rule, ratio in ratios.items():
    assert abs(procedural.eca_gzip_ratio(rule) - ratio) <= 0.01, rule
  band = {r for r, v in ratios.items() if v >= cfg.gzip_min_ratio}
  assert procedural.eca_rules(cfg).tolist() == sorted(band)
  # Known landmarks: rule 30 is incompressible, rule 110 complex, rules 0 and 255 trivial.
  assert {30, 45, 110} <= band and not {0, 4, 204, 255} & band
  drawn = [draw("eca_complex_tiny", i)[0][0] - cfg.first_token - 2 for i in range(2000)]
  assert set(drawn) == band  # ~53 draws per rule: every rule appears
  # An upper bound too: the simple end only.
  simple = dataclasses.replace(cfg, gzip_min_ratio=0.0, gzip_max_ratio=0.05)
  assert procedural.eca_rules(simple).tolist() == sorted(
      r for r, v in ratios.items() if v <= 0.05)


def test_eca_gzip_band_default_keeps_the_stream_and_bad_bands_are_refused():
  plain = FORMAL_TASKS["eca"]["_tiny"]
  assert procedural.eca_rules(plain).tolist() == list(range(256))
  wide = dataclasses.replace(plain, gzip_min_ratio=0.0, gzip_max_ratio=10.0)
  for i in range(20):  # a band holding every rule draws what the unfiltered task draws
    a = procedural.generate_procedural("eca_tiny", plain, "train", 0, i)
    b = procedural.generate_procedural("eca_tiny", wide, "train", 0, i)
    assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
  for bad, match in ((dict(gzip_min_ratio=0.6, gzip_max_ratio=0.5), "<="),
                     (dict(gzip_min_ratio=-0.1), ">= 0"),
                     (dict(gzip_max_ratio=float("inf")), "finite"),
                     (dict(rule=110, gzip_min_ratio=0.5), "RANDOM_RULE")):
    with pytest.raises(ValueError, match=match):
      dataclasses.replace(plain, **bad)
  with pytest.raises(ValueError, match="RANDOM_RULE"):
    dataclasses.replace(FORMAL_TASKS["dyck"]["_tiny"], gzip_min_ratio=0.5)
  with pytest.raises(ValueError, match="ratios run from"):
    procedural.eca_rules(dataclasses.replace(plain, gzip_min_ratio=1.5))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_from_seed_and_index(name):
  assert draw(name, 5) == draw(name, 5)
  others = [draw(name, i) for i in (6, 7, 8)] + [draw(name, 5, seed=1),
                                                draw(name, 5, split="validation")]
  assert all(o != draw(name, 5) for o in others)


@pytest.mark.parametrize("name", TINY_NAMES)
def test_max_lengths_bound_every_example_and_are_attained(name):
  entry = catalog.get(name)
  bound = entry.max_lengths()
  seen = {"inputs": 0, "targets": 0}
  for index in range(1500):
    inputs, targets = draw(name, index)
    seen["inputs"] = max(seen["inputs"], len(inputs) + 1)
    seen["targets"] = max(seen["targets"], len(targets) + 1)
  assert seen["inputs"] <= bound["inputs"] and seen["targets"] <= bound["targets"]
  if entry.cfg.kind == "stack":  # all pushes: test_max_lengths_are_attained_when_...
    return
  assert seen["inputs"] == bound["inputs"]
  if entry.cfg.kind != "shuffle_dyck":  # k * depth open at once is rare at open_prob 1/2
    assert seen["targets"] == bound["targets"]


@pytest.mark.parametrize("kind,field", [("dyck", "open_prob"), ("shuffle_dyck", "open_prob"),
                                        ("stack", "push_prob")])
def test_max_lengths_are_attained_when_always_growing(kind, field):
  """With every step opening (pushing) where it may, the bound is reached exactly."""
  task = kind
  cfg = dataclasses.replace(FORMAL_TASKS[task]["_tiny"], **{field: 1.0}, min_len=20,
                            max_len=41, max_depth=3)
  fam = catalog.get(task + "_tiny").source
  bound = fam.max_lengths(task, cfg)
  got = [fam.generate(task, cfg, "train", 0, i) for i in range(200)]
  assert max(len(i) for i, _ in got) + 1 == bound["inputs"]
  assert max(len(t) for _, t in got) + 1 == bound["targets"]
  if kind == "dyck":
    assert bound["targets"] == 3 + 1  # depth 3 (at an odd length)
  elif kind == "shuffle_dyck":
    assert bound["targets"] == 4 * 3 + 1  # all 4 types 3 deep, at an even length


def test_invalid_configs_are_refused():
  base = FORMAL_TASKS["dyck"]["_tiny"]
  for bad in (dict(kind="tree"), dict(max_depth=1), dict(k=0), dict(open_prob=1.5),
              dict(rule=256), dict(first_token=1), dict(k=300),
              dict(min_len=5, max_len=4)):
    with pytest.raises(ValueError):
      dataclasses.replace(base, **bad)
  with pytest.raises(ValueError, match="kind"):
    procedural.generate_procedural("dyck", base, "train", 0, 0)
  with pytest.raises(TypeError):
    formal_languages.generate_language("dyck", object(), "train", 0, 0)


def test_registered_with_seqio_fixed_twins_and_native_sources():
  fams = {e.family for n, e in catalog.synthetic_tasks().items() if n in NAMES}
  assert fams == {"formal_languages", "procedural"}
  for name in NAMES:
    assert isinstance(catalog.get(name).cfg, FormalConfig)
    assert seqio.TaskRegistry.get(name) is not None
    assert seqio.TaskRegistry.get(name + "_fixed") is not None
    assert task_metadata.max_lengths(name) == catalog.get(name).max_lengths()
    assert task_metadata.max_lengths(name + "_fixed") == catalog.get(name).max_lengths()
    spec = specs.fixed_spec(name + "_fixed")
    assert (spec.task, spec.cfg, spec.generate_fn) == (
        catalog.get(name).task, catalog.get(name).cfg, catalog.get(name).generate)
    assert native.native_source(name) is not None
    assert native.native_source(name + "_fixed") is not None
    assert pipeline.select_input_pipeline(name) == "native"
    assert (vocabulary.identity_of(native.native_source(name).vocabulary)
            == vocabulary.task_identity(pipeline.resolve_task(name).output_features))
  mix = seqio.get_mixture_or_task("procedural_tiny")
  assert sorted(t.name for t in mix.tasks) == ["eca_tiny", "fst_tiny", "stack_tiny"]
  assert seqio.get_mixture_or_task("procedural_tiny_fixed") is not None


def test_native_stream_and_seqio_dataset_are_the_generator():
  name = "fst_tiny"
  e = catalog.get(name)
  block = next(native.native_source(name).blocks("validation", shard_index=0, num_shards=1,
                                                 seed=None, start=0))
  for i in range(5):
    want = e.generate(e.task, e.cfg, "validation", 0, i)
    assert [x.tolist() for x in block.example(i)] == [w.tolist() for w in want]
  ds = seqio.TaskRegistry.get(name).get_dataset(sequence_length=None, split="validation",
                                                shuffle=False)
  first = next(ds.as_numpy_iterator())
  want = e.generate(e.task, e.cfg, "validation", 0, 0)
  assert first["targets"].tolist() == want[1].tolist() + [1]


def test_fixed_split_is_the_generator_stream(tmp_path):
  from tasks.fixed_splits import build as fixed_build
  e = catalog.get("stack_tiny")
  fixed = fixed_build.build_fixed_splits(
      e.task, e.cfg, generate_fn=e.generate, batch_fn=None, num_generated=60,
      num_train=40, num_validation=10, num_files=2, seed=0, num_workers=1,
      cache_dir=tmp_path / "cache")
  got = [ex for split in ("train", "validation")
         for ex in fixed.dataset(split, with_index=True).as_numpy_iterator()]
  assert len(got) == 50
  for ex in got:
    inputs, targets = e.generate(e.task, e.cfg, "fixed", 0, int(ex["index"]))
    assert (ex["inputs"].tolist(), ex["targets"].tolist()) == (inputs.tolist(),
                                                               targets.tolist())
