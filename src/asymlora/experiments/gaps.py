"""Differences to a reference method, per model: does a gap change with the model's size?

Input: runs at each arm's chosen learning rate (the ``results.jsonl`` of ``asymlora choose-lr``), one or
several models. For each ``(task, model, rank)`` that holds the reference method (e.g. ``b_only``) and
another method ``x`` at the same rank, over the seeds of each (test metric at the best validation check,
``metrics[main_metric]`` of the record):

    gap         = mean(x) − mean(ref)
    pooled std  = sqrt((s_x² + s_ref²) / 2)               the spread of one run, as the claims use it
    se          = sqrt(s_x² / n_x + s_ref² / n_ref)       the standard error of the gap

and per ``(task, method, rank)`` between each model and the next larger one (by total parameters):

    change      = gap(larger) − gap(smaller),   se = sqrt(se_smaller² + se_larger²)

A change is *shown* when ``|change| > 2 se`` (about a 95 % interval excluding no change), otherwise it
is *within the uncertainty*. Two model sizes give one change per comparison: a direction, not a trend
law; the sentence says so. Each gap names the devices its runs were made on (the records' ``device``);
a change between models whose runs were made on different devices says so, since the device is then
confounded with the model. Each gap also keeps its records' ``git_commit``; runs made from an uncommitted
tree (a commit ending in ``+dirty``) are named in a line beside the table.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass

from asymlora.evaluation.stats import Stat, difference_se, pooled_std, stat
from asymlora.experiments.report import latest, method_order, one_learning_rate, row_label

#: A change of a gap is shown when it exceeds this many standard errors.
SHOWN_AT_SE = 2.0


@dataclass(frozen=True)
class Gap:
    """``mean(method) − mean(reference)`` on one ``(task, model, rank)``."""

    task: str
    model: str
    total_params: int | None
    method: str
    label: str
    reference: str
    rank: int
    gap: float
    pooled_std: float | None
    se: float | None
    method_score: Stat
    reference_score: Stat
    learning_rates: tuple[float | None, float | None]  # (method's, reference's)
    devices: tuple[str, ...] = ()  # the records' devices, method's and reference's runs together
    commits: tuple[str, ...] = ()  # the records' git_commit, the same runs


@dataclass(frozen=True)
class GapChange:
    """How one comparison's gap moves from a smaller model to a larger one."""

    task: str
    method: str
    rank: int
    smaller: str
    larger: str
    change: float
    se: float | None
    devices: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # (smaller's, larger's)

    @property
    def shown(self) -> bool:
        return self.se is not None and abs(self.change) > SHOWN_AT_SE * self.se


@dataclass(frozen=True)
class Gaps:
    """Every gap, every change between consecutive model sizes, and the metric they are in."""

    reference: str
    metric: str
    gaps: tuple[Gap, ...]
    changes: tuple[GapChange, ...]


def build(records: list[dict], reference: str) -> Gaps:
    """The gaps of every method to ``reference`` in ``records``.

    Raises:
        ValueError: no record of ``reference``, no other method at a rank the reference has, or an arm
            at several learning rates.
    """
    records = latest(records)
    if not any(r["method"] == reference for r in records):
        raise ValueError(f"no {reference} runs to compare against (methods here: "
                         f"{', '.join(sorted({r['method'] for r in records}))})")
    groups: dict = OrderedDict()
    for r in sorted(records, key=lambda r: (r["task"], r.get("total_params") or 0, method_order(r["method"]),
                                            r["rank"], r["seed"])):
        groups.setdefault((r["task"], r.get("model", ""), r["rank"]), OrderedDict()).setdefault(r["method"], []).append(r)
    gaps = []
    for (task, model, rank), by_method in groups.items():
        ref = by_method.get(reference)
        if ref is None:
            continue
        ref_score = stat(r["metrics"].get(r["main_metric"]) for r in ref)
        ref_rate = one_learning_rate(ref, f"{model}: {reference} r={rank}")
        for method, runs in by_method.items():
            if method == reference:
                continue
            score = stat(r["metrics"].get(r["main_metric"]) for r in runs)
            if score.mean is None or ref_score.mean is None:
                continue
            gaps.append(Gap(task, model, runs[0].get("total_params"), method, row_label(runs[0]), reference, rank,
                            score.mean - ref_score.mean, pooled_std(score, ref_score),
                            difference_se(score, ref_score), score, ref_score,
                            (one_learning_rate(runs, f"{model}: {method} r={rank}"), ref_rate),
                            devices_of(runs + ref), distinct(runs + ref, "git_commit")))
    if not gaps:
        raise ValueError(f"no method shares a (task, model, rank) with {reference}: nothing to compare")
    changes = []
    series: dict = OrderedDict()
    for g in gaps:
        series.setdefault((g.task, g.method, g.rank), []).append(g)
    for (task, method, rank), along in series.items():
        along = sorted(along, key=lambda g: g.total_params or 0)
        for small, large in zip(along, along[1:]):
            se = (math.sqrt(small.se ** 2 + large.se ** 2) if small.se is not None and large.se is not None
                  else None)
            changes.append(GapChange(task, method, rank, small.model, large.model, large.gap - small.gap, se,
                                     (small.devices, large.devices)))
    metric = sorted({r["main_metric"] for r in records})
    return Gaps(reference, ", ".join(metric), tuple(gaps), tuple(changes))


