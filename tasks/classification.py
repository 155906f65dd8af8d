"""Text classification tasks of "To Pretrain or Not to Pretrain" (Wang et al., 2020).

Registered at import, each from TFDS (read-only: never downloads; a missing dataset
raises a FileNotFoundError saying how to prepare it or set $TFDS_DATA_DIR):

| task                  | TFDS                         | input              | label words |
|-----------------------|------------------------------|--------------------|-------------|
| yelp_polarity_reviews | yelp_polarity_reviews:0.2.*  | text               | negative, positive |
| imdb_reviews          | imdb_reviews/plain_text:1.*.*| text               | negative, positive |
| ag_news_subset        | ag_news_subset:1.*.*         | title + " " + description | world, sports, business, technology |
| amazon_books_polarity | amazon_us_reviews/Books_v1_02:0.1.* | review_headline + " " + review_body | negative, positive |

amazon_books_polarity is the multi-million-example task (TFDS has no Amazon polarity or
Yahoo! Answers builder): the US book reviews of amazon_us_reviews, labelled as Zhang et
al. (2015) built Amazon polarity: 1-2 stars negative, 4-5 positive; 3-star reviews are
dropped by the preprocessor (after any subset sampling, so a `_train<N>` subset of it
holds N reviews minus its 3-star ones). The TFDS builder has only a 'train' split, so
its splits are train[:90%] / train[90%:95%] / train[95%:]. The builder downloads TSV
files from Amazon's amazon-reviews-pds S3 bucket, which may no longer be public; where
the download fails, copy in an already prepared TFDS data directory.

For the T5 models the target is the label WORD (index = TFDS label id: yelp '1' -> 1-2
stars -> negative, imdb neg/pos, AG News World / Sports / Business / Sci/Tech). The
words are lower-case English words whose first piece differs between the classes of a
task in the shipped 8k vocabulary; pieces there: negative 1, positive 1, world 1,
sports 4, business 4, technology 2 (the 8k model was trained on Python documentation,
which has no single piece for "sports" or "business"). Metric: `accuracy`, the
percentage of predictions equal to the label word (raw string equality, i.e. exact
match). The input has no task prefix (each task is fine-tuned alone).

Text clean-up (the same for T5 and the LSTM): HTML line breaks (`<br />`, in IMDB) and
literal backslash-n sequences (in the Yelp CSV) become spaces; Yelp's CSV-doubled quotes
`""` become `"`; runs of whitespace collapse to one space; ends are stripped.

Splits: 'train' = the first 90% of TFDS train, 'validation' = its last 10% (for
checkpoint selection; the TFDS test sets are not used for it), 'test' = TFDS test
(amazon_books_polarity: above).
Sizes with the full data: yelp 504,000 / 56,000 / 38,000; imdb 22,500 / 2,500 / 25,000;
ag_news 108,000 / 12,000 / 7,600. TFDS writes examples in a hashed (shuffled) order, so
both parts of train are random samples of it. Training-set sizes for studies:
`tasks.subsets` (`<task>_train<N>_seed<S>` = a seeded random N of 'train').

Without T5 targets (an LSTM classifier): every example also carries `label` (int32, the
TFDS class id); `classification_examples(task, split, limit)` returns (text, label,
tokens) records, where `tokens` are the T5 inputs (text vocabulary ids + EOS) so that a
model sharing the T5 embedding sees the same ids; `CLASSIFICATION_TASKS[task]` holds the
label words and number of classes.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import seqio
import tensorflow as tf

from tasks import natural, subsets
from tasks.downstream import text_features

VALIDATION_PERCENT = 10
SPLITS = {"train": f"train[:{100 - VALIDATION_PERCENT}%]",
          "validation": f"train[{100 - VALIDATION_PERCENT}%:]",
          "test": "test"}


@dataclasses.dataclass(frozen=True)
class ClassificationInfo:
  """One text classification task: where its data is and how labels are written."""
  name: str
  tfds_name: str
  text_fields: tuple[str, ...]   # joined with one space into the input text
  label_words: tuple[str, ...]   # target word of TFDS label id i
  tfds_label_names: tuple[str, ...]  # the TFDS ClassLabel names, for reference
  csv_quotes: bool = False       # undo CSV quote doubling ("" -> ")
  description: str = ""
  splits: tuple[tuple[str, str], ...] = ()  # (name, TFDS split) pairs; () = SPLITS
  # TFDS example -> its text fields and 'label' (int32; -1 drops the example), for
  # datasets not laid out as {text fields..., 'label'}; None = the example as it is.
  example_fn: Optional[Callable[[Mapping[str, tf.Tensor]], dict[str, tf.Tensor]]] = None

  @property
  def split_map(self) -> dict[str, str]:
    return dict(self.splits) if self.splits else dict(SPLITS)

  @property
  def num_classes(self) -> int:
    return len(self.label_words)

  def __post_init__(self):
    if len(self.label_words) != len(self.tfds_label_names):
      raise ValueError(f"{self.name}: {len(self.label_words)} label words for "
                       f"{len(self.tfds_label_names)} TFDS classes")
    if len(set(self.label_words)) != len(self.label_words):
      raise ValueError(f"{self.name}: label words must be distinct: {self.label_words}")


CLASSIFICATION_TASKS: dict[str, ClassificationInfo] = {info.name: info for info in (
    ClassificationInfo(
        "yelp_polarity_reviews", "yelp_polarity_reviews:0.2.*", ("text",),
        ("negative", "positive"), ("1", "2"), csv_quotes=True,
        description="Yelp review polarity (1-2 stars negative, 3-4 positive)"),
    ClassificationInfo(
        "imdb_reviews", "imdb_reviews/plain_text:1.*.*", ("text",),
        ("negative", "positive"), ("neg", "pos"),
        description="IMDB movie review sentiment"),
    ClassificationInfo(
        "ag_news_subset", "ag_news_subset:1.*.*", ("title", "description"),
        ("world", "sports", "business", "technology"),
        ("World", "Sports", "Business", "Sci/Tech"),
        description="AG News topic (title and description)"),
    ClassificationInfo(
        "amazon_books_polarity", "amazon_us_reviews/Books_v1_02:0.1.*",
        ("review_headline", "review_body"), ("negative", "positive"),
        ("1-2 stars", "4-5 stars"),
        description="Amazon US book review polarity (3-star reviews dropped)",
        splits=(("train", "train[:90%]"), ("validation", "train[90%:95%]"),
                ("test", "train[95%:]")),
        example_fn=lambda x: _star_polarity(x["data"], "review_headline", "review_body")),
)}


# --- preprocessing ---------------------------------------------------------------------

def _star_polarity(x: Mapping[str, tf.Tensor], *text_fields: str) -> dict[str, tf.Tensor]:
  """A star-rated review -> its text fields and label 0 (1-2 stars), 1 (4-5), -1 (else)."""
  stars = tf.cast(x["star_rating"], tf.int32)
  label = tf.where((stars >= 1) & (stars <= 2), 0,
                   tf.where((stars >= 4) & (stars <= 5), 1, -1))
  return {**{f: x[f] for f in text_fields}, "label": label}


def clean_text(text: tf.Tensor, csv_quotes: bool = False) -> tf.Tensor:
  """The clean-up of the module docstring, in TF string ops."""
  text = tf.strings.regex_replace(text, r"(?i)<br\s*/?>", " ")
  text = tf.strings.regex_replace(text, r"\\n", " ")
  if csv_quotes:
    text = tf.strings.regex_replace(text, r'""', '"')
  text = tf.strings.regex_replace(text, r"\s+", " ")
  return tf.strings.strip(text)


def format_example(x: Mapping[str, tf.Tensor], info: ClassificationInfo
                   ) -> dict[str, tf.Tensor]:
  """A TFDS example -> {'inputs': text, 'targets': label word, 'label': class id}."""
  text = tf.strings.join([x[f] for f in info.text_fields], separator=" ")
  label = tf.cast(x["label"], tf.int32)
  words = tf.constant(info.label_words)
  return {"inputs": clean_text(text, info.csv_quotes),
          "targets": tf.gather(words, label), "label": label}


def classification_preprocessor(ds: tf.data.Dataset, info: ClassificationInfo
                                ) -> tf.data.Dataset:
  if info.example_fn is not None:
    ds = ds.map(info.example_fn, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda x: x["label"] >= 0)
  return ds.map(functools.partial(format_example, info=info),
                num_parallel_calls=tf.data.AUTOTUNE)


def _as_text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """{'accuracy': % of predictions equal to their target label word (raw equality)}."""
  if len(targets) != len(predictions):
    raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
  if not targets:
    return {"accuracy": 0.0}
  same = [_as_text(t) == _as_text(p) for t, p in zip(targets, predictions)]
  return {"accuracy": 100.0 * float(np.mean(same))}


def register_classification_task(info: ClassificationInfo, name: Optional[str] = None, *,
                                 vocabulary: Optional[seqio.Vocabulary] = None,
                                 tfds_data_dir: Optional[str] = None,
                                 metric_fns: Optional[Sequence[Callable]] = None
                                 ) -> seqio.Task:
  """Registers `info` as SeqIO task `name` (default info.name); text vocabulary unless
  `vocabulary` is given."""
  name = name or info.name
  vocabulary = vocabulary if vocabulary is not None else text_features.TEXT_VOCABULARY
  text_features.DOWNSTREAM_TASK_NAMES.add(name)
  return seqio.TaskRegistry.add(
      name,
      source=natural.ReadOnlyTfdsSource(info.tfds_name, info.split_map,
                                        tfds_data_dir=tfds_data_dir),
      output_features=text_features.text_features(vocabulary),
      preprocessors=[functools.partial(classification_preprocessor, info=info),
                     seqio.preprocessors.tokenize,
                     seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=text_features.postprocess_text,
      metric_fns=list(metric_fns) if metric_fns is not None else [accuracy],
  )


def register_all() -> None:
  """Registers the tasks of CLASSIFICATION_TASKS (idempotent)."""
  for info in CLASSIFICATION_TASKS.values():
    if info.name not in seqio.TaskRegistry.names():
      register_classification_task(info)


# --- plain (text, label) access, e.g. for an LSTM classifier ----------------------------

@dataclasses.dataclass(frozen=True)
class ClassificationExample:
  text: str            # the cleaned input text
  label: int           # the TFDS class id (index into the task's label words)
  tokens: np.ndarray   # the T5 input ids (text vocabulary, EOS last), untruncated


def _resolve(task_name: str) -> seqio.Task:
  if task_name not in seqio.TaskRegistry.names():
    subsets.ensure_subset_task(task_name)
  task = seqio.get_mixture_or_task(task_name)
  if not isinstance(task, seqio.Task):
    raise ValueError(f"{task_name!r} is a mixture, not a classification task")
  return task


def iter_classification_examples(task_name: str, split: str, *,
                                 limit: Optional[int] = None, shuffle: bool = False,
                                 seed: Optional[int] = None
                                 ) -> Iterator[ClassificationExample]:
  """The examples of `split` of a classification task (or of a `<task>_train<N>` subset)
  in their fixed order (or shuffled with `seed`), the first `limit` of them."""
  if limit is not None and limit < 0:
    raise ValueError(f"limit must be >= 0 or None, got {limit}")
  task = _resolve(task_name)
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=shuffle, seed=seed,
                        num_epochs=1, trim_output_features=False)
  if "label" not in ds.element_spec:
    raise ValueError(f"Task {task_name!r} has no 'label' feature; the classification "
                     f"tasks are: {', '.join(CLASSIFICATION_TASKS)}")
  if limit is not None:
    ds = ds.take(limit)
  for x in ds.as_numpy_iterator():
    yield ClassificationExample(_as_text(x["inputs_pretokenized"]), int(x["label"]),
                                np.asarray(x["inputs"], np.int32))


def classification_examples(task_name: str, split: str, limit: Optional[int] = None,
                            **kwargs) -> list[ClassificationExample]:
  """`iter_classification_examples` as a list."""
  return list(iter_classification_examples(task_name, split, limit=limit, **kwargs))


def classification_info(task_name: str) -> ClassificationInfo:
  """The ClassificationInfo of a task or of one of its `<task>_train...` subsets."""
  if task_name in CLASSIFICATION_TASKS:
    return CLASSIFICATION_TASKS[task_name]
  parsed = subsets.parse_subset_name(task_name)
  if parsed is not None:
    return classification_info(parsed[0])
  raise ValueError(f"{task_name!r} is not a classification task; the classification "
                   f"tasks are: {', '.join(CLASSIFICATION_TASKS)}")


register_all()
