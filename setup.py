"""Install synthpre_jax, the SeqIO task package `tasks`, and the Gin files."""

import setuptools

# Versions that resolve together on Python 3.11 (jax 0.10.x is the newest the package
# index offers here; the code also runs on the 0.11.x of common GPU images).
INSTALL_REQUIRES = [
    "jax>=0.10.0,<0.12",
    "jaxlib>=0.10.0,<0.12",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "gin-config==0.5.0",
    "clu==0.0.12",
    "numpy>=2.0,<3",
    "etils[epath]>=1.7",
    "matplotlib==3.11.2",  # param_stats --plot and study reports (imported when plotting)
    "rouge-score==0.1.2",  # ROUGE-1/2/L for summarization tasks (synthpre_jax.evaluation.metrics)
    "safetensors==0.8.0",  # Hugging Face checkpoints (synthpre_jax.convert)
    "tqdm==4.70.1",  # progress bars on a terminal (synthpre_jax.cli.console)
]
# The data layer (SeqIO tasks, TFDS loaders, TensorBoard summaries), installed by
# default. The core (model, trainer, checkpoints) never imports them at module level,
# so it also runs where they are absent (e.g. a lean GPU image: `pip install --no-deps`).
DATA_REQUIRES = [
    "seqio==0.0.20",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",
    "sentencepiece==0.2.3",  # the project's text vocabulary (tasks/vocab)
    "numba==0.68.1",  # compiled synthetic-task generators (tasks/synthetic/kernels.py)
]
# transformers + the CPU build of torch: only to check HF conversion against the reference.
TEST_REQUIRES = ["pytest==9.2.0", "transformers==5.23.0", "torch==2.13.0"]

setuptools.setup(
    name="synthpre_jax",
    version="0.1.0",
    description="How much of pre-training's benefit survives when pre-training is made "
                "simpler: synthetic, natural and statistics-only pre-training of T5 in JAX.",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["synthpre_jax", "synthpre_jax.*",
                                               "tasks", "tasks.*"])
    + ["synthpre_jax_gin"],
    package_dir={"synthpre_jax_gin": "gin"},
    package_data={"synthpre_jax_gin": ["*.gin", "*/*.gin", "*/*/*.gin"],
                  "tasks.corpus": ["python_docs.txt.gz", "LICENSE", "README.md"],
                  "tasks.wordnet": ["wordnet_glosses.tsv.gz", "LICENSE", "README.md"],
                  "tasks.vocab": ["synthpre_en_8k.model", "synthpre_en_8k.vocab"]},
    install_requires=INSTALL_REQUIRES + DATA_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    entry_points={"console_scripts": [
        "synthpre-train=synthpre_jax.cli.train:main",
        "synthpre-param-stats=synthpre_jax.init.param_stats:main",
        "synthpre-convert=synthpre_jax.convert.__main__:main",
        "synthpre-evaluate=synthpre_jax.cli.evaluate:main",
        "synthpre-study=synthpre_jax.study.runner:main",
        "synthpre-report=synthpre_jax.study.report:main",
    ]},
)
