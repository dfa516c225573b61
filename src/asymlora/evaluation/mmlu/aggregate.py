"""Accuracy per subject, per category and overall; the paper's table as markdown.

Two averages, both reported (accuracies in percent):

* micro: correct answers / questions, over the questions of a category (or of all subjects) —
  the harness's ``weight_by_size`` aggregate and the MMLU authors' "weighted accuracy";
* macro: the unweighted mean of the subjects' accuracies.

The table's "Average" column is computed over all questions (micro) or all subjects (macro), not
as the mean of the four category columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from asymlora.evaluation.mmlu.run import Prediction
from asymlora.tasks.mmlu import CATEGORIES, CATEGORY_MAPS

AVERAGE = "Average"


@dataclass(frozen=True)
class Accuracy:
    """``micro`` / ``macro`` in percent (``None`` for an empty group); ``subjects`` counted."""

    questions: int
    correct: int
    subjects: int
    micro: float | None
    macro: float | None


def _accuracy(by_subject: dict[str, tuple[int, int]]) -> Accuracy:
    questions = sum(n for n, _ in by_subject.values())
    correct = sum(c for _, c in by_subject.values())
    rates = [100.0 * c / n for n, c in by_subject.values() if n]
    return Accuracy(questions, correct, len(rates), 100.0 * correct / questions if questions else None,
                    sum(rates) / len(rates) if rates else None)


def subject_counts(predictions: list[Prediction]) -> dict[str, tuple[int, int]]:
    """``{subject: (questions, correct)}``."""
    counts: dict[str, tuple[int, int]] = {}
    for p in predictions:
        n, c = counts.get(p.subject, (0, 0))
        counts[p.subject] = (n + 1, c + int(p.correct))
    return counts


def aggregate(predictions: list[Prediction], categories: str) -> dict[str, Accuracy]:
    """``{category: Accuracy, ..., "Average": Accuracy}`` under the ``"paper"`` or ``"harness"`` map."""
    mapping = CATEGORY_MAPS[categories]
    counts = subject_counts(predictions)
    table = {cat: _accuracy({s: v for s, v in counts.items() if mapping[s] == cat}) for cat in CATEGORIES}
    table[AVERAGE] = _accuracy(counts)
    return table


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def table_markdown(table: dict[str, Accuracy], title: str = "") -> str:
    """The paper's table: rows micro and macro, columns Humanities, STEM, Social sciences, Other, Average."""
    columns = [*CATEGORIES, AVERAGE]
    lines = [f"| {title or 'MMLU accuracy (%)'} | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for average in ("micro", "macro"):
        label = "micro (over questions)" if average == "micro" else "macro (mean over subjects)"
        lines.append(f"| {label} | " + " | ".join(_cell(getattr(table[c], average)) for c in columns) + " |")
    lines.append("| questions | " + " | ".join(str(table[c].questions) for c in columns) + " |")
    lines.append("| subjects | " + " | ".join(str(table[c].subjects) for c in columns) + " |")
    return "\n".join(lines) + "\n"
