"""What ``asymlora eval mmlu --out DIR`` writes: ``predictions.jsonl`` (one line per question:
subject, question index, predicted and gold letter, the four scores, shots used, truncated),
``summary.json`` (settings, data note, per-subject and per-category accuracies, shot drops,
token statistics) and ``table.md`` (the paper's table). Every file is written atomically and
only after the whole evaluation succeeded."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from asymlora.atomic import atomic_write_text
from asymlora.evaluation.mmlu.aggregate import aggregate, subject_counts, table_markdown
from asymlora.evaluation.mmlu.formats import get_format
from asymlora.evaluation.mmlu.run import MMLURun
from asymlora.tasks.mmlu import CATEGORY_DIFFERENCES, MMLUData


def summary(run: MMLURun, data: MMLUData, settings: dict) -> dict:
    """The JSON summary of one run."""
    fmt = get_format(run.options.format)
    table = aggregate(run.predictions, fmt.categories)
    counts = subject_counts(run.predictions)
    return {
        **settings,
        "format": fmt.name, "shots": run.options.shots, "data": data.source, "data_note": data.note,
        "category_map": fmt.categories,
        "category_map_note": "MMLU paper's map differs from the harness's on: " + ", ".join(
            f"{s} (paper {p}, harness {h})" for s, (p, h) in CATEGORY_DIFFERENCES.items()),
        "average": "micro = correct / questions; macro = mean of subject accuracies (percent)",
        "max_length": run.max_length,
        "overflow": fmt.overflow,
        "questions_short_of_shots": run.questions_short_of_shots,
        "shots_dropped": run.shots_dropped,
        "questions_truncated": run.truncated,
        "questions": len(run.predictions),
        "categories": {name: asdict(acc) for name, acc in table.items()},
        "subjects": {s: {"questions": n, "correct": c, "accuracy": 100.0 * c / n} for s, (n, c) in counts.items()},
        "tokens": asdict(run.stats), "prefix_reuse": run.options.reuse,
        "seconds": round(run.seconds, 2),
        "table_markdown": table_markdown(table, f"MMLU {fmt.name} {run.options.shots}-shot (%)"),
    }


def write_outputs(folder: str | Path, run: MMLURun, document: dict) -> list[Path]:
    folder = Path(folder)
    lines = "".join(json.dumps({"subject": p.subject, "index": p.index, "predicted": p.predicted, "gold": p.gold,
                                "scores": [round(s, 6) for s in p.scores], "shots": p.shots,
                                "truncated": p.truncated}) + "\n" for p in run.predictions)
    return [atomic_write_text(folder / "predictions.jsonl", lines),
            atomic_write_text(folder / "summary.json", json.dumps(document, indent=2) + "\n"),
            atomic_write_text(folder / "table.md", document["table_markdown"])]