def distinct(records: list[dict], key: str) -> tuple[str, ...]:
    """The sorted distinct ``record[key]`` of ``records`` (``"?"`` for a record that has none)."""
    return tuple(sorted({r.get(key) or "?" for r in records}))


def devices_of(records: list[dict]) -> tuple[str, ...]:
    """The sorted distinct ``device`` of ``records`` (``"?"`` for a record that names none)."""
    return distinct(records, "device")


def uncommitted(built: Gaps) -> dict[str, tuple[str, ...]]:
    """Per model, the ``+dirty`` commits its gaps' runs were made from (empty: every run from a commit)."""
    out: dict = OrderedDict()
    for g in built.gaps:
        dirty = [c for c in g.commits if c.endswith("+dirty")]
        if dirty:
            out[g.model] = tuple(sorted(set(out.get(g.model, ())) | set(dirty)))
    return out


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _params(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e6:.1f}M"


def sentences(built: Gaps) -> list[str]:
    """One sentence per change of a gap with the model's size, computed from the numbers."""
    out = []
    for c in built.changes:
        verdict = ("a change beyond twice its standard error" if c.shown else
                   "no change shown at these sizes (within twice its standard error)" if c.se is not None else
                   "no standard error (fewer than 2 seeds on a side)")
        device = ("" if c.devices[0] == c.devices[1] else
                  f" The two models' runs were made on different devices ({c.smaller}: {'; '.join(c.devices[0])}; "
                  f"{c.larger}: {'; '.join(c.devices[1])}): the device is confounded with the model.")
        out.append(f"{c.method} − {built.reference} at r={c.rank} on {c.task}: from {c.smaller} to {c.larger} the "
                   f"gap moves by {c.change:+.2f} points (se {_num(c.se)}): {verdict}.{device}")
    return out


def markdown(built: Gaps, command: str = "") -> str:
    """The gaps table and the computed sentences."""
    lines = ["# Gaps to " + built.reference + " per model", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"{built.metric}: mean (std) over seeds at each arm's learning rate; gap = mean(method) − "
              f"mean({built.reference}); pooled std = sqrt((s_x² + s_ref²) / 2); se = sqrt(s_x²/n_x + s_ref²/n_ref). "
              f"A change between model sizes is shown when it exceeds {SHOWN_AT_SE:g} se.", "",
              "| task | model | parameters | method | lr | score | " + built.reference + " (lr) | gap | pooled std | se "
              "| seeds | device |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in built.gaps:
        rate, ref_rate = (f"{r:g}" if r is not None else "—" for r in g.learning_rates)
        lines.append(f"| {g.task} | {g.model} | {_params(g.total_params)} | {g.label} | {rate} | "
                     f"{g.method_score.text()} | {g.reference_score.text()} ({ref_rate}) | {g.gap:+.2f} | "
                     f"{_num(g.pooled_std)} | {_num(g.se)} | {g.method_score.n}/{g.reference_score.n} | "
                     f"{'; '.join(g.devices) or '—'} |")
    dirty = uncommitted(built)
    if dirty:
        lines += ["", "**Made from an uncommitted tree** (the records' commit ends in +dirty), not re-run from a "
                      "commit: " + "; ".join(f"{model}'s runs ({', '.join(c)})" for model, c in dirty.items()) + "."]
    said = sentences(built)
    if said:
        lines += [""] + [f"* {s}" for s in said]
        lines += ["", "Two model sizes give one change per comparison: a direction with its uncertainty, not a "
                      "law of how the gap scales."]
    return "\n".join(lines + [""])


def as_json(built: Gaps) -> dict:
    """A JSON-ready dict (each Stat as mean, std, values; each change with its ``shown`` flag)."""
    def gap(g: Gap) -> dict:
        data = asdict(g)
        for key in ("method_score", "reference_score"):
            s = getattr(g, key)
            data[key] = {"mean": s.mean, "std": s.std, "values": list(s.values)}
        data["learning_rates"] = list(g.learning_rates)
        data["devices"] = list(g.devices)
        data["commits"] = list(g.commits)
        return data

    return {"reference": built.reference, "metric": built.metric, "rule": __doc__.split("\n\n")[1].strip(),
            "gaps": [gap(g) for g in built.gaps],
            "changes": [{**asdict(c), "devices": [list(d) for d in c.devices], "shown": c.shown}
                        for c in built.changes],
            "sentences": sentences(built)}
