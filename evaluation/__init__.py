"""Evaluation runs: a model on a test split (synthesis quality, diversity) or two folders of videos, sharded over
torchrun ranks, with a real-statistics cache and result files (the maths is in :mod:`metrics`)."""
