"""``asymlora evidence --out docs/evidence.md``: the evidence page, generated from the committed results.

Writes the page (``--out``) and, beside it, the claims table it links to (``--claims-out``, default
``results/claims/`` next to the page: ``docs/results/claims/claims.md`` and ``claims.json``) and the
choosing page (``--choosing-out``, default ``choosing.md`` next to the page: which method, rank and rate
for a budget, :mod:`asymlora.experiments.choosing_page`), and that page's advice as the module
``src/asymlora/choosing_advice.py`` beside the page's folder (``docs/evidence.md`` ->
``src/asymlora/choosing_advice.py``; ``asymlora train --help`` prints it), and the README beside the page's
folder with its "What our evidence shows" paragraph computed again (:mod:`asymlora.experiments.readme_evidence`;
the rest of the README is copied from the repository's). Every
number comes from a committed file under ``docs/results/`` (see :mod:`asymlora.experiments.evidence_page`);
nothing is trained or measured. ``--check`` writes nothing and exits 1 when a committed file is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from asymlora.commands.common import UserError, atomic_write_text


def _stale(files: dict[Path, str]) -> list[Path]:
    return [path for path, text in files.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]


def register(app: typer.Typer) -> None:
    @app.command("evidence")
    def evidence(
        out: str = typer.Option("docs/evidence.md", "--out", help="the page to write (default docs/evidence.md)"),
        claims_out: Optional[str] = typer.Option(
            None, "--claims-out", help="folder of the full claims table (default: results/claims beside the page)"),
        root: Optional[str] = typer.Option(
            None, "--root", help="repository root holding docs/results (default: here, else the source checkout)"),
        choosing_out: Optional[str] = typer.Option(
            None, "--choosing-out", help="the choosing page to write (default: choosing.md beside the page)"),
        check: bool = typer.Option(False, "--check", help="write nothing; exit 1 if a written file would change"),
    ) -> None:
        """The evidence page and the claims table, from the committed result files (nothing is recomputed)."""
        from asymlora.experiments.choosing_page import ADVICE_MODULE, render_advice_module, render_choosing
        from asymlora.experiments.evidence_page import render_page, repository_root
        from asymlora.experiments.readme_evidence import render_readme

        page_path = Path(out)
        if page_path.is_dir() or page_path.suffix != ".md":
            raise UserError(f"--out {out} must be a markdown file path (e.g. docs/evidence.md)")
        claims_folder = Path(claims_out) if claims_out else page_path.parent / "results" / "claims"
        base = Path(root) if root else repository_root()
        page = render_page(base, page_path, claims_folder)
        choosing_path = Path(choosing_out) if choosing_out else page_path.parent / "choosing.md"
        files = {page_path: page.markdown, claims_folder / "claims.md": page.claims_markdown,
                 claims_folder / "claims.json": page.claims_json, choosing_path: render_choosing(base),
                 page_path.parent.parent / ADVICE_MODULE: render_advice_module(base),
                 page_path.parent.parent / "README.md": render_readme(base, json.loads(page.claims_json)["claims"])}
        if check:
            stale = _stale(files)
            for path in stale:
                typer.echo(f"stale: {path} (run `asymlora evidence --out {out}`)", err=True)
            if stale:  # SystemExit: cli.main's standalone_mode=False would swallow typer.Exit's status
                raise SystemExit(1)
            typer.echo(f"{out}, the claims table, the choosing page and the README's evidence paragraph are up to date")
            return
        for path, text in files.items():
            atomic_write_text(path, text)
        typer.echo(f"wrote {', '.join(str(path) for path in files)}")
