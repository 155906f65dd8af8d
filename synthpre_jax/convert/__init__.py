"""Checkpoint conversion: public T5 checkpoints in, Hugging Face T5 out.

    python -m synthpre_jax.convert from-hf  <hf dir> <out>      # config.json + weights
    python -m synthpre_jax.convert from-t5x <t5x checkpoint> <out>
    python -m synthpre_jax.convert to-hf    <project checkpoint> <out>

`from-*` write a project checkpoint (`<out>/checkpoints/<step>/params`, the layout of a
training run) and `<out>/model.gin`, so `INITIAL_CHECKPOINT_PATH=<out>` fine-tunes from
it. `to-hf` writes config.json + model.safetensors for `transformers`. Paths go through
etils.epath (local or gs://). Modules: `hf` (HF mapping and files), `t5x` (T5X
layouts), `project` (checks, project checkpoints, Gin model files), `commands`.
"""

from synthpre_jax.convert.commands import from_hf, from_t5x, to_hf
from synthpre_jax.convert.project import ConversionError

__all__ = ["ConversionError", "from_hf", "from_t5x", "to_hf"]
