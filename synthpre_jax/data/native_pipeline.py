"""The TensorFlow-free input path: a `native.NativeSource` to the trainer's numpy batches.

It makes what `pipeline.get_batches` makes through SeqIO for the same task (the Task's
append_eos_after_trim, then `seqio.EncDecFeatureConverter(pack=False)`, batched per
input shard and concatenated in shard order), bit for bit; tests/test_native_pipeline.py
and tests/test_native_fixed_splits.py compare the two. A finite split (a source with
`shard_size`) is repeated `num_epochs` times (None: forever), batches running across
epochs as SeqIO's repeat-then-batch does. numpy only. Resume seeks: `start_step` starts
each shard at example start_step * rows (epoch and offset) instead of regenerating the
skipped batches. Packing is not implemented (the SeqIO path packs).
"""
from __future__ import annotations

from typing import Iterator, Mapping, Optional

import numpy as np

from synthpre_jax.data import native


def _trim_eos_pad(values: np.ndarray, lengths: np.ndarray, length: int,
                  eos_id: int) -> np.ndarray:
  """Rows of a ragged array cut to `length` - 1 ids, EOS appended, zero-padded to
  `length`: [rows, length] int32 (seqio's append_eos_after_trim, then its padding)."""
  lengths = np.asarray(lengths, np.int64)
  starts = np.zeros(len(lengths), np.int64)
  np.cumsum(lengths[:-1], out=starts[1:])
  kept = np.minimum(lengths, length - 1)
  pos = np.arange(length, dtype=np.int64)
  values = np.concatenate([np.asarray(values, np.int32), np.zeros(1, np.int32)])
  gather = np.minimum(starts[:, None] + pos, len(values) - 1)
  out = np.where(pos < kept[:, None], values[gather], 0).astype(np.int32)
  out[np.arange(len(lengths)), kept] = eos_id
  return out


def encdec_features(block: native.Block, feature_lengths: Mapping[str, int],
                    eos_id: int) -> dict[str, np.ndarray]:
  """The unpacked encoder-decoder features of a ragged block, int32 [rows, length]:
  inputs and targets trimmed, EOS appended, padded; decoder inputs = targets shifted
  right (0 first); loss weights = 1 on non-padding targets."""
  targets = _trim_eos_pad(block.targets, block.target_lengths,
                          feature_lengths["targets"], eos_id)
  decoder_inputs = np.zeros_like(targets)
  decoder_inputs[:, 1:] = targets[:, :-1]
  return {
      "encoder_input_tokens": _trim_eos_pad(block.inputs, block.input_lengths,
                                            feature_lengths["inputs"], eos_id),
      "decoder_target_tokens": targets,
      "decoder_input_tokens": decoder_inputs,
      "decoder_loss_weights": (targets != 0).astype(np.int32),
  }


def _epochs(source: native.NativeSource, *, split: str, shard_index: int,
            num_shards: int, seed: Optional[int], start: int,
            num_epochs: Optional[int]) -> Iterator[native.Block]:
  """The shard's blocks from position `start` of its (repeated) stream."""
  where = dict(shard_index=shard_index, num_shards=num_shards)
  size = source.shard_size(split, **where) if hasattr(source, "shard_size") else None
  if size is None:  # endless
    yield from source.blocks(split, seed=seed, start=start, **where)
    return
  if size == 0:
    return
  epoch, offset = divmod(int(start), size)
  while num_epochs is None or epoch < num_epochs:
    yield from source.blocks(split, seed=seed, start=offset, **where)
    epoch, offset = epoch + 1, 0


def _shard_batches(source: native.NativeSource, *, split: str, shard_index: int,
                   num_shards: int, seed: Optional[int], start: int, rows: int,
                   feature_lengths: Mapping[str, int], eos_id: int,
                   num_epochs: Optional[int], drop_remainder: bool
                   ) -> Iterator[dict[str, np.ndarray]]:
  """Batches of `rows` examples of one shard from shard position `start` (a short last
  one when a finite stream ends, unless `drop_remainder`)."""
  pending: list[dict[str, np.ndarray]] = []
  have = 0
  for block in _epochs(source, split=split, shard_index=shard_index,
                       num_shards=num_shards, seed=seed, start=start,
                       num_epochs=num_epochs):
    pending.append(encdec_features(block, feature_lengths, eos_id))
    have += len(block.input_lengths)
    if have < rows:
      continue
    merged = {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}
    for at in range(0, have - rows + 1, rows):
      yield {k: v[at:at + rows] for k, v in merged.items()}
    used = have - have % rows
    pending = [{k: v[used:] for k, v in merged.items()}]
    have -= used
  if have and not drop_remainder:
    yield {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}


def shard_iterators(source: native.NativeSource, *, feature_lengths: Mapping[str, int],
                    split: str, shards: range, input_shards: int, rows: int,
                    seed: Optional[int], start_step: int,
                    num_epochs: Optional[int] = None,
                    drop_remainder: bool = True) -> list[Iterator]:
  """One batch iterator per input shard in `shards` (see `pipeline.get_batches`)."""
  eos_id = int(getattr(source.vocabulary, "eos_id", 1))
  lengths = {k: int(feature_lengths[k]) for k in ("inputs", "targets")}
  return [_shard_batches(source, split=split, shard_index=shard, num_shards=input_shards,
                         seed=seed, start=start_step * rows, rows=rows,
                         feature_lengths=lengths, eos_id=eos_id, num_epochs=num_epochs,
                         drop_remainder=drop_remainder) for shard in shards]
