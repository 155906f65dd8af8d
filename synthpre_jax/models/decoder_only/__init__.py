"""The decoder-only Transformer family (causal or prefix LM; see docs/models.md)."""

from synthpre_jax.models.decoder_only.config import DecoderOnlyConfig
from synthpre_jax.models.decoder_only.network import DecoderOnly

__all__ = ["DecoderOnly", "DecoderOnlyConfig"]
