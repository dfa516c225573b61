"""Where asymlora keeps what it builds once per machine (models, compiled kernels)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder.

    Returns:
        Path: ``$ASYMLORA_CACHE`` when set, else ``~/.cache/asymlora`` (not created here).
    """
    return Path(os.environ.get("ASYMLORA_CACHE") or Path.home() / ".cache" / "asymlora").expanduser()
