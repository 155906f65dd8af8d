"""T5 encoder-decoder models (T5X parameter names, logical axes)."""

from synthpre_jax.models.config import T5Config
from synthpre_jax.models.network import Transformer

__all__ = ["T5Config", "Transformer"]
