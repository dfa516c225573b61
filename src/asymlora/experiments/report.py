"""Render a results file in the paper's layout: markdown table(s), a JSON twin and a PNG plot.

Rows are (model, method, rank), in the registry's method order then rank; the label is the
paper's notation. Cells are ``mean (std)`` over seeds of a run's headline metric (``metrics`` in
the record: the test split at the best validation evaluation when the task has one, else the best
validation evaluation, as the paper does on GLUE). ``std`` is the sample standard deviation
(ddof = 1; ``-`` for one seed).

* Several tasks: one column per task (its main metric: accuracy; Matthews for CoLA; Pearson for
  STS-B), an ``Avg`` column = the unweighted mean over the task columns of the row's per-task
  seed means (only for rows that have every task), and ``% params`` (trainable / all parameters
  of the base model with its head, averaged over tasks). A second table gives training throughput
  (train samples per second, training steps only) per task.
* One task: one column per metric of the task, then trainable parameters, % params, samples / s
  and the adapter file size.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict
from pathlib import Path

from asymlora.methods import plain_label

PAPER_TASK_ORDER = ("mnli", "sst2", "mrpc", "cola", "qnli", "rte", "stsb")
METRIC_NAMES = {"accuracy": "Acc", "macro_f1": "Macro-F1", "f1": "F1", "matthews": "MCC", "pearson": "Pearson",
                "spearman": "Spearman"}


def _stats(values: list[float]) -> dict:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "std": std, "n": len(values), "values": values}


def fmt(cell: dict, digits: int = 2) -> str:
    if not cell or cell.get("mean") is None:
        return "—"
    std = "-" if cell.get("std") is None else f"{cell['std']:.{digits}f}"
    return f"{cell['mean']:.{digits}f} ({std})"


def _bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def latest(records: list[dict]) -> list[dict]:
    """One record per ``(run_id, model)``: the last one written wins."""
    keep: dict = OrderedDict()
    for r in records:
        keep[(r["run_id"], r.get("model"))] = r
    return list(keep.values())


def row_label(record: dict) -> str:
    """A row's name: the method's label, its registry name in brackets, and the rank (``… (b_only) r=8``)."""
    method, rank = record["method"], record["rank"]
    label = plain_label(record.get("label") or method)
    label = f"{label} ({method})" if label != method else label
    return f"{label} r={rank}" if rank else label


def recorded_rate(record: dict) -> float | None:
    """The rate a run trained with: the resolved one; the config's when an old record lacks it; else None."""
    return (record.get("resolved") or {}).get("learning_rate", (record.get("config") or {}).get("learning_rate"))


def one_learning_rate(runs: list[dict], what: str) -> float | None:
    """The one learning rate ``runs`` (one arm's records) were trained at (:func:`recorded_rate`).

    Raises:
        ValueError: the runs are at several rates (give the runs at one chosen rate).
    """
    rates = sorted({recorded_rate(r) for r in runs}, key=str)
    if len(rates) > 1:
        raise ValueError(f"{what} ran at several learning rates ({', '.join(map(str, rates))}); "
                         "give the runs at one chosen rate (asymlora choose-lr writes them)")
    return rates[0] if rates else None


def method_order(name: str) -> int:
    from asymlora.methods import METHODS

    names = list(METHODS)
    return names.index(name) if name in names else len(names)


def build(records: list[dict]) -> dict:
    """The report as data: ``{"tasks", "layout", "rows", "average_rule", ...}``."""
    records = latest(records)
    if not records:
        raise ValueError("the results file has no runs to report")
    seen_tasks = list(OrderedDict.fromkeys(r["task"] for r in records))
    tasks = [t for t in PAPER_TASK_ORDER if t in seen_tasks] + [t for t in seen_tasks if t not in PAPER_TASK_ORDER]
    main = {t: next(r["main_metric"] for r in records if r["task"] == t) for t in tasks}
    metrics_of = {t: list(OrderedDict.fromkeys(k for r in records if r["task"] == t for k in r["metrics"]))
                  for t in tasks}
    single = len(tasks) == 1
    groups: dict = OrderedDict()
    for r in sorted(records, key=lambda r: (r.get("model", ""), method_order(r["method"]), r["rank"])):
        groups.setdefault((r.get("model"), r["method"], r["rank"]), []).append(r)
    models = {key[0] for key in groups}
    rows = []
    for (model, method, rank), runs in groups.items():
        label = row_label(runs[0])
        if len(models) > 1:
            label = f"{model}: {label}"
        row = {"model": model, "method": method, "rank": rank, "label": label, "cells": {}, "throughput": {},
               "seeds": {}}
        for t in tasks:
            on_task = [r for r in runs if r["task"] == t]
            if not on_task:
                continue
            row["seeds"][t] = sorted(r["seed"] for r in on_task)
            row["cells"][t] = {m: _stats([r["metrics"].get(m) for r in on_task]) for m in metrics_of[t]}
            row["throughput"][t] = _stats([r.get("samples_per_second") for r in on_task])
        means = [row["cells"][t][main[t]]["mean"] for t in tasks if t in row["cells"]]
        row["average"] = statistics.fmean(means) if len(means) == len(tasks) and None not in means else None
        row["trainable_params"] = _stats([r.get("trainable_params") for r in runs])["mean"]
        row["trainable_percent"] = _stats([r.get("trainable_percent") for r in runs])["mean"]
        row["samples_per_second"] = _stats([r.get("samples_per_second") for r in runs])
        row["adapter_bytes"] = _stats([r.get("adapter_bytes") for r in runs])["mean"]
        rows.append(row)
    selections = sorted({r.get("selection", "?") for r in records})
    rule = (f"Avg is the unweighted mean over the {len(tasks)} task columns of each row's per-task mean over "
            f"seeds of the main metric ({', '.join(f'{t}: {main[t]}' for t in tasks)}); rows missing a task "
            "have no Avg." if not single else
            f"Single task ({tasks[0]}): every metric is shown; no average is taken.")
    return {"tasks": tasks, "main_metric": main, "metrics": metrics_of, "layout": "single" if single else "grid",
            "rows": rows, "average_rule": rule, "selection": selections,
            "runs": len(records), "models": sorted(m for m in models if m)}


