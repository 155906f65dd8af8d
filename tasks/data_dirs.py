"""Where the project's file-based tasks read their data: Gin bindings, TensorFlow-free.

`gin/finetune.gin` binds `downstream_data_dir.path = %DOWNSTREAM_DATA_DIR`; the
text-file tasks (tasks/downstream/text_files.py) read it when they load a split.
"""
from __future__ import annotations

from typing import Optional

import gin


@gin.configurable(module=None)
def downstream_data_dir(path: Optional[str] = None) -> Optional[str]:
  """The directory of the paper's downstream `<task>/{train,valid,test}.txt` files as
  bound in Gin (None: unset; $SYNTHPRE_DOWNSTREAM_DATA_DIR is read by the loader)."""
  return str(path) if path not in (None, "") else None
