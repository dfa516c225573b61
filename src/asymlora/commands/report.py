"""``asymlora report RESULTS``: the paper's table layout (markdown + JSON + PNG) from results.jsonl."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        results: str = typer.Argument(..., help="a results.jsonl written by reproduce / demo"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/report)"),
        title: str = typer.Option(None, "--title", help="report title (default: the experiment names)"),
    ) -> None:
        """Mean (std) over seeds per method and task, % trainable params, Avg; writes report.md/.json/.png."""
        from asymlora.commands.common import out_dir, results_file, user_input
        from asymlora.experiments.report import render
        from asymlora.experiments.store import read_results

        source = results_file(results)
        with user_input(str(source)):
            read_results(source, missing_ok=False)
        rendered = render(source, out_dir(out, "report"), title)
        print(rendered["markdown"])
        print(f"wrote {', '.join(rendered['files'])}")
