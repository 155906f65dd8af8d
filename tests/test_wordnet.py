"""The shipped WordNet task: word-disjoint deterministic splits, the build, registration."""
from __future__ import annotations

import gzip

import pytest

from tasks import wordnet
from tasks.wordnet import build_wordnet

# Three synsets in wndb(5) format (w_cnt hexadecimal; an adjective marker; examples).
DATA_ADJ = """  1 This software and database is being provided to you, the LICENSEE, by
00001740 00 a 01 able(p) 0 005 = 05200169 n 0000 | (usually followed by `to') having the \
necessary means or skill; "able to swim"; "she was able to program"  
00002312 00 a 02 Abaxial 0 dorsal 4 002 ;c 06037666 n 0000 | facing away from the axis  
"""
DATA_NOUN = """00001930 03 n 01 physical_entity 0 007 @ 00001740 n 0000 | an entity that \
has   physical existence  
"""


def test_splits_share_no_word_and_follow_the_rule():
  words = {s: {g.word for g in wordnet.glosses(s)} for s in wordnet.SPLITS}
  assert not words["train"] & words["test"]
  assert not words["train"] & words["validation"]
  assert not words["validation"] & words["test"]
  for split in wordnet.SPLITS:
    rows = wordnet.glosses(split)
    assert len(rows) == wordnet.SIZES[split]
    assert all(wordnet.split_of(g.word) == split for g in rows)
    assert all(g.word and g.definition and g.pos in "nvar" for g in rows)
  total = sum(wordnet.SIZES.values())
  assert total == 117_659 - 282  # every synset of WordNet 3.0 less the shared definitions
  keys = {s: {wordnet.split_key(g.word) for g in wordnet.glosses(s)} for s in wordnet.SPLITS}
  definitions = {s: {g.definition for g in wordnet.glosses(s)} for s in wordnet.SPLITS}
  for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
    assert not keys[a] & keys[b] and not definitions[a] & definitions[b]
  assert 0.08 < wordnet.SIZES["test"] / total < 0.12


def test_split_of_is_a_fixed_function_of_the_word():
  assert wordnet.split_of("entity") == "test"  # pinned: a change of rule moves words
  assert wordnet.split_of("living thing") == "validation"
  assert wordnet.split_of("congener") == "train"
  assert {wordnet.split_of(w) for w in ("follow-up", "followup", "Follow up")} == {
      wordnet.split_of("followup")}
  with pytest.raises(ValueError, match="unknown WordNet split"):
    wordnet.glosses("dev")


def test_build_parses_wndb_lines_and_writes_byte_identical_files(tmp_path):
  (tmp_path / "data.adj").write_text(DATA_ADJ)
  (tmp_path / "data.noun").write_text(DATA_NOUN)
  (tmp_path / "data.verb").write_text("")
  (tmp_path / "data.adv").write_text("")
  rows = list(build_wordnet.read_rows(str(tmp_path)))
  assert [r[1:] for r in rows] == [
      ("physical entity", "n", "an entity that has physical existence"),
      ("able", "a", "(usually followed by `to') having the necessary means or skill"),
      ("abaxial", "a", "facing away from the axis")]
  assert [r[0] for r in rows] == [wordnet.split_of(r[1]) for r in rows]
  outs = []
  for name in ("a.tsv.gz", "b.tsv.gz"):
    assert build_wordnet.main(["--source_dir", str(tmp_path),
                               "--output", str(tmp_path / name)]) == 0
    outs.append((tmp_path / name).read_bytes())
  assert outs[0] == outs[1]
  assert gzip.decompress(outs[0]).decode().splitlines()[0] == "\t".join(rows[0])
  assert wordnet.glosses(rows[0][0], path=str(tmp_path / "a.tsv.gz"))[0].word == (
      "physical entity")


def test_build_names_the_missing_package(tmp_path):
  with pytest.raises(FileNotFoundError, match="wordnet-base"):
    list(build_wordnet.read_rows(str(tmp_path)))


def test_a_damaged_file_names_its_line(tmp_path):
  bad = tmp_path / "bad.tsv.gz"
  bad.write_bytes(gzip.compress(b"train\tword\tn\tdef\ntrain\tonly two\n"))
  with pytest.raises(ValueError, match="line 2"):
    wordnet.glosses("train", path=str(bad))


@pytest.mark.parametrize("name,source,target", [
    ("wordnet_reverse_dictionary", "definition", "word"),
    ("wordnet_definitions", "word", "definition")])
def test_registered_tasks_read_the_shipped_rows(name, source, target):
  from synthpre_jax.data import examples as examples_lib
  sample = examples_lib.eval_sample(name, "test", max_examples=3, sample_seed=1)
  rows = wordnet.glosses("test")
  assert sample.split_size == len(rows)
  texts = {(getattr(g, source), getattr(g, target)) for g in rows}
  for ex in sample.examples:
    assert (ex["inputs_pretokenized"], ex["targets_pretokenized"]) in texts
    assert ex["targets"][-1] == 1  # EOS


def test_a_subset_of_wordnet_trains_on_seeded_train_rows():
  from synthpre_jax.data import pipeline
  batches = pipeline.get_batches(
      task_name="wordnet_definitions_train100_seed2",
      feature_lengths={"inputs": 12, "targets": 48}, split="train", global_batch_size=100,
      seed=None, shuffle=False, num_epochs=1, process_index=0, process_count=1,
      pad_last_batch=True)
  assert sum(int((b["decoder_target_tokens"][:, 0] > 0).sum()) for b in batches) == 100


def test_evaluation_reads_a_shared_split_of_an_in_memory_task_once():
  """Every cell of a study scores the same test split: subsets of one in-memory task
  read it once per process; the examples are the same as a fresh read."""
  from synthpre_jax.data import examples as examples_lib
  from synthpre_jax.data import pipeline
  from tasks import subsets
  examples_lib._READ_CACHE.clear()  # pylint: disable=protected-access
  names = ["wordnet_reverse_dictionary_train50_seed1", "wordnet_reverse_dictionary_train50_seed2"]
  samples = []
  for name in names:
    subsets.ensure_subset_task(name)
    samples.append(examples_lib.eval_sample(name, "validation", inputs_length=48,
                                            max_examples=20, sample_seed=3))
  cache = examples_lib._READ_CACHE  # pylint: disable=protected-access
  assert len(cache) == 1
  (source, _), = cache.values()
  assert source.immutable_examples
  fresh = examples_lib._read_uncached(  # pylint: disable=protected-access
      examples_lib._task(names[0], "validation"), "validation", 48, None)  # pylint: disable=protected-access
  keep = [fresh[i][0] for i in sorted(pipeline.sample_indices(len(fresh), 20, 3))]
  for sample in samples:
    assert [ex["inputs_pretokenized"] for ex in sample.examples] == [
        k["inputs_pretokenized"].decode() for k in keep]


def test_definitions_seen_in_an_earlier_split_are_dropped():
  rows = [("train", "a", "n", "d1"), ("validation", "b", "n", "d1"),
          ("validation", "c", "n", "d2"), ("test", "e", "n", "d2"),
          ("test", "f", "n", "d1"), ("test", "g", "n", "d3"), ("train", "h", "n", "d3")]
  assert build_wordnet.drop_shared(rows) == [
      ("train", "a", "n", "d1"), ("validation", "c", "n", "d2"), ("train", "h", "n", "d3")]
