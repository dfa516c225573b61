"""``asymlora claims [RESULTS...] --out DIR``: the research's six claims and our equal-memory one, tested on result files.

RESULTS are files or folders (searched for ``results.jsonl``, ``ood.jsonl``, ``theory.json``,
``similarity.json``, ``bench.json``); by default the committed ``docs/results/``. Prints and
writes ``claims.md`` (one row per claim: the test, the numbers used with their files, the verdict)
and ``claims.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from asymlora.commands.common import UserError, atomic_write_text, out_dir, write_json

DEFAULT_RESULTS = Path("docs") / "results"


def default_results() -> Path:
    """``docs/results`` under the working directory, else under the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / DEFAULT_RESULTS).is_dir():
            return base / DEFAULT_RESULTS
    raise UserError("no docs/results folder here; give the result files or folders to read")


def register(app: typer.Typer) -> None:
    @app.command("claims")
    def claims(
        results: List[str] = typer.Argument(None, help="result files or folders (default: docs/results)"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/claims)"),
    ) -> None:
        """Test each of the research's six claims (and our equal-memory claim 7) on result files: holds / does not hold / not measured."""
        from asymlora.experiments.claims import evaluate, load_inputs
        from asymlora.experiments.claims.render import to_json, to_markdown

        inputs = load_inputs(results or [default_results()])
        if not inputs.files:
            raise UserError(f"no result files in {', '.join(results or [str(default_results())])}")
        verdicts = evaluate(inputs)
        folder = out_dir(out, "claims")
        report = to_markdown(verdicts, inputs.files)
        write_json(folder / "claims.json", to_json(verdicts, inputs.files))
        atomic_write_text(folder / "claims.md", report)
        typer.echo(report)
        typer.echo(f"wrote {folder / 'claims.md'} and {folder / 'claims.json'}")
