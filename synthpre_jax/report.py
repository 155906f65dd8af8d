"""A study's report: python -m synthpre_jax.report STUDY_DIR (see synthpre_jax/study/report.py)."""
import sys

from synthpre_jax.study.report import main

if __name__ == "__main__":
  sys.exit(main())
