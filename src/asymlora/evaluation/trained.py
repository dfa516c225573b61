"""Load a finished training run back into a model: :func:`load_trained`.

A run folder (written by :func:`asymlora.training.train`; its files and how each method kind's
``adapter/`` is saved and loaded are :mod:`asymlora.run_folder`'s) holds ``metrics.json`` (the run's
record: task, model, method, kind, rank, seed, config, resolved settings, metrics) and ``adapter/``.

The base model is rebuilt exactly as training built it:
``load_for_sequence_classification(model, task.num_labels, seed)``; its fresh head is then
overwritten by the run's trained head (:func:`asymlora.run_folder.load_trained_tensors`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from asymlora.run_folder import (ADAPTER_DIR, LOADERS, METRICS_FILE, RunName, grid_folder,  # noqa: F401
                                 read_metrics_bytes)


@dataclass(frozen=True)
class RunIdentity:
    """Which finished run folder, as ``metrics.json`` describes it: ``run_id`` is ``<task>/<folder name>``
    (the layout of ``asymlora reproduce``); ``digest`` is the SHA-256 (16 hex digits) of its
    ``metrics.json``, so a retrained run gets a new digest.

    Not the grid's :class:`asymlora.run_folder.RunName` itself: a folder written by ``asymlora train
    --out X`` may have any name, and evaluations name the folder's CONTENT (model, kind, digest)
    too. Its task, method, rank and seed are that identity (:meth:`name`)."""

    run_id: str
    task: str
    model: str
    method: str
    label: str
    kind: str
    rank: int
    seed: int
    digest: str

    def name(self) -> RunName:
        """The shared run identity (task, method, rank, seed)."""
        return RunName(self.task, self.method, self.rank, self.seed)

    def identity(self) -> dict:
        """The :class:`RunIdentity` fields as keyword arguments (for records that extend it)."""
        return {f.name: getattr(self, f.name) for f in fields(RunIdentity)}


@dataclass(frozen=True)
class RunInfo(RunIdentity):
    """What evaluation needs to know about one finished run (read from its ``metrics.json``);
    ``max_length`` and ``data_dir`` are the ones the run trained with."""

    folder: Path
    max_length: int
    data_dir: str | None
    metrics: dict[str, float]


def read_run(folder: str | Path) -> RunInfo:
    """The :class:`RunInfo` of the run in ``folder``; a folder that is not a finished run raises
    FileNotFoundError / ValueError naming what is missing."""
    folder = Path(folder)
    path = folder / METRICS_FILE
    record, raw = read_metrics_bytes(folder)
    missing = [k for k in ("task", "model", "method", "kind", "seed", "metrics") if k not in record]
    if missing:
        raise ValueError(f"{path}: not a run record (missing {missing})")
    if not (folder / ADAPTER_DIR).is_dir():
        raise FileNotFoundError(f"{folder}: the run has no {ADAPTER_DIR}/ folder (its trained tensors)")
    config = record.get("config") or {}
    resolved = record.get("resolved") or {}
    max_length = resolved.get("max_length") or config.get("max_length") or 128
    return RunInfo(folder=folder, run_id=f"{record['task']}/{folder.name}", task=record["task"],
                   model=str(record["model"]), method=record["method"], label=record.get("label", record["method"]),
                   kind=record["kind"], rank=int(record.get("rank") or 0), seed=int(record["seed"]),
                   max_length=int(max_length), data_dir=config.get("data_dir"),
                   metrics={k: float(v) for k, v in record["metrics"].items()},
                   digest=hashlib.sha256(raw).hexdigest()[:16])


# ------------------------------------------------------------------------------ finding runs
def folders_of_records(records: list[dict], results_path: str | Path) -> list[Path]:
    """Run folders of the records of a ``results.jsonl`` at ``results_path``:
    ``<its folder>/runs/<run_id>`` (the layout of ``asymlora reproduce``), else the record's
    ``config.out``; a record with neither raises FileNotFoundError."""
    results_path = Path(results_path)
    folders: list[Path] = []
    for record in records:
        candidates = [grid_folder(results_path.parent, record["run_id"])]
        out = (record.get("config") or {}).get("out")
        if out:
            candidates.append(Path(out))
        found = next((c for c in candidates if (c / METRICS_FILE).is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{results_path}: run {record['run_id']!r} has no folder with {METRICS_FILE} "
                                    f"(looked in {', '.join(str(c) for c in candidates)})")
        if found not in folders:
            folders.append(found)
    return folders


def find_runs(folder: str | Path) -> list[Path]:
    """Run folders under ``folder``: itself if it is a run, else every folder below it with
    ``metrics.json`` and ``adapter/``, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if (folder / METRICS_FILE).is_file():
        return [folder]
    found = sorted(p.parent for p in folder.rglob(METRICS_FILE) if (p.parent / ADAPTER_DIR).is_dir())
    if not found:
        raise FileNotFoundError(f"{folder}: no run folders (metrics.json + adapter/) under it")
    return found


@dataclass
class TrainedModel:
    """A run's model (eval mode, on ``device``), its tokenizer and its :class:`RunInfo`."""

    model: Any
    tokenizer: Any
    info: RunInfo


def load_trained(run: str | Path | RunInfo, device: str = "cpu") -> TrainedModel:
    """Rebuild the base model of ``run`` and load its trained tensors (by kind, :data:`asymlora.run_folder.LOADERS`).

    Args:
        run: a run folder, or its :class:`RunInfo`.
        device: where the model goes (``"cpu"``, ``"cuda"``).

    Returns:
        The :class:`TrainedModel` (eval mode).

    Raises:
        ValueError: an unknown method kind, or tensors that do not fit the base model.
        FileNotFoundError: not a finished run.
    """
    from asymlora.models import load_for_sequence_classification, load_tokenizer
    from asymlora.tasks import get_task

    from asymlora.run_folder import load_trained_tensors

    info = run if isinstance(run, RunInfo) else read_run(run)
    if info.kind not in LOADERS:
        raise ValueError(f"{info.folder}: unknown method kind {info.kind!r}; known: {', '.join(LOADERS)}")
    task = get_task(info.task)
    base = load_for_sequence_classification(info.model, task.num_labels, seed=info.seed)
    model = load_trained_tensors(base, info.kind, info.folder / ADAPTER_DIR)
    return TrainedModel(model=model.to(device).eval(), tokenizer=load_tokenizer(info.model), info=info)
