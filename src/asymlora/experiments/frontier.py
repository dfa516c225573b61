"""The budget frontier: accuracy against peak training memory and against trainable parameters.

Each point is one ``(method, rank)`` arm trained at its own chosen learning rate (the runs
``asymlora choose-lr`` writes as ``results.jsonl``), 3 seeds as a rule. Its coordinates:

* **accuracy**: mean (sample std) over seeds of the run's headline metric (``metrics`` in the
  record: the test split at the best validation check);
* **peak training memory** (bytes): measured for the arm's configuration in a fresh process
  (:mod:`asymlora.planning.frontier_memory`, one figure per arm: memory does not depend on the seed
  or the rate), beside the memory planner's prediction for the same setting;
* **trainable parameters**: from the run records (adapter plus head).

A point is **Pareto-optimal** on a cost axis when no other point has at most its cost and at least
its accuracy with one of the two strictly better (means compared; the spread is printed beside).

The sentence the issue asks for is computed, not written: at LoRA r=8's measured peak memory
``M``, the best B-only arm whose peak is ``≤ M`` (highest mean accuracy), its accuracy against
LoRA r=8's, the difference and the pooled std of the two (``sqrt((s_x² + s_y²) / 2)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from asymlora.evaluation.stats import Stat, from_summary, pooled_std, stat
from asymlora.experiments.report import latest, method_order, one_learning_rate, row_label

MIB = float(1 << 20)


@dataclass(frozen=True)
class ArmMemory:
    """Peak training memory of one ``(method, rank)`` configuration, in bytes."""

    method: str
    rank: int
    measured_bytes: int
    predicted_bytes: int | None = None


@dataclass(frozen=True)
class FrontierPoint:
    """One arm of the frontier (see the module docstring for each coordinate)."""

    method: str
    rank: int
    label: str
    learning_rate: float | None
    accuracy: Stat
    trainable_params: int | None
    samples_per_second: Stat
    measured_bytes: int | None
    predicted_bytes: int | None
    pareto_memory: bool = False
    pareto_params: bool = False


@dataclass(frozen=True)
class Frontier:
    """The points, the metric they report, and the computed equal-memory sentence."""

    metric: str
    points: tuple[FrontierPoint, ...]
    sentence: str


def arms_from_document(document: dict) -> list[ArmMemory]:
    """The arms of a ``frontier_memory.json`` document (``asymlora bench frontier``).

    Raises:
        ValueError: a document without ``frontier_memory`` and ``arms``.
    """
    if not isinstance(document, dict) or "frontier_memory" not in document or "arms" not in document:
        raise ValueError("not a frontier_memory.json written by asymlora bench frontier")
    return [ArmMemory(a["method"], int(a["rank"]), int(a["measured_bytes"]), a.get("predicted_bytes"))
            for a in document["arms"]]


def points_from(records: list[dict], memory: list[ArmMemory]) -> list[FrontierPoint]:
    """One point per ``(method, rank)`` of ``records`` (one learning rate each), with its memory.

    Args:
        records: results lines of the runs at each arm's chosen rate (one task, one model).
    Returns:
        The points in registry method order, then rank; Pareto flags not set yet.
    Raises:
        ValueError: no records, several tasks or models, or an arm trained at several rates.
    """
    records = latest(records)
    if not records:
        raise ValueError("the results file has no runs to put on a frontier")
    for key in ("task", "model"):
        values = sorted({str(r.get(key)) for r in records})
        if len(values) > 1:
            raise ValueError(f"a frontier is one {key}; the results hold {', '.join(values)}")
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], int(r["rank"])), []).append(r)
    by_arm = {(m.method, m.rank): m for m in memory}
    points = []
    for (method, rank), runs in sorted(groups.items(), key=lambda kv: (method_order(kv[0][0]), kv[0][1])):
        rate = one_learning_rate(runs, f"{method} r={rank}")
        mem = by_arm.get((method, rank))
        params = stat(r.get("trainable_params") for r in runs).mean
        points.append(FrontierPoint(
            method, rank, row_label(runs[0]), rate, stat(r["metrics"].get(r["main_metric"]) for r in runs),
            None if params is None else int(params), stat(r.get("samples_per_second") for r in runs),
            mem.measured_bytes if mem else None, mem.predicted_bytes if mem else None))
    return points


def pareto(points: list[FrontierPoint], cost: str) -> set[tuple[str, int]]:
    """The ``(method, rank)`` of the points no other point dominates on ``cost`` (an attribute name).

    Dominates: cost ≤ and mean accuracy ≥, one of them strictly. Points without the cost or an
    accuracy are never on the frontier."""
    known = [p for p in points if getattr(p, cost) is not None and p.accuracy.mean is not None]

    def dominated(p: FrontierPoint) -> bool:
        return any(getattr(q, cost) <= getattr(p, cost) and q.accuracy.mean >= p.accuracy.mean
                   and (getattr(q, cost) < getattr(p, cost) or q.accuracy.mean > p.accuracy.mean) for q in known)

    return {(p.method, p.rank) for p in known if not dominated(p)}


def reference_point(points: list[FrontierPoint], reference=("lora", 8)) -> FrontierPoint | None:
    """The ``reference`` arm's point when it has a measured peak and an accuracy, else ``None``."""
    ref = next((p for p in points if (p.method, p.rank) == tuple(reference)), None)
    return ref if ref is not None and ref.measured_bytes is not None and ref.accuracy.mean is not None else None


