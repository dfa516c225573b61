"""MMLU few-shot prefix reuse: forwarded tokens and wall time with and without the cached prefix.

The same questions are scored ``rounds`` times each way in one process, interleaved (reuse first
in even rounds, last in odd ones) so that machine noise hits both alike. Tokens are counted by the
scorer (real tokens through the model: the shared prefix once per subject with reuse, in every
input without; padding reported separately). Both ways must give the same predictions; the largest
score difference is reported.
"""

from __future__ import annotations

import platform
import statistics
from dataclasses import asdict, replace

import torch

from asymlora.evaluation.mmlu.run import MMLUOptions, evaluate_mmlu
from asymlora.tasks.mmlu import MMLUData


def run_prefix_bench(model, tokenizer, data: MMLUData, format: str = "harness", shots: int = 5, rounds: int = 3,
                     batch_size: int = 8) -> dict:
    """``{"reuse": {...}, "no_reuse": {...}, "token_ratio", "speedup", ...}`` (times in seconds)."""
    base = MMLUOptions(format=format, shots=shots, batch_size=batch_size)
    times: dict[str, list[float]] = {"reuse": [], "no_reuse": []}
    runs = {}
    for round_index in range(rounds):
        order = ("reuse", "no_reuse") if round_index % 2 == 0 else ("no_reuse", "reuse")
        for name in order:
            run = evaluate_mmlu(model, tokenizer, data, replace(base, reuse=name == "reuse"))
            times[name].append(run.seconds)
            runs[name] = run
    a, b = runs["reuse"].predictions, runs["no_reuse"].predictions
    document = {
        "format": format, "shots": shots, "rounds": rounds, "batch_size": batch_size,
        "questions": len(a), "max_length": runs["reuse"].max_length,
        "torch": torch.__version__, "machine": platform.machine(), "torch_threads": torch.get_num_threads(),
        "same_predictions": [p.predicted for p in a] == [p.predicted for p in b],
        "max_score_difference": max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p.scores, q.scores)),
    }
    for name, run in runs.items():
        document[name] = {**asdict(run.stats), "seconds": times[name], "median_seconds": statistics.median(times[name])}
    document["token_ratio"] = document["no_reuse"]["forwarded"] / document["reuse"]["forwarded"]
    document["padded_token_ratio"] = document["no_reuse"]["padded"] / document["reuse"]["padded"]
    document["speedup"] = document["no_reuse"]["median_seconds"] / document["reuse"]["median_seconds"]
    return document


def bench_markdown(document: dict) -> str:
    rows = [f"MMLU {document['format']} {document['shots']}-shot, {document['questions']} questions, "
            f"{document['rounds']} interleaved rounds, {document.get('torch_threads')} threads",
            "", "| | forwarded tokens | with padding | model calls | median s |", "|---|---|---|---|---|"]
    for name in ("reuse", "no_reuse"):
        part = document[name]
        rows.append(f"| {name.replace('_', ' ')} | {part['forwarded']} | {part['padded']} | {part['calls']} | "
                    f"{part['median_seconds']:.2f} |")
    rows += ["", f"token ratio (no reuse / reuse): {document['token_ratio']:.2f}×; "
                 f"speed-up: {document['speedup']:.2f}×; same predictions: {document['same_predictions']}; "
                 f"largest score difference: {document['max_score_difference']:.2e}"]
    return "\n".join(rows) + "\n"
