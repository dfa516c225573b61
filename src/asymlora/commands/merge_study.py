"""``asymlora merge-study``: per-task accuracy of single B-only adapters, of asymlora's merges and of
PEFT's merges of the same adapters (see :mod:`asymlora.experiments.merging`).

Writes ``merging.json`` (every score, the settings, the exactness check), ``merging.md`` (the table)
and ``merging.png`` (the plot) to ``--out``, and keeps the trained runs under ``<out>/runs/`` (a
second call reuses them).
"""

from __future__ import annotations

from typing import Optional

import typer

from asymlora.commands.common import UserError, out_dir, parse_seeds, write_study_report


def register(app: typer.Typer) -> None:
    @app.command("merge-study")
    def merge_study(
        tasks: str = typer.Option("tweets,aclsum_aspect", "--tasks", help="comma list of classification tasks "
                                  "(3-class heads; each gets its own adapter and head)"),
        seeds: Optional[str] = typer.Option("0,1,2", "--seeds", help="comma list of seeds (the adapter seed too: "
                                            "the tasks of one seed share A)"),
        steps: int = typer.Option(100, "--max-steps", min=1, help="optimiser steps per adapter"),
        eval_limit: int = typer.Option(300, "--eval-limit", min=1, help="test examples scored per task"),
        threads: int = typer.Option(1, "--threads", min=1, help="CPU threads"),
        train_only: bool = typer.Option(False, "--train-only", help="train the runs of --seeds and stop (several "
                                        "such calls with different seeds can share one --out in parallel)"),
        out: Optional[str] = typer.Option(None, "--out", help="output folder (default runs/merging)"),
    ) -> None:
        """Train B-only adapters per task from one frozen A, merge them (asymlora and PEFT), score each task."""
        from asymlora.experiments.merging import MergeStudy, run_study, train_adapters
        from asymlora.experiments.merging_report import merging_plot, merging_table
        from asymlora.tasks import get_task

        names = tuple(t.strip() for t in tasks.split(",") if t.strip())
        if len(names) < 2:
            raise UserError(f"--tasks {tasks}: a merge needs at least two tasks, e.g. --tasks tweets,aclsum_aspect")
        with_labels = {}
        for name in names:
            try:
                with_labels[name] = get_task(name).num_labels
            except ValueError as err:
                raise UserError(f"--tasks: {err}") from None
        if set(with_labels.values()) != {3}:
            raise UserError(f"--tasks {tasks}: the study builds 3-way heads; give 3-class tasks (tweets, aclsum_*)")
        chosen = parse_seeds(seeds)
        study = MergeStudy(tasks=names, seeds=tuple(chosen.values or range(chosen.count or 3)), steps=steps,
                           eval_limit=eval_limit, threads=threads)
        folder = out_dir(out, "merging")
        if train_only:
            train_adapters(study, folder, say=typer.echo)
            return
        result = run_study(study, folder, say=typer.echo).to_dict()
        write_study_report(folder, "merging", result, merging_table, merging_plot)
