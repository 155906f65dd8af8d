"""Run a study: python -m synthpre_jax.study --gin_file=gin/studies/quickstart.gin."""
import sys

from synthpre_jax.study.runner import main

if __name__ == "__main__":
  sys.exit(main())
