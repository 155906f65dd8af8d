"""Downstream (fine-tuning) tasks and their SeqIO registrations; importing registers them.

`tasks.downstream.scan` (the SCAN generator) and `tasks.wordnet` are pure Python. The registrations need
seqio (and so TensorFlow); where it is not installed they are skipped, so the generator
stays importable on lean hosts (the same rule as `tasks/__init__.py`).
"""
import importlib.util

from tasks.downstream import scan

if importlib.util.find_spec("seqio") is not None:
  from tasks.downstream import squad, text_files  # noqa: F401  (the paper's six tasks)
  from tasks.downstream import wordnet
  from tasks.downstream import length_report  # noqa: F401  (overlong-example warnings)
  scan.register_seqio_tasks()  # scan_simple, scan_length, scan_addprim_jump
  wordnet.register_seqio_tasks()  # wordnet_reverse_dictionary, wordnet_definitions
