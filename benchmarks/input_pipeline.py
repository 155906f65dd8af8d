"""Input-pipeline speed: batches/s and tokens/s of `pipeline.get_batches` per task.

  python benchmarks/input_pipeline.py                       # scan_simple vs set_tiny
  python benchmarks/input_pipeline.py --task scan_simple:20,50 --batches 400
  python benchmarks/input_pipeline.py --digest scan_simple_train1000_seed0:20,50
  python benchmarks/input_pipeline.py --task scan_simple_retokenize:20,50   # old SCAN

`scan_simple_retokenize` is scan_simple as it was registered before its source kept the
tokenized split: text source, seqio's `tokenize` preprocessor on every epoch.

Tokens are the non-padding encoder inputs plus decoder targets of each batch. The first
`--warmup` batches (pipeline start, first epoch of a cached source) are timed apart.
`--digest` prints a SHA-256 of the first `--batches` batches instead (bit-identity checks).
"""
from __future__ import annotations

import argparse
import hashlib
import time
from typing import Iterator, Sequence

import numpy as np

from synthpre_jax.data import pipeline

DEFAULT_TASKS = ("set_tiny:68,68", "scan_simple:20,50")


def batches(task: str, lengths: tuple[int, int], batch_size: int,
            seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """The training stream the trainer reads (shuffled with `seed`, endless)."""
  return pipeline.get_batches(
      task_name=task, feature_lengths={"inputs": lengths[0], "targets": lengths[1]},
      split="train", global_batch_size=batch_size, seed=seed, shuffle=True,
      process_index=0, process_count=1)


def digest(stream: Iterator[dict[str, np.ndarray]], n: int) -> str:
  """SHA-256 over the first n batches (keys sorted, int32 bytes)."""
  h = hashlib.sha256()
  for _ in range(n):
    b = next(stream)
    for k in sorted(b):
      h.update(k.encode())
      h.update(np.ascontiguousarray(b[k], np.int32).tobytes())
  return h.hexdigest()


def measure(stream: Iterator[dict[str, np.ndarray]], n: int, warmup: int
            ) -> dict[str, float]:
  """Seconds for `warmup` batches, then batches/s, tokens/s and CPU ms (all threads)
  per batch over the next n."""
  t0 = time.perf_counter()
  for _ in range(warmup):
    next(stream)
  t1, c1 = time.perf_counter(), time.process_time()
  tokens = 0
  for _ in range(n):
    b = next(stream)
    tokens += int((b["encoder_input_tokens"] != 0).sum())
    tokens += int((b["decoder_target_tokens"] != 0).sum())
  dt, cpu = time.perf_counter() - t1, time.process_time() - c1
  return {"warmup_s": t1 - t0, "batches_per_s": n / dt, "tokens_per_s": tokens / dt,
          "tokens_per_batch": tokens / n, "cpu_ms_per_batch": 1e3 * cpu / n}


def register_retokenizing_scan() -> str:
  """Registers `scan_simple_retokenize` (tokenized every epoch, as before); its name."""
  import seqio  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tasks  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from tasks.downstream import scan, text_features  # pylint: disable=g-import-not-at-top
  name = "scan_simple_retokenize"

  def dataset_fn(split: str, shuffle_files: bool, seed=None):
    del shuffle_files, seed
    examples = scan.split_examples("simple", split)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": [c for c, _ in examples],
        "targets": [scan.to_target_words(a) for _, a in examples]})

  if name not in seqio.TaskRegistry.names():
    seqio.TaskRegistry.add(
        name, source=seqio.FunctionDataSource(
            dataset_fn, splits=scan.SPLITS, num_input_examples={
                s: len(scan.split_examples("simple", s)) for s in scan.SPLITS}),
        output_features=text_features.text_features(text_features.TEXT_VOCABULARY),
        preprocessors=[seqio.preprocessors.tokenize,
                       seqio.preprocessors.append_eos_after_trim], metric_fns=[])
  return name


def _parse(spec: str) -> tuple[str, tuple[int, int]]:
  name, lengths = spec.split(":")
  inputs, targets = (int(x) for x in lengths.split(","))
  return name, (inputs, targets)


def main(argv: Sequence[str] | None = None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--task", action="append", default=None,
                 help="NAME:INPUTS,TARGETS (repeatable)")
  p.add_argument("--digest", default=None, help="NAME:INPUTS,TARGETS to hash")
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--batches", type=int, default=200)
  p.add_argument("--warmup", type=int, default=20)
  args = p.parse_args(argv)
  register_retokenizing_scan()
  if args.digest:
    name, lengths = _parse(args.digest)
    print(name, args.batches, digest(batches(name, lengths, args.batch_size), args.batches))
    return
  for spec in args.task or DEFAULT_TASKS:
    name, lengths = _parse(spec)
    r = measure(batches(name, lengths, args.batch_size), args.batches, args.warmup)
    print(f"{name}: {r['batches_per_s']:.1f} batches/s, {r['tokens_per_s']:.0f} "
          f"tokens/s, {r['cpu_ms_per_batch']:.1f} CPU ms a batch ({r['tokens_per_batch']:.0f} "
          f"tokens a batch of {args.batch_size}); "
          f"first {args.warmup} batches {r['warmup_s']:.2f} s", flush=True)


if __name__ == "__main__":
  main()
