"""Evaluation-only jobs: scoring a model (and adapter) on a benchmark without training."""
