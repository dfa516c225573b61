"""The results store: one JSON line per finished run in ``results.jsonl``.

Appends take an exclusive ``flock`` and write the whole line with one ``write`` (concurrent shards
can share the file). A run counts as done when a line has the same ``run_id`` and the same
``fingerprint`` (a hash of everything that changes what the run computes: model, task, method,
rank, seeds and the training options), so changing an override re-runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None


def fingerprint(identity: dict) -> str:
    """A short stable hash of a run's identity (sorted JSON)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_results(path: str | Path, missing_ok: bool = True) -> list[dict]:
    """Every record of a results file; a malformed line raises one clear ValueError."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the results.jsonl file")
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not a JSON line ({err.msg})") from None
            if not isinstance(record, dict) or "run_id" not in record or "metrics" not in record:
                raise ValueError(f"{path}:{number}: not a results record (needs 'run_id' and 'metrics')")
            records.append(record)
    return records


def done_keys(path: str | Path) -> set[tuple[str, str]]:
    """``{(run_id, fingerprint)}`` of the runs already in the file."""
    return {(r["run_id"], r.get("fingerprint", "")) for r in read_results(path)}


def append_result(path: str | Path, record: dict) -> None:
    """Append one record as a single line (locked, flushed, fsynced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=False, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
