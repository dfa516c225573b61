"""What every command shares: the user-error type, output folders, atomic writes, JSON tables.

Conventions (DESIGN.md): ``--out DIR`` (default under ``runs/``), ``--seed``, ``--quick``, JSON
beside every human-readable table, nothing half-written (temporary name, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asymlora.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401 (re-exported)


class UserError(Exception):
    """An expected failure caused by the user's input; the CLI prints it as one line."""


def out_dir(path: str | os.PathLike | None, default: str) -> Path:
    """The output folder (created): ``path`` or ``runs/<default>``."""
    folder = Path(path) if path else Path("runs") / default
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
