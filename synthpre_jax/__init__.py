"""synthpre_jax: how much of pre-training's benefit survives when pre-training is made simpler."""

__version__ = "0.1.0"
