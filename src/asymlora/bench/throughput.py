"""Training throughput of (configuration, rank) rows in one process, repeated: the rebuttal's tables.

The research's rebuttal reports train samples per second of LoRA r=8, AdaLoRA r=8 and B-only r=8 and
r=16 (classification), and of LoRA r=32 against B-only r=32 and r=64 (instruction tuning), "3 seeds".
Separate training runs on a shared machine cannot give that comparison honestly (their speeds move
with the load), so here every row is timed **in one process, interleaved**:

for each repeat ``k`` (0 … repeats−1):
    build every row afresh on a copy of the workload's model (seed ``seed + k``);
    ``warmup`` untimed rounds, then ``steps`` timed rounds, each round one training step of every
    row in turn (a, b, c, …, a, b, c, …), so that any drift of the machine hits all rows alike;
    row samples/s in repeat k = batch / median step time of that repeat.

Reported per row: samples/s mean and sample std over the repeats, the median step time, the ratio to
the first row (the mean over repeats of the per-repeat ratio, and its std), trainable parameters.
A step is forward, backward and the AdamW step (plus AdaLoRA's ``update_and_allocate``), see
:mod:`asymlora.bench.step`.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from asymlora.bench.configs import ORDER, Settings, build
from asymlora.bench.step import Trainer, summarise
from asymlora.bench.workload import make_workload

#: How each configuration is named in the table (the paper's words).
ROW_NAMES = {"peft_lora": "LoRA (PEFT)", "peft_adalora": "AdaLoRA (PEFT)", "peft_lora_fa": "LoRA-FA (PEFT)",
             "asymlora_b_only": "B-only", "asymlora_a_only": "A-only", "asymlora_lora": "LoRA (asymlora)",
             "head_only": "head only", "adapter_floor": "floor"}


@dataclass(frozen=True)
class Row:
    """One column of the table: a bench configuration at a rank."""

    configuration: str
    rank: int

    @property
    def label(self) -> str:
        name = ROW_NAMES.get(self.configuration, self.configuration)
        return name if self.configuration == "head_only" else f"{name} r={self.rank}"


def parse_rows(text: str) -> list[Row]:
    """``"peft_lora:8,b_only:16"`` -> rows (asymlora rows by method name, :func:`configuration_name`);
    ValueError naming the first bad item."""
    from asymlora.bench.configs import USER_NAMES, configuration_name

    rows = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        typed, sep, rank = item.partition(":")
        name = configuration_name(typed)
        if name not in ORDER:
            raise ValueError(f"--rows: unknown configuration {typed!r} in {item!r}; known: {', '.join(USER_NAMES)}")
        if not sep or not rank.isdigit() or int(rank) < 1:
            raise ValueError(f"--rows: {item!r} needs a rank >= 1 after the colon, e.g. {name}:8")
        rows.append(Row(name, int(rank)))
    if not rows:
        raise ValueError("--rows is empty; give configuration:rank pairs, e.g. peft_lora:8,b_only:8")
    if len(set(rows)) != len(rows):
        raise ValueError(f"--rows names a row twice: {text!r}")
    return rows


def run_throughput(options, rows: list[Row], repeats: int,
                   progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Time every row as described in the module docstring; returns the ``throughput.json`` document.

    ``options`` is a :class:`asymlora.bench.suite.SuiteOptions` (workload, threads, steps, warmup,
    alpha, dropout, seed); its ``rank`` and ``configurations`` are ignored (the rows say them)."""
    from asymlora.bench.suite import environment

    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    tell = progress or (lambda stage, done, total: None)
    torch.set_num_threads(options.threads)
    started = time.time()
    env = environment(options)
    workload = make_workload(**options.workload_kwargs())
    per_repeat: list[dict[Row, list[float]]] = []
    trainable: dict[Row, int] = {}
    rounds = options.warmup + options.steps
    for repeat in range(repeats):
        trainers = {}
        for row in rows:
            settings = Settings(rank=row.rank, alpha=options.alpha, dropout=options.dropout,
                                targets=list(workload.targets), head=workload.head, seed=options.seed + repeat)
            torch.manual_seed(options.seed + repeat)
            trainers[row] = Trainer(build(row.configuration, workload.fresh_model(), settings), workload.batch)
            trainable[row] = sum(p.numel() for p in trainers[row].built.trainable)
        for round_index in range(rounds):
            tell(f"repeat {repeat + 1}/{repeats}", round_index, rounds)
            for row in rows:
                trainers[row].timed_step(record=round_index >= options.warmup)
        per_repeat.append({row: list(trainers[row].times) for row in rows})
        del trainers
    tell(f"repeat {repeats}/{repeats}", rounds, rounds)
    return {
        "kind": "throughput",
        "workload": {**options.workload_kwargs(), "description": workload.description, "alpha": options.alpha,
                     "dropout": options.dropout, "threads": options.threads, "steps": options.steps,
                     "warmup": options.warmup, "repeats": repeats},
        "rows": _row_entries(rows, per_repeat, options.batch, trainable),
        "reference": rows[0].label,
        "environment": {**env, "load_average_end": list(os.getloadavg())},
        "seconds": time.time() - started,
    }


