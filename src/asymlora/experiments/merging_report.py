"""The merging study's table (markdown) and plot (grouped bars), from its result file."""

from __future__ import annotations

import statistics
from pathlib import Path


def _by_body(scores: list[dict], tasks: list[str]) -> dict[str, dict[str, list[float]]]:
    """``{body: {task: [accuracy per seed]}}`` in the order bodies first appear."""
    table: dict[str, dict[str, list[float]]] = {}
    for row in scores:
        table.setdefault(row["body"], {t: [] for t in tasks})[row["task"]].append(row["accuracy"])
    return table


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def merging_table(result: dict) -> str:
    """Markdown: one row per body, per task accuracy (mean ± sd over seeds) and the mean over tasks;
    then the exactness check (largest relative ‖ΔW − Σ wᵢ ΔWᵢ‖ over modules and seeds)."""
    tasks = list(result["study"]["tasks"])
    seeds = result["study"]["seeds"]
    lines = [f"| body (scored with each task's own head) | {' | '.join(tasks)} | mean over tasks |",
             "|---|" + "---:|" * (len(tasks) + 1)]
    for body, per_task in _by_body(result["scores"], tasks).items():
        means = [statistics.mean(v) for v in per_task.values() if v]
        lines.append(f"| {body} | {' | '.join(_cell(per_task[t]) for t in tasks)} | {statistics.mean(means):.1f} |")
    spread = f"mean ± sd over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"one seed ({seeds[0]})"
    lines += ["", f"Accuracy ×100 on each task's fixed test subset, {spread}.", "",
              "| merge | largest relative ‖ΔW − Σ wᵢ ΔWᵢ‖_F / ‖Σ wᵢ ΔWᵢ‖_F (modules × seeds) |", "|---|---:|"]
    worst: dict[str, float] = {}
    for row in result["exactness"]:
        worst[row["body"]] = max(worst.get(row["body"], 0.0), row["max_relative_error"])
    lines += [f"| {body} | {value:.2e} |" for body, value in worst.items()]
    return "\n".join(lines) + "\n"


def merging_plot(result: dict, path: Path) -> Path:
    """Grouped horizontal bars: accuracy per body, one bar per task, error bars = sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["study"]["tasks"])
    table = _by_body(result["scores"], tasks)
    bodies = list(table)
    height = 0.8 / len(tasks)
    figure, axis = plt.subplots(figsize=(7.5, 0.45 * len(bodies) + 1.2))
    for index, task in enumerate(tasks):
        means = [statistics.mean(table[b][task]) for b in bodies]
        spreads = [statistics.stdev(table[b][task]) if len(table[b][task]) > 1 else 0.0 for b in bodies]
        positions = [i + (index - (len(tasks) - 1) / 2) * height for i in range(len(bodies))]
        axis.barh(positions, means, height=height, xerr=spreads, label=task, capsize=2)
    axis.set_yticks(range(len(bodies)), bodies)
    axis.invert_yaxis()
    axis.set_xlabel("accuracy (%), each task's own head; mean ± sd over seeds")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
