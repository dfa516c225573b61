"""Atomic writes: a file through a temporary name and one rename; a folder through a temporary
sibling and a two-rename swap with recovery (:func:`atomic_folder`, :func:`recover_folder`).

Standard library only, so every layer (the torch-only adapters included) may use it. A reader
never sees a half-written file or folder, and a failure or a kill leaves the previous one whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _previous(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def recover_folder(directory: str | os.PathLike) -> None:
    """Finish an interrupted :func:`atomic_folder` swap: if ``directory`` is missing but its
    ``.previous`` copy exists (a kill between the two renames), put the previous folder back."""
    target = Path(directory)
    previous = _previous(target)
    if not target.exists() and previous.is_dir():
        os.replace(previous, target)
    elif target.is_dir() and previous.is_dir():  # the swap finished; only the clean-up was cut short
        shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``directory`` as a whole.

    Files of an existing ``directory`` that the new content does not have are carried over, then two
    renames swap the folders (``directory`` -> ``.directory.previous``, temporary -> ``directory``)
    and the previous one is removed. A failure or a kill before the swap changes nothing; a kill
    between the two renames leaves the previous folder aside, and :func:`recover_folder` (called by
    every reader and writer) puts it back, so a reader sees the old folder or the new one, whole.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield temporary
        if target.exists():
            for item in target.iterdir():
                if not (temporary / item.name).exists():
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, temporary / item.name)
            os.replace(target, _previous(target))
        os.replace(temporary, target)
        shutil.rmtree(_previous(target), ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
