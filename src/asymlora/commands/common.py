"""What every command shares: the user-error type, output folders, atomic writes, JSON tables.

Conventions: ``--out DIR`` (default under ``runs/``), ``--seed``, ``--quick``, JSON beside every
human-readable table, nothing half-written (temporary name, then rename). A command validates its
arguments before it creates its output folder (:func:`out_dir`), so bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asymlora.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401 (re-exported)
from asymlora.errors import UserError, user_input  # noqa: F401 (re-exported)

#: The output folder of the command running in this process (where ``error.txt`` goes on a bug).
CURRENT_OUT: list[Path] = []


def out_dir(path: str | os.PathLike | None, default: str) -> Path:
    """The output folder (created): ``path`` or ``runs/<default>``; remembered for ``error.txt``."""
    folder = Path(path) if path else Path("runs") / default
    with user_input(f"--out {folder}"):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"--out {folder} is a file, not a folder; choose a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create --out {folder} ({err.strerror or type(err).__name__}); choose a "
                            "writable folder") from None
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"--out {folder} is not writable; choose a writable folder")
    CURRENT_OUT[:] = [folder]
    return folder


def results_file(name: str | os.PathLike) -> Path:
    """``name``, or ``name/results.jsonl`` when ``name`` is a folder that holds one (a grid's output folder)."""
    source = Path(name)
    return source / "results.jsonl" if source.is_dir() and (source / "results.jsonl").is_file() else source


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
