"""Synthetic pre-training tasks: token-id layout (config) and pure-numpy generators."""
from tasks.synthetic.config import NAME_PREFIX_LEN, PAPER, TINY, SyntheticConfig
from tasks.synthetic.generators import (GENERATORS, TaskGenerator, generate,
                                        generate_batch, max_lengths,
                                        partition_no_zeros, rand_tokens, register)
from tasks.synthetic.ragged import Batch

__all__ = [
    "Batch", "GENERATORS", "NAME_PREFIX_LEN", "PAPER", "TINY", "SyntheticConfig",
    "TaskGenerator", "generate", "generate_batch", "max_lengths",
    "partition_no_zeros", "rand_tokens", "register",
]
