"""TFDS sources for the project's tasks that never download at run time.

seqio's TfdsDataSource would call download_and_prepare when the data is missing; these
read only, and a missing dataset is a FileNotFoundError that says how to prepare it.
Used by SQuAD, C4 and the text-classification tasks.
"""
from __future__ import annotations

from typing import Mapping, Optional

import seqio
import tensorflow as tf


def tfds_prepare_hint(tfds_name: str, note: str = "") -> str:
  """How to prepare a TFDS dataset so that the read-only tasks find it."""
  bare = tfds_name.split(":")[0]
  return (f"Prepare it once where the network can be reached: `tfds build {bare}` (or "
          f"python -c \"import tensorflow_datasets as tfds; "
          f"tfds.builder('{bare}').download_and_prepare()\"){note}, then copy the data "
          f"directory here or point $TFDS_DATA_DIR at it (default ~/tensorflow_datasets).")


class ReadOnlyTfdsSource(seqio.TfdsDataSource):
  """A TfdsDataSource that never downloads and says how to prepare missing data
  (`prepare_note` is added to the hint that names the dataset)."""

  def __init__(self, tfds_name: str, splits: Mapping[str, str],
               tfds_data_dir: Optional[str] = None, prepare_note: str = ""):
    super().__init__(tfds_name=tfds_name, splits=dict(splits),
                     tfds_data_dir=tfds_data_dir, read_only=True)
    self._prepare_note = prepare_note

  def num_input_examples(self, split: str) -> Optional[int]:
    try:
      return super().num_input_examples(split)
    except (KeyError, AssertionError):  # split sizes unknown: not prepared (or mocked)
      return None

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: Optional[int] = None, shard_info: Optional[seqio.ShardInfo] = None,
                  *, sequence_length: Optional[Mapping[str, int]] = None,
                  use_cached: bool = False, num_epochs: Optional[int] = 1
                  ) -> tf.data.Dataset:
    try:
      return super().get_dataset(split=split, shuffle=shuffle, seed=seed,
                                 shard_info=shard_info, sequence_length=sequence_length,
                                 use_cached=use_cached, num_epochs=num_epochs)
    except AssertionError as e:  # tfds: "could not find data in <dir>" / bad version
      name = self.tfds_dataset.name
      raise FileNotFoundError(
          f"TFDS dataset {name} (split {split!r}) is not prepared: "
          f"{str(e).rstrip('. ')}. "
          f"{tfds_prepare_hint(name, self._prepare_note)}") from e
