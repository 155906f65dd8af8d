"""The paper's fixed, deduplicated splits (tasks/fixed_splits/): build, dedup, reuse,
cache keys, corruption handling, temp-dir cleanup, SeqIO reading and sharding.

Every build here is a few hundred examples into a tmp_path cache directory."""
import dataclasses
import hashlib
import json
import logging
import os
import re
import socket

import numpy as np
import pytest
from synthpre_jax.data import task_metadata
import seqio

import tasks  # noqa: F401  (registers the tasks)
from synthpre_jax.data import pipeline
from tasks import build_fixed_splits as build_cli
from tasks.fixed_splits import build as fixed_build
from tasks.fixed_splits import cache as fixed_cache
from tasks.fixed_splits import records as fixed_records, specs
from tasks import registry
from tasks.synthetic import catalog, generators, lime, nesting
from tasks.synthetic.config import EOS_ID, TINY

SMALL = dict(num_generated=300, num_train=200, num_validation=50, num_files=4)


def build(tmp_path, task="set", cfg=TINY, generate_fn=None,
          batch_fn=generators.generate_batch, **kw):
  """A small build; the compiled batch generator unless a per-example one is given."""
  args = {**SMALL, "seed": 0, "num_workers": 1, **kw}
  if generate_fn is not None:
    batch_fn = None
  return fixed_build.build_fixed_splits(task, cfg, generate_fn=generate_fn, batch_fn=batch_fn,
                               cache_dir=tmp_path / "cache", **args)


def examples(fixed, split, **kw):
  return [{k: v.tolist() if hasattr(v, "tolist") else v for k, v in ex.items()}
          for ex in fixed.dataset(split, with_index=True, **kw).as_numpy_iterator()]


def file_state(fixed):
  return {p.name: (p.stat().st_mtime_ns, p.stat().st_size)
          for p in sorted(fixed.directory.iterdir())}


# A STUB generator, for the dedup test only: it tests the dedup logic, which needs
# known duplicates (real generators almost never repeat an input). Example i with
# i % 5 == 3 repeats the inputs of example i - 1, example 50 repeats example 0's; the
# targets always differ (index-specific), so "keep the first" is observable.
def _dup_stub(task, cfg, split, seed, index):
  del task, cfg, split, seed
  key = 0 if index == 50 else (index - 1 if index % 5 == 3 else index)
  return np.asarray([7, 100 + key], np.int32), np.asarray([index], np.int32)


def _is_dup(i):
  return i % 5 == 3 or i == 50


class Counting:
  """generators.generate_batch that records the indices it is asked for."""

  def __init__(self):
    self.calls = []

  def __call__(self, *args):
    self.calls.append(np.asarray(args[-1]).tolist())
    return generators.generate_batch(*args)


def test_dedup_drops_exactly_the_duplicate_inputs_keeping_the_first(tmp_path):
  fixed = build(tmp_path, generate_fn=_dup_stub, num_generated=200, num_train=100,
                num_validation=20)
  kept = [i for i in range(200) if not _is_dup(i)][:120]
  got = examples(fixed, "train") + examples(fixed, "validation")
  assert [ex["index"] for ex in got] == kept
  assert [ex["targets"] for ex in got] == [[i] for i in kept]  # the first one kept
  assert [ex["inputs"] for ex in got] == [[7, 100 + i] for i in kept]
  generated = kept[-1] + 1  # generation stops once both splits are full
  m = fixed.manifest
  assert m["num_examples_generated"] == generated
  assert m["num_duplicates_dropped"] == sum(map(_is_dup, range(generated)))
  assert fixed.num_examples == {"train": 100, "validation": 20}


