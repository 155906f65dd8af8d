"""Evaluate a run's checkpoint: python -m synthpre_jax.evaluate ... (see synthpre_jax/cli/evaluate.py)."""
import sys

from synthpre_jax.cli.evaluate import main

if __name__ == "__main__":
  sys.exit(main())
