"""The data layer: SeqIO tasks to per-process numpy batches for the trainer."""
