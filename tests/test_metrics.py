"""Downstream metrics against hand-computed cases."""

import numpy as np
import pytest

from synthpre_jax.evaluation import metrics


def test_exact_match_is_raw_string_equality():
  targets = ["SELECT a", "x = 1;", "Foo", "b"]
  predictions = ["SELECT a", "x = 1; ", "foo", "b"]  # trailing space and case count
  assert metrics.exact_match(targets, predictions) == {"exact_match": 50.0}
  assert metrics.exact_match([b"caf\xc3\xa9"], ["café"]) == {"exact_match": 100.0}
  # A list target accepts any of its strings.
  assert metrics.exact_match([["a", "b"], ["c"]], ["b", "a"]) == {"exact_match": 50.0}


def test_token_f1_per_example_mean():
  targets = ["a b c d", "x y", "same words", "", ""]
  predictions = ["a b e", "z", "same words", "", "extra"]
  # 1) overlap 2, P 2/3, R 2/4 -> F1 4/7; 2) 0; 3) 1; 4) both empty -> 1; 5) 0.
  expected = 100 * (4 / 7 + 0 + 1 + 1 + 0) / 5
  assert metrics.token_f1(targets, predictions)["token_f1"] == pytest.approx(expected)
  # Tokens are a multiset, split on any whitespace, case-sensitive.
  got = metrics.token_f1(["a a b"], ["a\tb  b A"])["token_f1"]
  # overlap: a x1, b x1 = 2; P 2/4, R 2/3 -> F1 = 2 * (1/2)(2/3) / (7/6) = 4/7.
  assert got == pytest.approx(100 * 4 / 7)


def test_squad_normalized_em_and_f1_max_over_answers():
  assert metrics.normalize_squad_answer("  The  Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
  assert metrics.normalize_squad_answer("an apple a day") == "apple day"
  targets = [["Denver Broncos", "The Denver Broncos"], ["Santa Clara, California"],
             ["1990s"], "the answer"]
  predictions = ["the denver broncos!", "Santa Clara", "1980s", "Answer."]
  # 1) EM via either answer. 2) P 2/2, R 2/3 -> F1 0.8. 3) 0. 4) EM (string target).
  got = metrics.squad(targets, predictions)
  assert got["em"] == pytest.approx(50.0)
  assert got["f1"] == pytest.approx(100 * (1 + 0.8 + 0 + 1) / 4)
  # The max is taken per example over the answers, for F1 as well.
  got = metrics.squad([["a b c d", "b c"]], ["b c x"])
  # vs "a b c d": P 2/3, R 2/4 -> 4/7; vs "b c": P 2/3, R 1 -> 0.8.
  assert got == {"em": 0.0, "f1": pytest.approx(80.0)}


def test_rouge_f_measures_by_hand():
  got = metrics.rouge(["the cat sat on the mat"], ["the cat on the mat"])
  # unigrams: 5 of 6 target, 5 of 5 prediction -> F 10/11; bigrams 3/5, 3/4 -> F 2/3;
  # LCS 5 -> as unigrams.
  assert got["rouge1"] == pytest.approx(100 * 10 / 11)
  assert got["rouge2"] == pytest.approx(100 * 2 / 3)
  assert got["rougeL"] == pytest.approx(100 * 10 / 11)
  got = metrics.rouge(["a b c d"], ["d c b a"])
  assert got["rouge1"] == pytest.approx(100.0)
  assert got["rouge2"] == pytest.approx(0.0)
  assert got["rougeL"] == pytest.approx(25.0)  # LCS of 1 token
  # " . " splits sentences for ROUGE-Lsum (as T5), not for ROUGE-L.
  got = metrics.rouge(["a b . c d"], ["c d . a b"])
  assert got["rougeL"] == pytest.approx(50.0)
  assert got["rougeLsum"] == pytest.approx(100.0)
  # Mean over examples; the default tokenizer lower-cases and drops punctuation.
  got = metrics.rouge(["Hello, World", "x"], ["hello world", "y"])
  assert got["rouge1"] == pytest.approx(50.0)


def test_rouge_stemming_is_off_by_default_and_can_be_turned_on():
  assert metrics.rouge(["running dogs"], ["run dog"])["rouge1"] == 0.0
  assert metrics.rouge(["running dogs"], ["run dog"], use_stemmer=True)["rouge1"] == 100.0


def test_token_accuracy_over_ids_with_padding():
  targets = np.array([[5, 6, 1, 0], [7, 8, 9, 1], [4, 1, 0, 0]])
  predictions = np.array([[5, 6, 1, 0], [7, 3, 9, 1], [4, 1, 2, 0]])
  got = metrics.token_accuracy(targets, predictions)
  # Non-padding target positions: 3 + 4 + 2 = 9; wrong: one in row 2 -> 8/9.
  assert got["token_accuracy"] == pytest.approx(100 * 8 / 9)
  # Row 3 has an extra token where the target is padding: not an exact sequence.
  assert got["sequence_accuracy"] == pytest.approx(100 / 3)
  # Ragged lists are padded.
  got = metrics.token_accuracy([[5, 1], [6, 7, 1]], [[5, 1, 0, 0], [6, 7]])
  assert got["token_accuracy"] == pytest.approx(100 * 4 / 5)
  assert got["sequence_accuracy"] == pytest.approx(50.0)


@pytest.mark.parametrize("fn", [metrics.exact_match, metrics.token_f1, metrics.squad,
                                metrics.rouge, metrics.token_accuracy])
def test_mismatched_or_empty_inputs_are_refused(fn):
  with pytest.raises(ValueError, match="2 targets and 1 predictions"):
    fn([[1], [2]] if fn is metrics.token_accuracy else ["a", "b"],
       [[1]] if fn is metrics.token_accuracy else ["a"])
  with pytest.raises(ValueError, match="No examples"):
    fn([], [])


def test_non_text_is_refused_with_a_message():
  with pytest.raises(ValueError, match="Expected text"):
    metrics.exact_match(["a"], [3])
  with pytest.raises(ValueError, match="empty list of answers"):
    metrics.squad([[]], ["a"])
