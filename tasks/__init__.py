"""SeqIO task registrations and the generators behind them; `import tasks` registers all.

Registration needs seqio (and so TensorFlow). Where seqio is not installed (lean
accelerator hosts, benchmarks) it is skipped, so the TF-free generators under
`tasks.synthetic` stay importable without TensorFlow.
"""
import importlib.util

if importlib.util.find_spec("seqio") is not None:
  from tasks import registry  # noqa: F401  (registers the tasks)
  from tasks import fixed_splits  # noqa: F401  (registers the <task>_fixed tasks)
  from tasks import downstream  # noqa: F401  (registers scan_* and the paper's six tasks)
  from tasks import nonsense  # noqa: F401  (registers nonsense_summary)
  from tasks import natural  # noqa: F401  (registers c4_span_corruption, corpus_span_corruption)
  from tasks import classification  # noqa: F401  (yelp_polarity_reviews, imdb_reviews, ag_news_subset)
