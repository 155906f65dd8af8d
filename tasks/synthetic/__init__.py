"""Synthetic pre-training tasks: token-id layout (config) and compiled generators."""
from tasks.synthetic.config import NAME_PREFIX_LEN, PAPER, TINY, SyntheticConfig
from tasks.synthetic.generators import (GENERATORS, TaskGenerator, generate,
                                        generate_batch, max_lengths, register)
from tasks.synthetic.ragged import Batch

__all__ = [
    "Batch", "GENERATORS", "NAME_PREFIX_LEN", "PAPER", "TINY", "SyntheticConfig",
    "TaskGenerator", "generate", "generate_batch", "max_lengths", "register",
]
