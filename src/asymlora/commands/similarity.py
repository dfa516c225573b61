"""``asymlora similarity RUN_DIRS...``: subspace similarity of learned factors across runs.

Writes to ``--out`` (default ``runs/similarity``): ``similarity.json`` (every number),
``similarity_pairs.csv`` (one row per run pair, module and factor), ``similarity_init.csv``
(learned factor vs its initialisation), ``similarity.md`` (summary tables) and one heatmap
``similarity_<method>.png`` per method (the paper's Figure 1 layout: A above, B below).
"""

from __future__ import annotations

import csv
import io
import re
from typing import List

import typer

from asymlora.commands.common import UserError, atomic_write_text, out_dir, user_input, write_json


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def register(app: typer.Typer) -> None:
    @app.command("similarity")
    def similarity(
        run_dirs: List[str] = typer.Argument(..., help="run folders (or folders containing them)"),
        top: int = typer.Option(None, "--top", help="compare only the top-k singular directions of each factor"),
        quick: bool = typer.Option(False, "--quick", help="no heatmaps"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/similarity)"),
    ) -> None:
        """Per-module subspace similarity of learned A (rows) and B (columns) across runs (docs/paper.md §4)."""
        from tqdm import tqdm

        from asymlora.analysis import plots
        from asymlora.analysis.similarity import (SHORT_LABELS, compare, find_run_dirs, heatmap_panels, load_run,
                                                  markdown_summary)

        with user_input():
            folders = find_run_dirs(run_dirs)
            runs = [load_run(folder) for folder in tqdm(folders, desc="loading runs", leave=False)]
        if len(runs) < 2:
            raise UserError(f"need at least two runs to compare, found {len(runs)}")
        if top is not None and top < 1:
            raise UserError(f"--top must be >= 1, got {top}")
        result = compare(runs, top)
        if not result["pairs"] and not result["init"]:
            raise UserError("no two runs share a method, rank and module: nothing to compare")
        folder = out_dir(out, "similarity")
        figures = []
        if not quick:
            for method in dict.fromkeys(r.method for r in runs):
                panels = heatmap_panels(result, method)
                if panels:
                    name = f"similarity_{re.sub(r'[^A-Za-z0-9_.-]', '_', method)}.png"
                    plots.similarity_heatmaps(panels, folder / name, title=f"method {method}: subspace similarity")
                    figures.append(name)
            levels = sorted(set(result["chance"].values()))
            plots.similarity_summary(result["summary"], levels[0] if len(levels) == 1 else None,
                                     folder / "similarity_summary.png", SHORT_LABELS)
            figures.append("similarity_summary.png")
        write_json(folder / "similarity.json", result)
        atomic_write_text(folder / "similarity_pairs.csv", _csv(result["pairs"]))
        atomic_write_text(folder / "similarity_init.csv", _csv(result["init"]))
        report = markdown_summary(result)
        atomic_write_text(folder / "similarity.md", report)
        typer.echo(report)
        typer.echo(f"wrote {folder}/similarity.json, similarity.md, similarity_pairs.csv, similarity_init.csv"
                   + (", " + ", ".join(figures) if figures else ""))
