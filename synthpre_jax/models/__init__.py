"""Model families (T5 encoder-decoder, LSTM baselines) and their registry.

Importing this package registers the built-in families (`T5Config`, `LSTMConfig`);
see synthpre_jax/models/registry.py for adding one.
"""

from synthpre_jax.models import registry
from synthpre_jax.models.config import T5Config
from synthpre_jax.models.lstm import LSTMConfig
from synthpre_jax.models.network import Transformer
from synthpre_jax.models.registry import ModelConfig

__all__ = ["LSTMConfig", "ModelConfig", "T5Config", "Transformer", "registry"]
