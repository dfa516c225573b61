"""Several models' MMLU evaluations side by side, in the paper's layout, with paired intervals.

Input: a folder holding ``<label>/<format>_<k>shot/`` evaluation folders, each written by
``asymlora eval mmlu --out`` (``summary.json`` + ``predictions.jsonl``). Output, per prompt
format, one table whose rows are the labels and whose column groups are the shot counts, each
group Humanities, STEM, Social sciences, Other, Average (micro: correct / questions, as the paper
and the harness report), then ``Δ avg``: the model's average minus the reference row's, with a
95% paired percentile bootstrap interval over questions (per-question correctness ``c_i ∈ {0, 1}``
of both models on the same questions, difference ``d_i = c_i − c_i^ref``, resampled together;
:func:`asymlora.evaluation.bootstrap.bootstrap_means`). An interval that contains 0 means the
model's difference from the reference is within what these questions can resolve.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asymlora.evaluation.bootstrap import bootstrap_means
from asymlora.evaluation.mmlu.aggregate import AVERAGE
from asymlora.tasks.mmlu import CATEGORIES

FOLDER = re.compile(r"^(?P<format>paper|harness|cloze)_(?P<shots>[0-5])shot$")


@dataclass(frozen=True)
class Evaluation:
    """One ``asymlora eval mmlu`` output: micro accuracy per category and per-question correctness."""

    label: str
    format: str
    shots: int
    micro: dict[str, float | None]                  # category (and "Average") -> percent
    correct: dict[tuple[str, int], int]             # (subject, question index) -> 0 / 1
    folder: Path


def read_evaluation(label: str, folder: Path) -> Evaluation:
    """Read ``folder/summary.json`` and ``folder/predictions.jsonl`` (ValueError names the file)."""
    summary_path, predictions_path = folder / "summary.json", folder / "predictions.jsonl"
    for path in (summary_path, predictions_path):
        if not path.is_file():
            raise ValueError(f"{path}: missing (not an `asymlora eval mmlu --out` folder)")
    try:
        summary = json.loads(summary_path.read_text())
        micro = {name: summary["categories"][name]["micro"] for name in (*CATEGORIES, AVERAGE)}
        correct = {}
        for number, line in enumerate(predictions_path.read_text().splitlines(), start=1):
            row = json.loads(line)
            correct[(row["subject"], int(row["index"]))] = int(row["predicted"] == row["gold"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{folder}: not a readable MMLU evaluation ({type(error).__name__}: {error})") from None
    return Evaluation(label, summary["format"], int(summary["shots"]), micro, correct, folder)


def read_tree(root: str | Path) -> list[Evaluation]:
    """Every ``root/<label>/<format>_<k>shot`` evaluation, labels in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of MMLU evaluations")
    found = [read_evaluation(label.name, sub) for label in sorted(root.iterdir()) if label.is_dir()
             for sub in sorted(label.iterdir()) if sub.is_dir() and FOLDER.match(sub.name)]
    if not found:
        raise ValueError(f"{root}: no <label>/<format>_<k>shot evaluation folders found")
    return found


def paired_difference(model: Evaluation, reference: Evaluation, resamples: int = 2000, seed: int = 0) -> dict:
    """Average accuracy difference ``model − reference`` in points with its 95% paired bootstrap
    interval, over the questions both answered (they must be the same questions)."""
    if set(model.correct) != set(reference.correct):
        raise ValueError(f"{model.folder} and {reference.folder} scored different questions "
                         f"({len(model.correct)} vs {len(reference.correct)}); evaluate both with the same "
                         f"--subjects and --limit")
    keys = sorted(model.correct)
    difference = np.array([model.correct[k] - reference.correct[k] for k in keys], dtype=float) * 100.0
    interval = bootstrap_means({"d": difference}, resamples=resamples, seed=seed)["d"]
    return {"difference": interval.mean, "low": interval.low, "high": interval.high, "questions": len(keys)}


def compare(evaluations: list[Evaluation], reference: str, order: list[str] | None = None) -> dict:
    """``{format: {"shots": [...], "rows": [{label, per shot: micro, delta}]}}``."""
    labels = order or sorted({e.label for e in evaluations})
    if reference not in labels:
        raise ValueError(f"reference {reference!r} is not among the labels ({', '.join(labels)})")
    index = {(e.label, e.format, e.shots): e for e in evaluations}
    document: dict = {}
    for fmt in sorted({e.format for e in evaluations}):
        shots = sorted({e.shots for e in evaluations if e.format == fmt})
        rows = []
        for label in labels:
            row = {"label": label}
            for k in shots:
                evaluation = index.get((label, fmt, k))
                base = index.get((reference, fmt, k))
                row[str(k)] = None if evaluation is None else {
                    "micro": evaluation.micro, "questions": len(evaluation.correct),
                    "delta": None if base is None or label == reference else paired_difference(evaluation, base)}
            rows.append(row)
        document[fmt] = {"shots": shots, "rows": rows}
    return {"reference": reference, "formats": document}


def _cell(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def compare_markdown(document: dict) -> str:
    """One table per format in the paper's layout (see the module docstring)."""
    lines = []
    for fmt, part in document["formats"].items():
        header = ["method"]
        for k in part["shots"]:
            header += [f"{k}-shot {c}" for c in (*CATEGORIES, AVERAGE)] + [f"{k}-shot Δ avg (95% CI)"]
        lines += [f"MMLU, {fmt} format, micro accuracy (%); Δ against {document['reference']} with a paired "
                  "bootstrap interval over questions", "", "| " + " | ".join(header) + " |",
                  "|---|" + "---|" * (len(header) - 1)]
        for row in part["rows"]:
            cells = [row["label"]]
            for k in part["shots"]:
                entry = row[str(k)]
                if entry is None:
                    cells += ["–"] * (len(CATEGORIES) + 2)
                    continue
                cells += [_cell(entry["micro"][c]) for c in (*CATEGORIES, AVERAGE)]
                d = entry["delta"]
                cells.append("–" if d is None else f"{d['difference']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]")
            lines.append("| " + " | ".join(cells) + " |")
        questions = {row[str(k)]["questions"] for row in part["rows"] for k in part["shots"] if row[str(k)]}
        lines += ["", f"Questions per evaluation: {', '.join(str(q) for q in sorted(questions))}.", ""]
    return "\n".join(lines)