def test_too_few_unique_examples_is_a_clear_error_and_leaves_nothing(tmp_path):
  with pytest.raises(ValueError, match=r"deduplication left 24 unique examples of the "
                     r"30 generated \(6 duplicate.*Raise num_generated"):
    build(tmp_path, generate_fn=_dup_stub, num_generated=30, num_train=25,
          num_validation=5)
  assert list((tmp_path / "cache").iterdir()) == []
  with pytest.raises(ValueError, match="must be <= num_generated"):
    build(tmp_path, num_generated=10, num_train=10, num_validation=1)


def test_splits_are_the_generator_stream_in_order_and_manifest_is_complete(tmp_path):
  fixed = build(tmp_path)
  assert not fixed.reused
  train, val = examples(fixed, "train"), examples(fixed, "validation")
  # The reference: the "fixed" stream, first-occurrence dedup on inputs.
  seen, kept = set(), []
  for i in range(300):
    inputs, targets = generators.generate("set", TINY, "fixed", 0, i)
    if tuple(inputs) not in seen:
      seen.add(tuple(inputs))
      kept.append((i, inputs.tolist(), targets.tolist()))
  assert [(e["index"], e["inputs"], e["targets"]) for e in train + val] == kept[:250]
  assert len(train) == 200 and len(val) == 50

  m = json.loads((fixed.directory / "manifest.json").read_text())
  p = m["params"]
  assert (p["task"], p["seed"], p["config"]) == ("set", 0, dataclasses.asdict(TINY))
  assert (p["num_generated"], p["num_train"], p["num_validation"], p["num_files"]) == (
      300, 200, 50, 4)
  assert p["generator_version"] == fixed_cache.GENERATOR_VERSION
  assert p["generate_fn"] == "tasks.synthetic.generators.generate_batch"
  assert (p["generate_kind"], p["token_dtype"]) == ("batch", "uint16")
  assert (p["format_version"], p["generator_version"]) == (2, "3")
  assert fixed.directory.name == f"set-{fixed_cache.cache_key(p)[:16]}"
  for split, n in (("train", 200), ("validation", 50)):
    files = m["splits"][split]["files"]
    assert [f["num_examples"] for f in files] == [len(range(f, n, 4)) for f in range(4)]
    for f in files:
      data = (fixed.directory / f["name"]).read_bytes()
      assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])


def test_second_call_reuses_without_regenerating(tmp_path):
  first = build(tmp_path)
  before = file_state(first)
  counting = Counting()
  counting.__qualname__ = "generate_batch"  # the same cache key as generate_batch
  counting.__module__ = "tasks.synthetic.generators"
  second = build(tmp_path, batch_fn=counting)
  assert second.reused and second.directory == first.directory
  # Only the spot check: one call for the first example of every file.
  firsts = [examples(first, s)[f]["index"] for s in fixed_records.SPLITS
            for f in range(SMALL["num_files"])]
  assert counting.calls == [firsts]
  assert file_state(second) == before
  assert second.manifest == first.manifest


def test_changed_parameter_goes_to_a_new_directory_and_leaves_the_old(tmp_path):
  a = build(tmp_path)
  before = file_state(a)
  for change in ({"seed": 1}, {"num_train": 190}, {"cfg": dataclasses.replace(TINY, max_len=60)},
                 {"num_files": 2}):
    b = build(tmp_path, **change)
    assert not b.reused and b.directory != a.directory
    assert b.directory.parent == a.directory.parent
  assert file_state(a) == before
  assert build(tmp_path).reused


def _truncate(d):
  f = d / "train.tfrecord-00001-of-00004"
  f.write_bytes(f.read_bytes()[:-100])


