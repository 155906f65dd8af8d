"""Initializations from parameter statistics and other sources (init transforms)."""
