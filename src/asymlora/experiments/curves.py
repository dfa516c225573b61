"""Validation curves of finished runs: are they converged, or still rising?

A source is any JSON that carries a run's evaluations during training: a run's ``metrics.json``, a
results line of ``results.jsonl`` that kept its ``history``, or a ``{"run_id", "history"}`` file
(how the converged grid's curves are committed). ``history`` is a list of
``{"step", "epoch", "metrics": {name: value}}``, one per evaluation on the fixed validation subset.

Runs are grouped by their run id without the seed (``tweets/lora-r8-s1`` -> ``tweets/lora-r8``). Per
group and metric ``m`` (greater is better for accuracy-like metrics; the rule is the caller's):

* ``mean_curve[i]`` = mean over the group's seeds of the i-th evaluation (only steps every seed has);
* ``best``: the largest mean and its step; ``last``: the last mean;
* ``last_gain`` = mean(last) − mean(previous): the slope at the end, in metric points per evaluation;
  ``still_rising`` = ``last_gain`` > ``tolerance`` (default 0.5 points) — then more training could help.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asymlora.atomic import atomic_write_text

_SEED = re.compile(r"-s\d+$")


@dataclass(frozen=True)
class Curve:
    """One run's evaluations of one metric: ``points`` = ``[(step, epoch, value), …]`` in step order."""

    run_id: str
    source: str
    points: tuple

    @property
    def group(self) -> str:
        return _SEED.sub("", self.run_id)


@dataclass
class GroupSummary:
    """The seeds of one (task, method, rank): the mean curve and whether it is still rising."""

    group: str
    runs: list[str]
    steps: list[int]
    epochs: list[float]
    mean_curve: list[float]
    best: float
    best_step: int
    last: float
    last_gain: float | None
    still_rising: bool
    curves: dict = field(default_factory=dict)  # run id -> [value per step in ``steps``]


def _records(path: Path):
    """Every record in ``path`` that carries a history: a JSON object, or the lines of a JSONL file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"{path}:{number}", json.loads(line)
    else:
        yield str(path), json.loads(text)


def load_curves(sources: list[str | Path], metric: str) -> list[Curve]:
    """The curves of ``metric`` in every source (files, or folders searched for ``*.json``/``metrics.json``).

    ValueError names a source with no history, or a history without ``metric``."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.rglob("*.json") if p.name != "run_identity.json")
            if not found:
                raise ValueError(f"{source}: no JSON files with a validation history under this folder")
            files.extend(found)
        elif source.is_file():
            files.append(source)
        else:
            raise ValueError(f"{source}: no such file or folder")
    curves = []
    for path in files:
        try:
            records = list(_records(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not JSON ({str(error).splitlines()[0]})") from None
        for where, record in records:
            history = record.get("history") if isinstance(record, dict) else None
            if not history:
                continue
            if any(metric not in h.get("metrics", {}) for h in history):
                known = sorted(history[0].get("metrics", {}))
                raise ValueError(f"{where}: its history has no metric {metric!r} (it has {', '.join(known)})")
            run_id = record.get("run_id") or f"{record.get('task')}/{record.get('method')}-r{record.get('rank')}" \
                f"-s{record.get('seed')}"
            points = tuple(sorted((int(h["step"]), float(h["epoch"] or 0.0), float(h["metrics"][metric]))
                                  for h in history))
            curves.append(Curve(run_id, where, points))
    if not curves:
        raise ValueError(f"no run with a validation history in {', '.join(map(str, sources))} "
                         "(results.jsonl lines written before histories were kept have none: use the runs' "
                         "metrics.json)")
    seen: dict[str, str] = {}
    for curve in curves:
        if curve.run_id in seen:
            raise ValueError(f"run {curve.run_id} appears twice ({seen[curve.run_id]} and {curve.source})")
        seen[curve.run_id] = curve.source
    return curves


def summarise(curves: list[Curve], tolerance: float = 0.5) -> list[GroupSummary]:
    """One :class:`GroupSummary` per group, in first-seen order (see the module docstring)."""
    groups: dict[str, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(curve.group, []).append(curve)
    out = []
    for name, members in groups.items():
        common = sorted(set.intersection(*({p[0] for p in c.points} for c in members)))
        by_step = {c.run_id: {p[0]: p for p in c.points} for c in members}
        values = {run: [points[s][2] for s in common] for run, points in by_step.items()}
        mean = [statistics.fmean(values[run][i] for run in values) for i in range(len(common))]
        epochs = [by_step[members[0].run_id][s][1] for s in common]
        best_index = max(range(len(mean)), key=mean.__getitem__)
        gain = mean[-1] - mean[-2] if len(mean) > 1 else None
        out.append(GroupSummary(name, [c.run_id for c in members], common, epochs, mean, mean[best_index],
                                common[best_index], mean[-1], gain, gain is not None and gain > tolerance, values))
    return out


def markdown(summaries: list[GroupSummary], metric: str, tolerance: float) -> str:
    lines = [f"# Validation curves ({metric})", "",
             f"Mean over seeds of the evaluations every seed has; 'still rising' = the last evaluation gained more "
             f"than {tolerance:g} points over the one before.", "",
             "| run group | seeds | evaluations (steps) | first | best (step) | last | last gain | still rising |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for s in summaries:
        gain = "—" if s.last_gain is None else f"{s.last_gain:+.2f}"
        lines.append(f"| {s.group} | {len(s.runs)} | {len(s.steps)} ({s.steps[0]}–{s.steps[-1]}) | {s.mean_curve[0]:.2f} "
                     f"| {s.best:.2f} ({s.best_step}) | {s.last:.2f} | {gain} | {'yes' if s.still_rising else 'no'} |")
    return "\n".join(lines) + "\n"


def write_curves(curves: list[Curve], out: str | Path, metric: str = "accuracy", tolerance: float = 0.5,
                 command: str | None = None) -> dict:
    """Summarise ``curves`` (:func:`load_curves`) and write ``curves.json``, ``curves.md`` and
    ``curves.png`` into ``out``."""
    from asymlora.analysis.plots import validation_curves

    summaries = summarise(curves, tolerance)
    out = Path(out)
    text = markdown(summaries, metric, tolerance) + (f"\nCommand: `{command}`\n" if command else "")
    document = {"metric": metric, "tolerance": tolerance, "command": command, "groups": [asdict(s) for s in summaries]}
    atomic_write_text(out / "curves.json", json.dumps(document, indent=2) + "\n")
    atomic_write_text(out / "curves.md", text)
    validation_curves(document["groups"], metric, out / "curves.png")
    return {"markdown": text, "files": [str(out / n) for n in ("curves.json", "curves.md", "curves.png")]}