def _row_entries(rows: list[Row], per_repeat: list[dict[Row, list[float]]], batch: int,
                 trainable: dict[Row, int]) -> list[dict]:
    """Per-row figures over the repeats (``per_repeat[k][row]``: that row's timed steps in repeat k);
    ratios are to the first row, repeat by repeat."""
    spread = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)  # noqa: E731
    medians = {row: [summarise(times[row])["step_time_median_s"] for times in per_repeat] for row in rows}
    rates = {row: [batch / m for m in medians[row]] for row in rows}
    entries = []
    for row in rows:
        ratios = [rate / reference for rate, reference in zip(rates[row], rates[rows[0]])]
        entries.append({"configuration": row.configuration, "rank": row.rank, "label": row.label,
                        "trainable_params": trainable[row], "samples_per_s": rates[row],
                        "samples_per_s_mean": statistics.fmean(rates[row]), "samples_per_s_std": spread(rates[row]),
                        "step_time_median_s": medians[row], "ratio_to_reference": ratios,
                        "ratio_mean": statistics.fmean(ratios), "ratio_std": spread(ratios),
                        "step_times_s": [times[row] for times in per_repeat]})
    return entries


def throughput_markdown(document: dict) -> str:
    """The table in the rebuttal's layout: one column per row, samples/s mean (std) over repeats."""
    rows, work = document["rows"], document["workload"]
    head = "| | " + " | ".join(r["label"] for r in rows) + " |"
    lines = [
        f"# Training throughput: {work['description']}",
        "",
        f"Train samples per second, mean (sample std) over {work['repeats']} repeats; each repeat builds every "
        f"row afresh and times {work['steps']} steps per row after {work['warmup']} warm-up rounds, rows "
        f"interleaved in one process; batch {work['batch']} × {work['length']} tokens, {work['dtype']}, "
        f"{work['threads']} threads on {work['device']}, alpha {work['alpha']:g}, dropout {work['dropout']:g}, "
        f"AdamW.",
        "",
        head,
        "|---" * (len(rows) + 1) + "|",
        "| samples/s | " + " | ".join(f"{r['samples_per_s_mean']:.2f} ({r['samples_per_s_std']:.2f})" for r in rows)
        + " |",
        f"| × {document['reference']} | " + " | ".join(f"{r['ratio_mean']:.3f} ({r['ratio_std']:.3f})" for r in rows)
        + " |",
        "| trainable params | " + " | ".join(f"{r['trainable_params']:,}" for r in rows) + " |",
        "",
        f"Machine: {document['environment']['cpu']}, {document['environment']['logical_cpus']} logical CPUs; load "
        f"average {document['environment']['load_average_start'][0]:.2f} at the start, "
        f"{document['environment']['load_average_end'][0]:.2f} at the end.",
    ]
    if document.get("command"):
        lines += ["", f"Command: `{document['command']}`"]
    return "\n".join(lines) + "\n"


def write_throughput_report(document: dict, out: Path) -> dict:
    """Write ``throughput.json`` and ``throughput.md`` into ``out`` (atomically); returns their paths."""
    from asymlora.bench.report import write_documents

    return write_documents(document, out, "throughput", throughput_markdown)
