"""Train a model: python -m synthpre_jax.train --gin_file=... (see synthpre_jax/cli/train.py)."""
import sys

from synthpre_jax.cli.train import main

if __name__ == "__main__":
  sys.exit(main())
