"""Run environment: CPU threads, distributed rank / world size, library versions, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

from asymlora.measure import peak_memory_bytes  # noqa: F401 - the runner's record reads it from here


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def set_threads(threads: int | None = None) -> int:
    """Intra-op CPU threads: ``threads`` if given, else the cores available to this process divided
    by the processes on this node (so ``torchrun --nproc_per_node 2`` does not oversubscribe).
    Returns the number set. (On a GPU the value only affects CPU-side work.)"""
    if threads is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover (macOS)
            cores = os.cpu_count() or 1
        threads = max(1, cores // max(1, local_world_size()))
    torch.set_num_threads(int(threads))
    return int(threads)


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores)"


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("asymlora", "torch", "transformers", "peft", "datasets", "accelerate"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    """The commit of the source tree asymlora runs from (``+dirty`` if modified), or None."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
