"""``asymlora choose-lr RESULTS…``: each method's learning rate chosen on validation across a sweep."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("choose-lr")
    def choose_lr(
        results: list[str] = typer.Argument(..., help="results.jsonl files (or their folders) of one sweep: the "
                                            "same runs at several learning rates"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/lr_choice)"),
        seed: list[int] = typer.Option(None, "--seed", help="a selection seed (repeatable; default: the seeds "
                                       "every rate of a method has)"),
    ) -> None:
        """Per method: validation per rate, the rate it picks, test at every rate; writes lr_choice.md/.json and the chosen runs' results.jsonl."""
        import shlex
        import sys

        from asymlora.commands.common import out_dir, results_file, user_input
        from asymlora.experiments.lr_choice import choose, write_choice
        from asymlora.experiments.store import read_results

        records = []
        with user_input():
            for name in results:
                records += read_results(results_file(name), missing_ok=False)
            choices = choose(records, tuple(seed) if seed else None)
        command = "asymlora choose-lr " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        written = write_choice(choices, records, out_dir(out, "lr_choice"), command)
        print(written["markdown"])
        print(f"wrote {', '.join(written['files'])}")
