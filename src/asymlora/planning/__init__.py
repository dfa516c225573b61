"""Memory planning from a model config: meta-device traces, per-layer rules, validation against the bench."""
