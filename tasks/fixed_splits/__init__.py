"""The paper's fixed, deduplicated splits of the synthetic tasks, cached as TFRecords.

Generate 1,050,000 examples, drop duplicate inputs, keep 1,000,000 train and 10,000
validation examples (the paper's "Shared encoding" of the synthetic tasks); a
`<task>_fixed` task reads the cached result. By concern:

- `records`: the files' record format, the tf.data reader, the TF-free decoder;
- `cache`: cache directory and key, manifest, verification, stale temp directories;
- `build`: generation, deduplication and the atomic build (`build_fixed_splits`);
- `specs`: which catalogue task each `_fixed` task is drawn from, its sizes, and
  `ensure_built` (TensorFlow-free);
- `seqio_tasks`: the SeqIO `_fixed` tasks and mixtures (needs seqio).

The native (TensorFlow-free) sources are in `tasks/fixed_split_source.py`; the
decisions behind the format, the cache and the build are in docs/tasks.md.
"""
