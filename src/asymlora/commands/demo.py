"""``asymlora demo``: MiniLM on real tweets, LoRA vs B-only vs A-only, no hub (see experiments/demo.py)."""

from __future__ import annotations

import typer

from asymlora.commands.common import UserError
from asymlora.errors import RunsFailed


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        quick: bool = typer.Option(False, "--quick",
                                   help="10 steps per run: a pipeline smoke test (under a minute on 2 idle cores)"),
        seeds: int = typer.Option(None, "--seeds", help="number of seeds (default 1)"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/demo)"),
    ) -> None:
        """Variants summary, then 5 short MiniLM runs on tweets; table + JSON + plot under runs/demo/."""
        from asymlora.commands.common import out_dir
        from asymlora.experiments.demo import run_demo

        if seeds is not None and seeds < 1:
            raise UserError(f"--seeds must be >= 1 (got {seeds})")
        result = run_demo(out_dir(out, "demo_quick" if quick else "demo"), quick=quick, seeds=seeds)
        if result["failed"]:
            raise RunsFailed(f"{len(result['failed'])} demo run(s) failed: {result['failed'][0]['error']}")