def best_within(points: list[FrontierPoint], ref: FrontierPoint, challenger="b_only") -> FrontierPoint | None:
    """The most accurate ``challenger`` point (mean; the smaller peak on a tie) whose measured peak is
    ``≤`` that of ``ref``; ``None`` when none fits. The sentence, claim 7 and the README's paragraph use it."""
    within = [p for p in points if p.method == challenger and p.measured_bytes is not None
              and p.measured_bytes <= ref.measured_bytes and p.accuracy.mean is not None]
    return max(within, key=lambda p: (p.accuracy.mean, -p.measured_bytes)) if within else None


def equal_memory_sentence(points: list[FrontierPoint], reference=("lora", 8), challenger="b_only") -> str:
    """At ``reference``'s measured peak, the best ``challenger`` arm within it, as one sentence."""
    ref = reference_point(points, reference)
    if ref is None:
        return f"No {reference[0]} r={reference[1]} point with a measured peak: no equal-memory comparison."
    head = f"At {ref.label}'s peak training memory ({ref.measured_bytes / MIB:.0f} MiB measured)"
    best = best_within(points, ref, challenger)
    if best is None:
        return f"{head}, no {challenger} arm fits: none has a measured peak at or below it."
    diff = best.accuracy.mean - ref.accuracy.mean
    spread = pooled_std(best.accuracy, ref.accuracy)
    spread_text = f"pooled std {spread:.2f}" if spread is not None else "no pooled std (fewer than 2 seeds)"
    return (f"{head}, the best {challenger} arm that fits is {best.label} ({best.measured_bytes / MIB:.0f} MiB): "
            f"{best.accuracy.text()} against {ref.accuracy.text()}, a difference of {diff:+.2f} points "
            f"({spread_text}; {best.accuracy.n} and {ref.accuracy.n} seeds).")


def point_from_json(data: dict) -> FrontierPoint:
    """A point of a saved ``frontier.json`` (:func:`as_json`) back as a :class:`FrontierPoint`; fields the
    file lacks are ``None`` (the label defaults to ``method r=rank``)."""
    return FrontierPoint(data["method"], data["rank"], data.get("label") or f"{data['method']} r={data['rank']}",
                         data.get("learning_rate"), from_summary(data["accuracy"]), data.get("trainable_params"),
                         from_summary(data.get("samples_per_second") or {}), data.get("measured_bytes"),
                         data.get("predicted_bytes"), bool(data.get("pareto_memory")), bool(data.get("pareto_params")))


