"""Model families (T5 encoder-decoder, decoder-only, LSTM baselines) and their registry.

Importing this package registers the built-in families (`T5Config`, `LSTMConfig`,
`DecoderOnlyConfig`); see synthpre_jax/models/registry.py for adding one.
"""

from synthpre_jax.models import registry
from synthpre_jax.models.config import T5Config
from synthpre_jax.models.lstm import LSTMConfig
# Registered after the LSTM family: registration order is the order error messages list.
from synthpre_jax.models.decoder_only import DecoderOnlyConfig  # pylint: disable=g-bad-import-order
from synthpre_jax.models.network import Transformer
from synthpre_jax.models.registry import ModelConfig

__all__ = ["DecoderOnlyConfig", "LSTMConfig", "ModelConfig", "T5Config", "Transformer",
           "registry"]
