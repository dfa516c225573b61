"""The model cache: ``$ASYMLORA_CACHE`` or ``~/.cache/asymlora``, and folders built into it once.

A folder is written under a temporary name and renamed, so concurrent processes (DDP ranks) never
see half a model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from asymlora.paths import cache_dir  # noqa: F401  (re-exported: the models' cache)


def materialise(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a model folder once: ``build(tmp)`` fills a temporary folder that is then renamed to
    ``target`` (if another process won the race, its folder is kept and ours removed).

    Args:
        target: the folder to create; already holding ``config.json`` -> returned untouched.
        build: fills the folder it is given (``save_pretrained`` and friends).

    Returns:
        Path: ``target``.

    Raises:
        OSError: the rename failed and no other process made ``target`` either.
    """
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