def _flip_byte(d):  # same size, different content
  f = d / "validation.tfrecord-00000-of-00004"
  data = bytearray(f.read_bytes())
  data[len(data) // 2] ^= 0xFF
  f.write_bytes(bytes(data))


def _edit_params(d):
  m = json.loads((d / "manifest.json").read_text())
  m["params"]["seed"] = 5
  (d / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("damage, reason", [
    (_truncate, "has .* bytes, the manifest says"),
    (_flip_byte, "fails its SHA-256 check"),
    (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda d: (d / "manifest.json").write_text('{"params": '), "unreadable"),
    (lambda d: (d / "train.tfrecord-00003-of-00004").unlink(), "is missing"),
    (_edit_params, r"parameters differ from the request in \['seed'\]"),
])
def test_damaged_cache_is_detected_warned_and_rebuilt_identically(tmp_path, caplog,
                                                                  damage, reason):
  original = build(tmp_path)
  want = {s: examples(original, s) for s in fixed_records.SPLITS}
  damage(original.directory)
  with caplog.at_level(logging.WARNING, logger="synthpre_jax.fixed_splits"):
    rebuilt = build(tmp_path)
  assert not rebuilt.reused and rebuilt.directory == original.directory
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and "invalid" in warnings[0], warnings
  assert re.search(reason, warnings[0]), warnings[0]
  assert {s: examples(rebuilt, s) for s in fixed_records.SPLITS} == want
  assert rebuilt.manifest["splits"] == original.manifest["splits"]  # same bytes
  assert [p.name for p in (tmp_path / "cache").iterdir()] == [original.directory.name]


def test_changed_generator_output_without_version_bump_is_rebuilt(tmp_path, caplog):
  small = dict(num_train=150, num_validation=50)
  build(tmp_path, generate_fn=_dup_stub, **small)

  def changed(task, cfg, split, seed, index):
    inputs, targets = _dup_stub(task, cfg, split, seed, index)
    return inputs, targets + 1
  changed.__qualname__ = _dup_stub.__qualname__
  with caplog.at_level(logging.WARNING, logger="synthpre_jax.fixed_splits"):
    rebuilt = build(tmp_path, generate_fn=changed, **small)
  assert not rebuilt.reused
  assert "without a GENERATOR_VERSION bump" in caplog.text
  assert examples(rebuilt, "train")[0]["targets"] == [1]


def test_temp_dirs_of_killed_builds_are_removed(tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  host = socket.gethostname()

  def temp(name, owner=None, age=0):
    d = cache / name
    d.mkdir()
    (d / "train.tfrecord-00000-of-00004").write_bytes(b"partial")
    if owner is not None:
      (d / "owner.json").write_text(json.dumps(owner))
    for p in [*d.iterdir(), d]:
      t = p.stat().st_mtime - age
      os.utime(p, (t, t))
    return d

  dead = temp(".tmp-set-aaaa-11111111", {"host": host, "pid": 4_194_304 + 17})
  old = temp(".tmp-set-bbbb-22222222", None, age=2 * fixed_cache.STALE_TEMP_SECONDS)
  live = temp(".tmp-set-cccc-33333333", {"host": host, "pid": os.getppid()})
  remote = temp(".tmp-set-dddd-44444444", {"host": host + "-other", "pid": 1})
  fixed = build(tmp_path)
  assert not dead.exists() and not old.exists()
  assert live.exists() and remote.exists()  # a live or recent build elsewhere: kept
  assert sorted(p.name for p in cache.iterdir()) == sorted(
      [fixed.directory.name, live.name, remote.name])


def test_every_registered_synthetic_task_has_a_fixed_twin():
  bases = [t + s for s in registry.CONFIGS for t in generators.GENERATORS]
  bases += [lime.lime_task_name(m) + s for s in registry.LIME_CONFIGS
            for m in lime.LIME_MODES]
  names = set(seqio.TaskRegistry.names())
  for base in bases:
    assert base + "_fixed" in names
    assert task_metadata.max_lengths(base + "_fixed") == task_metadata.max_lengths(base)
  spec = specs.FIXED_TASKS["lime_abduct_tiny_fixed"]
  assert (spec.task, spec.cfg, spec.generate_fn) == ("abduct", lime.LIME_TINY,
                                                     lime.generate_lime)
  assert specs.FIXED_SIZES[specs.FIXED_TASKS["set_fixed"].sizes_key] == specs.FixedSizes(
      1_050_000, 1_000_000, 10_000, 64)
  for mix in ("simple_tasks", "simple_tasks_tiny", "lime", "lime_tiny"):
    fixed_mix = seqio.get_mixture_or_task(mix + "_fixed")
    base_mix = seqio.get_mixture_or_task(mix)
    assert sorted((t.name, fixed_mix.get_rate(t)) for t in fixed_mix.tasks) == sorted(
        (t.name + "_fixed", base_mix.get_rate(t)) for t in base_mix.tasks)
  # The trainer's length check knows the new names.
  with pytest.raises(ValueError, match="set_tiny_fixed"):
    pipeline.check_feature_lengths("set_tiny_fixed", {"inputs": 8, "targets": 8})


def test_fixed_twins_derive_from_the_catalogue_nesting_included():
  """Every catalogue task with a sized layout has a `_fixed` twin; the nesting language
  (per-example, like LIME) joined them without changing the others' cache keys."""
  names = set(seqio.TaskRegistry.names())
  for name, entry in catalog.synthetic_tasks().items():
    assert name + "_fixed" in names, name
    spec = specs.fixed_spec(name + "_fixed")
    assert (spec.task, spec.cfg, spec.sizes_key) == (entry.task, entry.cfg, entry.layout)
    assert (spec.batch_fn is not None) == (entry.family == "simple")
  spec = specs.FIXED_TASKS["nesting_language_tiny_fixed"]
  assert (spec.task, spec.cfg, spec.generate_fn, spec.batch_fn) == (
      nesting.NESTING_TASK, nesting.NESTING_TINY, nesting.generate_nesting, None)
  assert task_metadata.max_lengths("nesting_language_fixed") == task_metadata.max_lengths(
      "nesting_language")

  def key(name):
    s = specs.fixed_spec(name + "_fixed")
    sizes = specs.FIXED_SIZES[s.sizes_key]
    return fixed_cache.cache_key(fixed_cache.cache_params(
        s.task, s.cfg, generate_fn=s.batch_fn or s.generate_fn, seed=0,
        num_generated=sizes.num_generated, num_train=sizes.num_train,
        num_validation=sizes.num_validation, num_files=sizes.num_files,
        batch=s.batch_fn is not None))[:16]

  # The mixtures come from the catalogue's families too (equal rates).
  for mix, members in catalog.mixtures().items():
    got = seqio.get_mixture_or_task(mix)
    assert sorted(x.name for x in got.tasks) == sorted(members)
    assert {got.get_rate(x) for x in got.tasks} == {1.0}
  assert set(catalog.mixtures()) == {"simple_tasks", "simple_tasks_tiny", "lime", "lime_tiny",
                                     "procedural", "procedural_tiny"}

  # Pinned: the caches users have built stay valid (a change here rebuilds them all).
  assert {n: key(n) for n in ("set", "set_tiny", "identity", "lime_abduct_tiny",
                              "nesting_language", "nesting_language_tiny")} == {
      "set": "a9d2d834abfce38a", "set_tiny": "c477ba71651832cd",
      "identity": "5e5a9989dbeaef33", "lime_abduct_tiny": "7477661bf895fa93",
      "nesting_language": "c0dacbf18c23a244", "nesting_language_tiny": "f3d41223eb562155"}
  # The formal tasks' keys from before the ECA gzip band existed (commit 44a6aa6).
  assert {n: key(n) for n in ("dyck_tiny", "eca", "shuffle_dyck_len15_tiny", "fst_tiny")} == {
      "dyck_tiny": "5c9722c85159f8a3", "eca": "df45877269b467ca",
      "shuffle_dyck_len15_tiny": "4eb0f70d3b6046b3", "fst_tiny": "93a80b2b97b7bcf1"}


def test_nesting_fixed_split_is_the_generator_stream(tmp_path):
  fixed = build(tmp_path, task=nesting.NESTING_TASK, cfg=nesting.NESTING_TINY,
                generate_fn=nesting.generate_nesting, num_generated=60, num_train=40,
                num_validation=10, num_files=2)
  got = examples(fixed, "train") + examples(fixed, "validation")
  assert len(got) == 50
  for e in got:
    inputs, targets = nesting.generate_nesting(nesting.NESTING_TASK, nesting.NESTING_TINY,
                                               "fixed", 0, e["index"])
    assert (e["inputs"], e["targets"]) == (inputs.tolist(), targets.tolist())


@pytest.fixture
def small_registered(tmp_path, monkeypatch):
  monkeypatch.setenv(fixed_cache.ENV_DATA_DIR, str(tmp_path / "data"))
  monkeypatch.setitem(specs.FIXED_SIZES, "_tiny", specs.FixedSizes(**SMALL))
  monkeypatch.setattr(specs, "_BUILT", {})
  return tmp_path / "data"


def test_seqio_task_builds_lazily_reads_the_cache_and_shards(small_registered):
  task = seqio.get_mixture_or_task("set_tiny_fixed")
  assert not small_registered.exists()  # nothing is built before get_dataset

  def read(split, shard_info=None):
    ds = task.get_dataset(sequence_length=None, split=split, shuffle=False,
                          shard_info=shard_info)
    return [(ex["inputs"].tolist(), ex["targets"].tolist()) for ex in ds.as_numpy_iterator()]

  fixed = specs.ensure_built("set_tiny_fixed")
  assert fixed.directory.parent == small_registered
  assert fixed.num_examples == {"train": 200, "validation": 50}
  for split in fixed_records.SPLITS:
    cached = [(e["inputs"] + [EOS_ID], e["targets"] + [EOS_ID])
              for e in examples(fixed, split)]
    full = read(split)
    assert full == cached
    for n in (2, 3):  # 2 divides the 4 files (file level); 3 does not (record level)
      shards = [read(split, seqio.ShardInfo(index=p, num_shards=n)) for p in range(n)]
      assert [shards[p] == full[p::n] for p in range(n)] == [True] * n
      assert sum(len(s) for s in shards) == len(full)  # disjoint and covering
  assert [p.name for p in small_registered.iterdir()] == [fixed.directory.name]
  assert fixed.directory.name.startswith("set_tiny_fixed-")


def test_read_split_sharding_covers_every_shard_count(tmp_path):
  fixed = build(tmp_path, num_train=37, num_validation=5, num_files=4)
  full = [e["index"] for e in examples(fixed, "train")]
  assert len(full) == 37
  for n in (1, 2, 3, 4, 5, 8):
    shards = [[e["index"] for e in examples(fixed, "train", shard_index=p, num_shards=n)]
              for p in range(n)]
    assert shards == [full[p::n] for p in range(n)]


def test_cli_builds_then_reuses(small_registered, capsys):
  assert build_cli.main(["set_tiny_fixed"]) == 0
  assert "set_tiny_fixed: built" in capsys.readouterr().out
  specs._BUILT.clear()
  assert build_cli.main(["set_tiny_fixed"]) == 0
  out = capsys.readouterr().out
  assert "set_tiny_fixed: reused" in out and "train 200, validation 50" in out


# Spawns 2 worker processes, each importing TensorFlow (~7 s here); also checks that
# records are byte-identical across processes (protobuf map order is not, by default).
def test_worker_processes_give_identical_files(tmp_path, monkeypatch):
  monkeypatch.setattr(fixed_build, "CHUNK", 40)
  serial = build(tmp_path / "a")
  parallel = build(tmp_path / "b", num_workers=2)
  assert parallel.manifest["splits"] == serial.manifest["splits"]
  assert parallel.manifest["num_workers"] == 2


def test_block_records_round_trip_and_shard(tmp_path, monkeypatch):
  """Format 2: many RECORD_EXAMPLES-example records per file decode to the generator
  stream in order; 2 and 3 shards (example and file level) are the residue classes
  (other shard counts: the test above)."""
  monkeypatch.setattr(fixed_records, "RECORD_EXAMPLES", 7)
  monkeypatch.setattr(fixed_build, "CHUNK", 64)  # several generation chunks too
  fixed = build(tmp_path, num_train=150, num_validation=20, num_files=3)
  assert fixed.manifest["params"]["record_examples"] == 7
  want = generators.generate_batch("set", TINY, "fixed", 0, np.arange(170))  # no dups
  got = examples(fixed, "train") + examples(fixed, "validation")
  assert [e["index"] for e in got] == list(range(170))
  assert all(e["inputs"] == want.example(i)[0].tolist()
             and e["targets"] == want.example(i)[1].tolist() for i, e in enumerate(got))
  first_file = fixed.directory / fixed.manifest["splits"]["train"]["files"][0]["name"]
  import tensorflow as tf
  records = list(tf.data.TFRecordDataset(str(first_file)).as_numpy_iterator())
  assert len(records) == 8  # 50 examples of file 0 in records of 7
  for n in (2, 3):  # file level (3 files) and example level; more in the test above
    shards = [[e["index"] for e in examples(fixed, "train", shard_index=p, num_shards=n)]
              for p in range(n)]
    assert shards == [list(range(150))[p::n] for p in range(n)]


def test_token_dtype_follows_the_vocabulary(tmp_path):
  big = dataclasses.replace(TINY, vocab_size=70_000, pool_high=69_990, task_divider=69_999,
                            word_divider=69_998, arg_divider=69_997, empty_target=69_996)
  fixed = build(tmp_path, cfg=big, num_generated=60, num_train=40, num_validation=10)
  assert fixed.manifest["token_dtype"] == "int32"
  got = examples(fixed, "train")
  assert max(max(e["inputs"]) for e in got) > 1 << 16  # ids above uint16 survive
  want = generators.generate_batch("set", big, "fixed", 0, [e["index"] for e in got])
  assert [e["inputs"] for e in got] == [want.example(j)[0].tolist() for j in range(len(got))]
  assert build(tmp_path).manifest["token_dtype"] == "uint16"


def test_cache_of_an_older_generator_version_is_never_reused(tmp_path, monkeypatch):
  monkeypatch.setattr(fixed_cache, "GENERATOR_VERSION", "1")
  old = build(tmp_path)
  monkeypatch.setattr(fixed_cache, "GENERATOR_VERSION", "2")
  new = build(tmp_path)
  assert not new.reused and new.directory != old.directory
  assert new.manifest["params"]["generator_version"] == "2"


def test_exactly_one_generator_kind_is_required(tmp_path):
  with pytest.raises(ValueError, match="exactly one"):
    fixed_build.build_fixed_splits("set", TINY, cache_dir=tmp_path, num_generated=10, num_train=5,
                          num_validation=1)
  with pytest.raises(ValueError, match="exactly one"):
    fixed_build.build_fixed_splits("set", TINY, generate_fn=generators.generate,
                          batch_fn=generators.generate_batch, cache_dir=tmp_path,
                          num_generated=10, num_train=5, num_validation=1)


def test_input_hashes_are_exact_dedup_candidates(monkeypatch):
  b = generators.generate_batch("set", TINY, "fixed", 0, [3, 4, 3, 5])
  h = fixed_build.input_hashes(b)
  assert h[0] == h[2] and len(set(h.tolist())) == 3
  dedup = fixed_build._Dedup(4)
  assert dedup.keep(0, b).tolist() == [0, 1, 3]
  # A forced hash collision of different inputs keeps both (ids are compared).
  dedup2 = fixed_build._Dedup(4)
  monkeypatch.setattr(fixed_build, "input_hashes", lambda batch: np.zeros(len(batch), np.uint64))
  assert dedup2.keep(0, b).tolist() == [0, 1, 3]
