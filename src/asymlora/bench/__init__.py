"""Benchmarks against PEFT: speed, memory and file size, written to files (never timed tests)."""
