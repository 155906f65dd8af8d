"""Builds (or verifies and reuses) the fixed-split caches of registered `_fixed` tasks.

    python -m tasks.build_fixed_splits set_fixed lime_deduct_fixed [--cache_dir DIR]
        [--num_workers N]

Run it once before a multi-host job whose hosts share the cache directory, so that
the hosts do not each build it on their first `get_dataset`. The cache directory
defaults to $SYNTHPRE_DATA_DIR, else ~/.cache/synthpre_jax/synthetic. Mixture names
(e.g. `simple_tasks_fixed`) build all of their tasks.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import seqio

from tasks.fixed_splits import seqio_tasks  # noqa: F401  (registers the `_fixed` tasks)
from tasks.fixed_splits import specs


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("names", nargs="+", help="registered *_fixed tasks or mixtures")
  parser.add_argument("--cache_dir", default=None,
                      help="default: $SYNTHPRE_DATA_DIR or ~/.cache/synthpre_jax/synthetic")
  parser.add_argument("--num_workers", type=int, default=None,
                      help="generator processes (default: usable cores for >= 100k)")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

  names = []
  for name in args.names:
    if name in specs.FIXED_TASKS:
      names.append(name)
    elif name in seqio.MixtureRegistry.names():
      names += [t.name for t in seqio.get_mixture_or_task(name).tasks]
    else:
      parser.error(f"{name!r} is not a registered fixed-split task or mixture; known "
                   f"tasks: {', '.join(sorted(specs.FIXED_TASKS))}")
  for name in names:
    fixed = specs.ensure_built(name, cache_dir=args.cache_dir,
                                      num_workers=args.num_workers)
    m = fixed.manifest
    print(f"{name}: {'reused' if fixed.reused else 'built'} {fixed.directory} "
          f"(train {m['splits']['train']['num_examples']}, validation "
          f"{m['splits']['validation']['num_examples']}, {m['num_duplicates_dropped']} "
          f"duplicates dropped, built in {m['build_seconds']} s at "
          f"{m['examples_per_second']} examples/s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
