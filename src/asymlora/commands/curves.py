"""``asymlora curves SOURCES…``: validation curves of finished runs, and whether they still rise."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("curves")
    def curves(
        sources: list[str] = typer.Argument(..., help="runs' metrics.json, results.jsonl files that kept "
                                            "histories, {run_id, history} files, or folders of them"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/curves)"),
        metric: str = typer.Option("accuracy", "--metric", help="the validation metric to plot"),
        tolerance: float = typer.Option(0.5, "--tolerance", min=0.0,
                                        help="a last gain above this many points counts as still rising"),
    ) -> None:
        """Mean validation curve per (task, method, rank) over seeds; writes curves.md/.json/.png."""
        import shlex
        import sys

        from asymlora.commands.common import out_dir, user_input
        from asymlora.experiments.curves import load_curves, write_curves

        with user_input():
            loaded = load_curves(sources, metric)  # every source readable and holding the metric, before writing
        folder = out_dir(out, "curves")
        command = "asymlora curves " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        written = write_curves(loaded, folder, metric, tolerance, command)
        print(written["markdown"])
        print(f"wrote {', '.join(written['files'])}")
