"""Evaluation: downstream metrics, checkpoint choice and result records."""
