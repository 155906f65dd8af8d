"""Parameter statistics of checkpoints: python -m synthpre_jax.param_stats (see synthpre_jax/init/param_stats.py)."""
import sys

from synthpre_jax.init.param_stats import main

if __name__ == "__main__":
  sys.exit(main())
