"""Paired comparison of two rows of the ROUGE table over the same 300 test examples.

For rows X and Y (each a set of seeds under rouge/<row>-s<seed>/predictions.jsonl), per example i:
d_i = mean over X's seeds of ROUGE(i) − mean over Y's seeds of ROUGE(i). Reported: mean(d) and a 95%
bootstrap interval over examples (2,000 resamples of the 300 examples, seed 0), for ROUGE-1/2/L.
The interval says how sure we are about the difference on THIS test set given the trained seeds;
the seed-to-seed spread is in table.md (mean (std) over seeds).
Usage (from the repository root): python docs/results/aclsum_summary_smollm2_epoch/paired.py
Writes paired.json and paired.md beside this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAIRS = [("b_only-r16", "lora-r6", "B-only r=16 − LoRA r=6 (about equal trainable parameters)"),
         ("b_only-r16", "lora-r2", "B-only r=16 − LoRA r=2 (the paper's rows)"),
         ("b_only-r16", "a_only-r16", "B-only r=16 − A-only r=16"),
         ("lora-r2", "base", "LoRA r=2 − untuned base"),
         ("b_only-r16", "base", "B-only r=16 − untuned base")]
METRICS = ("rouge1", "rouge2", "rougeL")


def per_example(row: str) -> tuple[np.ndarray, list[str], list[str]]:
    """``(examples, metrics)`` mean over the row's seeds, the ids, and the folders used."""
    folders = sorted(p for p in (HERE / "rouge").iterdir() if p.name == row or p.name.startswith(row + "-s"))
    if not folders:
        raise SystemExit(f"no evaluations for row {row!r} under {HERE / 'rouge'}")
    runs, ids = [], None
    for folder in folders:
        records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        order = [r["id"] for r in records]
        if ids is not None and order != ids:
            raise SystemExit(f"{folder}: a different set or order of examples")
        ids = order
        runs.append([[r[m] for m in METRICS] for r in records])
    return np.mean(np.asarray(runs, dtype=float), axis=0), ids, [f.name for f in folders]


def main() -> None:
    rng = np.random.default_rng(0)
    rows, lines = [], ["| comparison | seeds | " + " | ".join(f"Δ {m} [95% CI]" for m in METRICS) + " |",
                       "|---|---|" + "---|" * len(METRICS)]
    for x, y, label in PAIRS:
        (a, ids_a, fa), (b, ids_b, fb) = per_example(x), per_example(y)
        if ids_a != ids_b:
            raise SystemExit(f"{x} and {y} scored different examples")
        d = a - b
        draws = rng.integers(0, len(d), size=(2000, len(d)))
        boot = d[draws].mean(axis=1)
        cells = []
        entry = {"comparison": label, "x": fa, "y": fb, "examples": len(d)}
        for j, m in enumerate(METRICS):
            low, high = np.percentile(boot[:, j], [2.5, 97.5])
            entry[m] = {"mean": float(d[:, j].mean()), "low": float(low), "high": float(high)}
            cells.append(f"{d[:, j].mean():+.2f} [{low:+.2f}, {high:+.2f}]")
        rows.append(entry)
        lines.append(f"| {label} | {len(fa)} vs {len(fb)} | " + " | ".join(cells) + " |")
    (HERE / "paired.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = ("Paired differences over the 300 test examples (per example: mean over each row's seeds), ROUGE ×100, "
            "95% bootstrap interval over examples (2,000 resamples, seed 0). Command: "
            "`python docs/results/aclsum_summary_smollm2_epoch/paired.py`.\n\n" + "\n".join(lines) + "\n")
    (HERE / "paired.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
