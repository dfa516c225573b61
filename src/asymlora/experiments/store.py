"""The results store: one JSON line per finished run in ``results.jsonl``.

Appends take an exclusive ``flock`` and write the whole line with one ``write`` (concurrent shards
can share the file). A crash can leave at most a torn last line (no newline): readers report it
once and skip it (its run is redone), and the next append moves it to ``results.jsonl.torn``.
A run counts as done when a line has the same ``run_id`` and the same ``fingerprint`` (a hash of
everything that changes what the run computes: model, task, method, rank, seeds and the training
options), so changing an override re-runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None


def fingerprint(identity: dict) -> str:
    """A short stable hash of a run's identity (sorted JSON)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultsWarning(UserWarning):
    """A results file needed repair that loses nothing (a torn last line, skipped or moved aside)."""


_REPORTED: set[str] = set()


def _warn(message: str) -> None:
    """Warn once per process for each distinct message (a file read several times reports once)."""
    if message not in _REPORTED:
        _REPORTED.add(message)
        warnings.warn(message, ResultsWarning, stacklevel=3)


def _parse(line: str, where: str) -> dict:
    """One record, or ValueError naming ``where`` (``file:line``)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not a JSON line ({err.msg}); repair or remove that line") from None
    if not isinstance(record, dict) or "run_id" not in record or "metrics" not in record:
        raise ValueError(f"{where}: not a results record (needs 'run_id' and 'metrics'); repair or remove that line")
    return record


def read_results(path: str | Path, missing_ok: bool = True) -> list[dict]:
    """Every record of a results file.

    A malformed line raises one clear ValueError, except a torn LAST line: one without its newline
    that does not parse (what a crash in the middle of an append leaves). That one is reported once
    (:class:`ResultsWarning`, naming the file and line) and skipped, so its run counts as not done
    and is run again; the next append moves it aside (see :func:`append_result`).
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file not found: {path}; run asymlora reproduce first, or give the "
                                "path of its results.jsonl")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the results.jsonl file")
    with open(path, "rb") as handle:  # a shared lock: never read another process's half-done append
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not valid utf-8 text (byte {err.start}: {err.reason}); a results file is "
                         "UTF-8 JSON lines, restore it from a copy") from None
    lines = text.split("\n")
    torn = lines.pop()  # "" when the file ends with a newline
    records = [_parse(line, f"{path}:{number}") for number, line in enumerate(lines, 1) if line.strip()]
    if torn.strip():
        try:
            records.append(_parse(torn, f"{path}:{len(lines) + 1}"))
        except ValueError:
            _warn(f"{path}: line {len(lines) + 1} is incomplete (a run was interrupted while writing it); "
                  "skipped, its run counts as not done")
    return records


def done_keys(path: str | Path) -> set[tuple[str, str]]:
    """``{(run_id, fingerprint)}`` of the runs already in the file."""
    return {(r["run_id"], r.get("fingerprint", "")) for r in read_results(path)}


def _set_torn_tail_aside(fd: int, path: Path) -> None:
    """With the lock held: if the file does not end with a newline, move its unterminated last line
    to ``<name>.torn`` (kept for inspection) and cut it off, so the next record starts a line."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    while start > 0:
        chunk = os.pread(fd, min(4096, start), max(0, start - 4096))
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            start = start - len(chunk) + cut + 1
            break
        start -= len(chunk)
    tail = os.pread(fd, size - start, start)
    with open(path.with_name(path.name + ".torn"), "ab") as aside:
        aside.write(tail + b"\n")
        aside.flush()
        os.fsync(aside.fileno())
    os.ftruncate(fd, start)
    _warn(f"{path}: moved an incomplete last line ({len(tail)} bytes, from an interrupted append) to "
          f"{path.name}.torn")


def append_result(path: str | Path, record: dict) -> None:
    """Append one record as a single line: locked (``flock``), one ``write``, flushed and fsynced.

    Under the lock, a torn last line left by an earlier crash is first set aside (see
    :func:`_set_torn_tail_aside`), so every record stays on its own line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=False, default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        _set_torn_tail_aside(fd, path)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
