"""SQuAD 1.1 from TFDS `squad/v1.1`, as T5 formats it, scored over all gold answers.

Input: "question: <question> context: <context>"; target: the first gold answer. As in
T5's `squad` preprocessor, punctuation in the question, context and answers is padded
with spaces and runs of whitespace collapsed (the SQuAD metric normalizes punctuation
and whitespace away, so this does not change scores). The paper evaluates on the
SQuAD validation set, so split 'test' is TFDS 'validation' too ('validation' is used
for checkpoint selection by token accuracy).

Evaluation keeps every gold answer: each example carries an `answers` feature (all
gold answer strings, padded like the target) that SeqIO passes through untouched;
`postprocess_squad(..., example=ex, is_target=True)` returns that list, so the SQuAD
metric (normalized EM / F1, max over gold answers) sees all of them. Examples without
an answer (none in SQuAD 1.1) are dropped. Training uses the first answer only.

Data comes from TFDS's data directory (~/tensorflow_datasets, or $TFDS_DATA_DIR, which
may be a gs:// path). The task never downloads: prepare the data once, where the network
can be reached, with `tfds build squad/v1.1` (or
`tfds.builder("squad/v1.1").download_and_prepare()`); until then asking for the data
raises a FileNotFoundError that says so.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import seqio
import tensorflow as tf

from tasks.downstream import text_features
from tasks.tfds_source import ReadOnlyTfdsSource  # never downloads

TFDS_NAME = "squad/v1.1:3.*.*"
# Split name -> TFDS split: the paper's test set is SQuAD's validation set.
SPLITS = {"train": "train", "validation": "validation", "test": "validation"}


def pad_punctuation(text: tf.Tensor) -> tf.Tensor:
  """Spaces around every character that is not a letter, digit, '_' or space; then
  whitespace runs become one space and the ends are stripped (T5's convention)."""
  text = tf.strings.regex_replace(text, r"([^_\p{L}\p{N}\p{Z}])", r" \1 ")
  text = tf.strings.regex_replace(text, r"\s+", " ")
  return tf.strings.strip(text)


def squad_example(x: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """One TFDS SQuAD example -> {inputs, targets, answers, id, question, context}."""
  answers = pad_punctuation(x["answers"]["text"])
  question = pad_punctuation(x["question"])
  context = pad_punctuation(x["context"])
  inputs = tf.strings.join(["question:", question, "context:", context], separator=" ")
  return {"inputs": inputs, "targets": answers[0], "answers": answers,
          "id": x["id"], "question": question, "context": context}


def squad_preprocessor(ds: tf.data.Dataset) -> tf.data.Dataset:
  """Formats SQuAD examples; drops any without a gold answer."""
  ds = ds.filter(lambda x: tf.size(x["answers"]["text"]) > 0)
  return ds.map(squad_example, num_parallel_calls=tf.data.AUTOTUNE)


def postprocess_squad(output: Any, example: Optional[Mapping[str, Any]] = None,
                      is_target: bool = False) -> Any:
  """A prediction -> its text; a target -> the list of all gold answers of `example`."""
  if is_target and example is not None and "answers" in example:
    answers = text_features._as_text(example["answers"])  # pylint: disable=protected-access
    return [answers] if isinstance(answers, str) else list(answers)
  return text_features._as_text(output)  # pylint: disable=protected-access


def register_squad_task(name: str = "squad", *,
                        vocabulary: Optional[seqio.Vocabulary] = None,
                        tfds_name: str = TFDS_NAME,
                        tfds_data_dir: Optional[str] = None) -> seqio.Task:
  """Registers SQuAD 1.1 as `name` (text vocabulary unless `vocabulary` is given)."""
  vocabulary = vocabulary if vocabulary is not None else text_features.TEXT_VOCABULARY
  text_features.DOWNSTREAM_TASK_NAMES.add(name)
  return seqio.TaskRegistry.add(
      name,
      source=ReadOnlyTfdsSource(tfds_name, SPLITS, tfds_data_dir=tfds_data_dir),
      output_features=text_features.text_features(vocabulary),
      preprocessors=[squad_preprocessor, seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=postprocess_squad,
      metric_fns=[text_features.METRIC_FNS["squad"]],
  )


register_squad_task()
