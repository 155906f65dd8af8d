"""LSTM baselines of "To Pretrain or Not to Pretrain" (Wang et al. 2020): an
encoder-decoder with attention and a text classifier (see docs/models.md)."""

from synthpre_jax.models.lstm.cells import reverse_index, token_lengths
from synthpre_jax.models.lstm.classifier import LSTMClassifier
from synthpre_jax.models.lstm.config import LSTMConfig
from synthpre_jax.models.lstm.seq2seq import LSTMSeq2Seq

__all__ = ["LSTMClassifier", "LSTMConfig", "LSTMSeq2Seq", "reverse_index",
           "token_lengths"]
