"""SeqIO task registrations and the generators behind them; `import tasks` registers all.

Registration needs seqio (and so TensorFlow). Where seqio is not importable (lean
accelerator hosts, benchmarks) it is skipped, so the TF-free generators under
`tasks.synthetic` stay importable without TensorFlow; the synthetic streams are then
still registered as native (TensorFlow-free) sources (`tasks/synthetic_streams.py`), and
so are their cached fixed splits (`tasks/fixed_split_source.py`). It is also deferred while
`python -m tasks.inspect` (a `TF_FREE_TOOLS` entry) starts, so that its `--help` and
synthetic examples need no TensorFlow; such a tool calls `register_all()` when it needs
the SeqIO registry.
"""
import sys

from tasks import data_dirs  # noqa: F401  (registers the Gin binding downstream_data_dir)
from tasks import synthetic_streams  # noqa: F401  (registers the native synthetic sources)
from tasks import fixed_split_source  # noqa: F401  (registers the native `_fixed` sources)

# Command-line tools of this package whose start must not import TensorFlow.
TF_FREE_TOOLS = ("tasks.inspect",)


def register_all() -> None:
  """Registers every project task with SeqIO (idempotent; a no-op without seqio)."""
  try:
    import seqio  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:  # not installed, or tensorflow missing under it
    return
  # pylint: disable=g-import-not-at-top,unused-import
  from tasks import registry  # noqa: F401  (registers the tasks)
  from tasks.fixed_splits import seqio_tasks  # noqa: F401  (registers the <task>_fixed tasks)
  from tasks import downstream  # noqa: F401  (registers scan_* and the paper's six tasks)
  from tasks import nonsense  # noqa: F401  (registers nonsense_summary)
  from tasks import natural  # noqa: F401  (registers the span-corruption and LM tasks)
  from tasks import procedural_in_text  # noqa: F401  (<lm task>_with_<formal>_<p>pct)
  from tasks import classification  # noqa: F401  (yelp_polarity_reviews, imdb_reviews, ag_news_subset)
  from tasks import subsets  # noqa: F401  (the on-demand `<task>_train<N>` subsets)


def _starting_tf_free_tool() -> bool:
  """True while `python -m <tool>` imports this package, <tool> in TF_FREE_TOOLS
  (Python sets sys.argv[0] to '-m' until the module is found)."""
  if sys.argv[:1] != ["-m"]:
    return False
  argv = list(getattr(sys, "orig_argv", ()))
  for i, arg in enumerate(argv):
    if arg == "-m":
      return i + 1 < len(argv) and argv[i + 1] in TF_FREE_TOOLS
    if arg.startswith("-m"):
      return arg[2:] in TF_FREE_TOOLS
  return False


if not _starting_tf_free_tool():
  register_all()