def build(records: list[dict], memory: list[ArmMemory]) -> Frontier:
    """The frontier of ``records`` with ``memory``: points, Pareto flags on both axes, the sentence."""
    points = points_from(records, memory)
    on_memory, on_params = pareto(points, "measured_bytes"), pareto(points, "trainable_params")
    flagged = tuple(replace(p, pareto_memory=(p.method, p.rank) in on_memory,
                            pareto_params=(p.method, p.rank) in on_params) for p in points)
    metric = latest(records)[0]["main_metric"]
    return Frontier(metric, flagged, equal_memory_sentence(list(flagged)))


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:.0f}"


def markdown(frontier: Frontier, command: str = "") -> str:
    """The frontier as a markdown table (``*`` marks a Pareto-optimal cell) and its sentence."""
    lines = ["# Accuracy against training memory and trainable parameters", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"{frontier.metric}: mean (std) over seeds at each arm's chosen learning rate. Peak: training memory "
              "measured in a fresh process (MiB) and the planner's prediction. `*`: Pareto-optimal on that axis "
              "(no other arm is at least as cheap and at least as accurate).", "",
              f"| arm | lr | {frontier.metric} | seeds | peak MiB | predicted MiB | trainable | samples/s |",
              "|---|---|---|---|---|---|---|---|"]
    for p in frontier.points:
        lines.append(f"| {p.label} | {p.learning_rate if p.learning_rate is not None else '—'} | {p.accuracy.text()} | "
                     f"{p.accuracy.n} | {_mib(p.measured_bytes)}{' *' if p.pareto_memory else ''} | "
                     f"{_mib(p.predicted_bytes)} | {p.trainable_params if p.trainable_params is not None else '—'}"
                     f"{' *' if p.pareto_params else ''} | {p.samples_per_second.text(1)} |")
    return "\n".join(lines + ["", frontier.sentence, ""])


def as_json(frontier: Frontier) -> dict:
    """A JSON-ready dict of the frontier (each Stat as mean, std, values)."""
    def point(p: FrontierPoint) -> dict:
        data = asdict(p)
        data["accuracy"] = {"mean": p.accuracy.mean, "std": p.accuracy.std, "values": list(p.accuracy.values)}
        data["samples_per_second"] = {"mean": p.samples_per_second.mean, "std": p.samples_per_second.std}
        return data

    return {"metric": frontier.metric, "rule": __doc__.split("\n\n")[2].strip() if __doc__ else "",
            "points": [point(p) for p in frontier.points], "sentence": frontier.sentence}


def plot(frontier: Frontier, path: str | Path) -> None:
    """Two panels: accuracy against peak MiB (linear x: the arms differ by tens of MiB) and against
    trainable parameters (log x: they differ by orders of magnitude); one series per method, seed std as
    error bars, Pareto-optimal points ringed, the legend in the lower right corner (the cheap, accurate
    upper left is where the points to read are)."""
    from asymlora.analysis.plots import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = ((axes[0], "measured_bytes", "pareto_memory", "peak training memory (MiB)", MIB, "linear"),
              (axes[1], "trainable_params", "pareto_params", "trainable parameters", 1.0, "log"))
    for axis, cost, flag, title, scale, xscale in panels:
        for method in dict.fromkeys(p.method for p in frontier.points):
            series = sorted((p for p in frontier.points if p.method == method and getattr(p, cost) is not None
                             and p.accuracy.mean is not None), key=lambda p: getattr(p, cost))
            if not series:
                continue
            xs = [getattr(p, cost) / scale for p in series]
            axis.errorbar(xs, [p.accuracy.mean for p in series], yerr=[p.accuracy.std or 0 for p in series],
                          marker="o", capsize=3, label=method)
            for p, x in zip(series, xs):
                axis.annotate(f"r={p.rank}", (x, p.accuracy.mean), textcoords="offset points", xytext=(4, 4),
                              fontsize=8)
                if getattr(p, flag):
                    axis.scatter([x], [p.accuracy.mean], s=160, facecolors="none", edgecolors="black")
        axis.set_xscale(xscale)
        axis.set_xlabel(title)
        axis.set_ylabel(frontier.metric)
        axis.legend(loc="lower right", fontsize=8)
    fig.suptitle("Budget frontier (ringed: Pareto-optimal)")
    _save(fig, path)
