"""What the claim rules read: result files found by name, parsed into typed records.

=====================  ======================================================================
file name              read as
=====================  ======================================================================
``results.jsonl``      training runs (``asymlora reproduce``): per (file, task, model) the main
(any other ``.jsonl``  metric of every (method, rank) over seeds; a ``run_id`` seen twice in a
given by name)         file counts once (its last line)
``ood.jsonl``          ``asymlora ood`` scores: per (file, task, model) the out-of-domain
                       accuracy of every (method, rank) over seeds
``theory.json``        ``asymlora theory`` (linear-regression closed forms vs Monte Carlo)
``similarity.json``    ``asymlora similarity`` (its ``summary`` rows); the training steps of its
                       runs come from a ``*results.jsonl`` in the same folder, if there is one
``bench.json``         ``asymlora bench`` (step times and saved activations per configuration)
``throughput.json``    ``asymlora bench --rows`` (samples/s of (configuration, rank) rows over repeats)
``frontier.json``      ``asymlora report --frontier`` (accuracy over seeds and measured peak training
                       memory per (method, rank) arm)
=====================  ======================================================================

A folder is searched recursively for those names (other ``.jsonl`` files in a folder are not
training results: ``study_results.jsonl`` is read only for a similarity study's steps).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from asymlora.evaluation.stats import Stat, stat

FILE_KINDS = {"results.jsonl": "runs", "ood.jsonl": "ood", "theory.json": "theory",
              "similarity.json": "similarity", "bench.json": "bench", "throughput.json": "throughput",
              "frontier.json": "frontier"}


def shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Scores:
    """Seed statistics of one metric per (method, rank), from one file, task and model."""

    source: str
    task: str
    model: str
    metric: str
    by_method: dict[tuple[str, int], Stat]

    def get(self, method: str, rank: int) -> Stat | None:
        return self.by_method.get((method, rank))

    def ranks(self, method: str) -> list[int]:
        return sorted(r for m, r in self.by_method if m == method)

    def any_rank(self, method: str) -> Stat | None:
        """The method's statistic when it was run at exactly one rank (a linear probe's rank is nominal)."""
        ranks = self.ranks(method)
        return self.get(method, ranks[0]) if len(ranks) == 1 else None


@dataclass(frozen=True)
class Study:
    """One similarity study: its ``summary`` rows keyed by (method, comparison, factor)."""

    source: str
    summary: dict[tuple[str, str, str], Stat]
    train_steps: int | None

    def cell(self, method: str, comparison: str, factor: str) -> Stat | None:
        return self.summary.get((method, comparison, factor))


@dataclass(frozen=True)
class Inputs:
    """Everything the rules read, and the files it came from."""

    runs: tuple[Scores, ...] = ()
    ood: tuple[Scores, ...] = ()
    theory: tuple[tuple[str, dict], ...] = ()
    similarity: tuple[Study, ...] = ()
    bench: tuple[tuple[str, dict], ...] = ()
    throughput: tuple[tuple[str, dict], ...] = ()
    frontier: tuple[tuple[str, dict], ...] = ()
    files: tuple[str, ...] = field(default=())


def _jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not a JSON line ({err.msg})") from None
    return records


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _grouped(path: Path, records: list[dict], value_of, metric_of) -> list[Scores]:
    """Per (task, model): seed statistics per (method, rank); one value per run_id (the last)."""
    latest = {}
    for number, r in enumerate(records, 1):
        missing = [k for k in ("run_id", "task", "model", "method", "seed") if k not in r]
        if missing:
            raise ValueError(f"{path}: record {number} lacks {missing}")
        latest[r["run_id"]] = r
    groups: dict[tuple[str, str], dict[tuple[str, int], list[float]]] = {}
    metrics: dict[tuple[str, str], str] = {}
    for r in latest.values():
        key = (r["task"], str(r["model"]))
        groups.setdefault(key, {}).setdefault((r["method"], int(r.get("rank") or 0)), []).append(value_of(r))
        metrics.setdefault(key, metric_of(r))
    return [Scores(shown(path), task, model, metrics[(task, model)], {k: stat(v) for k, v in by.items()})
            for (task, model), by in sorted(groups.items())]


def read_runs(path: Path) -> list[Scores]:
    """Training results: each run's main metric (``metrics[main_metric]``)."""
    def value(r):
        return (r.get("metrics") or {}).get(r.get("main_metric") or "accuracy")
    return _grouped(path, _jsonl(path), value, lambda r: r.get("main_metric") or "accuracy")


def read_ood(path: Path) -> list[Scores]:
    """``asymlora ood`` scores: each run's out-of-domain accuracy."""
    return _grouped(path, _jsonl(path), lambda r: r.get("ood_accuracy"), lambda r: "ood_accuracy")


def _study_steps(folder: Path) -> int | None:
    steps = [int(r["train_steps"]) for p in sorted(folder.glob("*results.jsonl")) for r in _jsonl(p)
             if r.get("train_steps") is not None]
    return min(steps) if steps else None


def read_similarity(path: Path) -> Study:
    data = _json(path)
    if not isinstance(data.get("summary"), list):
        raise ValueError(f"{path}: no 'summary' list (is it asymlora similarity's output?)")
    summary = {}
    for row in data["summary"]:
        summary[(row["method"], row["comparison"], row["factor"])] = Stat(row.get("mean"), row.get("std"), ())
    return Study(shown(path), summary, _study_steps(path.parent))


def discover(paths) -> list[Path]:
    """The files named by ``paths`` (files as given; folders searched for :data:`FILE_KINDS` names)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            for root, _, names in sorted(os.walk(p)):
                found.extend(Path(root) / n for n in sorted(names) if n in FILE_KINDS)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


def kind_of(path: Path) -> str:
    """What a file is, by its name (see the module docstring)."""
    if path.name in FILE_KINDS:
        return FILE_KINDS[path.name]
    if path.suffix == ".jsonl":
        return "runs"
    raise ValueError(f"{path}: cannot tell what this file is; name it one of {', '.join(FILE_KINDS)}")


def _whole(path: Path) -> list[tuple[str, dict]]:
    return [(shown(path), _json(path))]


#: file kind -> reader(path) -> the items it adds to that field of :class:`Inputs`.
READERS = {"runs": read_runs, "ood": read_ood, "theory": _whole,
           "similarity": lambda path: [read_similarity(path)], "bench": _whole, "throughput": _whole,
           "frontier": _whole}


def load_inputs(paths) -> Inputs:
    """Read every file named by ``paths`` into :class:`Inputs`."""
    files = discover(paths)
    items: dict[str, list] = {kind: [] for kind in READERS}
    for path in files:
        kind = kind_of(path)
        items[kind].extend(READERS[kind](path))
    return Inputs(**{kind: tuple(v) for kind, v in items.items()}, files=tuple(shown(p) for p in files))
