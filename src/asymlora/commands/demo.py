"""``asymlora demo``: MiniLM on real tweets, LoRA vs B-only vs A-only, no hub (see experiments/demo.py)."""

from __future__ import annotations

import typer

from asymlora.commands.common import UserError, out_option, parse_seeds, seeds_option
from asymlora.errors import RunsFailed


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        quick: bool = typer.Option(False, "--quick",
                                   help="10 steps per run: a pipeline smoke test (under a minute on 2 idle cores)"),
        seeds: str = seeds_option("the demo runs seeds 0..N-1; default 0 alone"),
        out: str = out_option("demo"),
    ) -> None:
        """Variants summary, then 5 short MiniLM runs on tweets; table + JSON + plot under runs/demo/."""
        from asymlora.commands.common import out_dir
        from asymlora.experiments.demo import run_demo

        chosen = parse_seeds(seeds)
        count = chosen.count
        if chosen.values is not None:
            if list(chosen.values) != list(range(len(chosen.values))):
                raise UserError(f"the demo runs seeds 0..N-1 (got --seeds {seeds}); give --seeds N or 0,1,...")
            count = len(chosen.values)
        result = run_demo(out_dir(out, "demo_quick" if quick else "demo"), quick=quick, seeds=count)
        if result["failed"]:
            raise RunsFailed(f"{len(result['failed'])} demo run(s) failed: {result['failed'][0]['error']}")