def to_markdown(report: dict, title: str = "Results", source: str = "") -> str:
    tasks, rows = report["tasks"], report["rows"]
    lines = [f"# {title}", ""]
    if source:
        lines += [f"Source: `{source}` ({report['runs']} runs; model {', '.join(report['models'])}).", ""]
    if report["layout"] == "single":
        t = tasks[0]
        metrics = report["metrics"][t]
        head = ["Method"] + [METRIC_NAMES.get(m, m) for m in metrics] + \
               ["Trainable params", "% params", "Train samples/s (wall clock, load-dependent)", "Adapter file",
                "Seeds"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            cells = row["cells"].get(t, {})
            lines.append("| " + " | ".join(
                [row["label"]] + [fmt(cells.get(m)) for m in metrics] +
                [f"{row['trainable_params']:,.0f}", f"{row['trainable_percent']:.3f}%",
                 fmt(row["samples_per_second"], 1), _bytes(row["adapter_bytes"]),
                 str(len(row["seeds"].get(t, [])))]) + " |")
    else:
        head = ["Method", "% params"] + [f"{t} ({METRIC_NAMES.get(report['main_metric'][t], report['main_metric'][t])})"
                                         for t in tasks] + ["Avg"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            values = [fmt(row["cells"].get(t, {}).get(report["main_metric"][t])) for t in tasks]
            avg = "—" if row["average"] is None else f"{row['average']:.2f}"
            lines.append("| " + " | ".join([row["label"], f"{row['trainable_percent']:.3f}%"] + values + [avg]) + " |")
        lines += ["", "Training throughput (train samples / s over training steps only, mean (std) over seeds; "
                      "wall clock of separate runs, so it depends on the machine's load):", ""]
        head = ["Method"] + tasks
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            lines.append("| " + " | ".join([row["label"]] + [fmt(row["throughput"].get(t), 1) for t in tasks]) + " |")
    lines += ["", f"Cells are mean (std) over seeds (sample std, ddof=1; `-` for a single seed). "
                  f"Metric selection: {', '.join(report['selection'])} (test@best-validation = the labelled test "
                  "split evaluated with the weights of the best validation evaluation; best-validation = the best "
                  "validation evaluation, the paper's GLUE convention). " + report["average_rule"], ""]
    return "\n".join(lines)


def plot(report: dict, path: str | Path, title: str = "") -> Path:
    """Grouped bars with std error bars: tasks (or metrics, for one task) on x, one bar per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, rows = report["tasks"], report["rows"]
    if report["layout"] == "single":
        groups = [(m, tasks[0], m) for m in report["metrics"][tasks[0]]]
    else:
        groups = [(t, t, report["main_metric"][t]) for t in tasks]
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.4 * len(rows)) + 3.5, 4))
    probe = next((row for row in rows if row["method"] == "linear_probe"), None)
    for i, row in enumerate(rows):
        cells = [row["cells"].get(t, {}).get(m, {}) for _, t, m in groups]
        means = [c.get("mean") for c in cells]
        xs = [g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in means], width, label=row["label"])
        spread = [(x, v, c["std"]) for x, v, c in zip(xs, means, cells) if v is not None and c.get("n", 0) >= 2]
        if spread:  # error bars only where there are at least 2 seeds
            ax.errorbar([x for x, _, _ in spread], [v for _, v, _ in spread], yerr=[s for _, _, s in spread],
                        fmt="none", ecolor="black", capsize=3, linewidth=1)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([METRIC_NAMES.get(name, name) for name, _, _ in groups])
    ax.set_ylabel("score (%), mean ± std over seeds")
    values = [c["mean"] for row in rows for cells in row["cells"].values() for c in cells.values() if c["mean"] is not None]
    if values:
        # the axis starts at a meaningful floor: the linear probe's lowest score (the head alone), else 0
        floor = min(c["mean"] for c in (probe["cells"].get(t, {}).get(m, {}) for _, t, m in groups)
                    if c.get("mean") is not None) if probe else 0.0
        low = min(min(values), floor)
        ax.set_ylim(max(0.0, low - 5) if probe else min(0.0, low), max(values) + 5)
        if probe:  # the head alone, per metric: the level an adapter has to beat
            for g, (_, t, m) in enumerate(groups):
                level = probe["cells"].get(t, {}).get(m, {}).get("mean")
                if level is not None:
                    ax.hlines(level, g - 0.45, g + 0.45, colors="grey", linestyles="--", linewidth=0.9,
                              label="linear probe level" if g == 0 else None)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def render(results_path: str | Path, out: str | Path, title: str | None = None) -> dict:
    """Read ``results_path`` and write ``report.md``, ``report.json`` and ``report.png`` into ``out``."""
    from asymlora.atomic import atomic_write_text
    from asymlora.experiments.store import read_results
    import json

    records = read_results(results_path, missing_ok=False)
    report = build(records)
    names = sorted({r.get("experiment") for r in records if r.get("experiment")})
    title = title or (", ".join(names) if names else "Results")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report, title, str(results_path))
    atomic_write_text(out / "report.md", markdown)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    plot(report, out / "report.png", title)
    return {"report": report, "markdown": markdown, "files": [str(out / f) for f in ("report.md", "report.json", "report.png")]}
