"""``asymlora reproduce CONFIG``: run an experiment grid from a YAML config, skipping finished runs."""

from __future__ import annotations

import typer

from asymlora.commands.common import (UserError, max_steps_option, out_option, parse_seeds, seeds_option,
                                      verbose_option)
from asymlora.errors import RunsFailed


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce(
        config: str = typer.Argument(..., help="experiment YAML (configs/*.yaml)"),
        seeds: str = seeds_option("of the config's seeds; default: all the config lists"),
        shard: str = typer.Option(None, "--shard", help="i/n: run only shard i of n (0-based, round robin)"),
        max_steps: int = max_steps_option("cap every run at N optimiser steps", "the config's"),
        out: str = out_option("runs/<config name>"),
        report: bool = typer.Option(True, "--report/--no-report", help="render the report when done"),
        dry_run: bool = typer.Option(False, "--dry-run", help="list the runs to do and exit"),
        verbose: bool = verbose_option(),
    ) -> None:
        """Train methods × ranks × tasks × seeds; append one JSON line per run to <out>/results.jsonl."""
        from pathlib import Path

        from asymlora.commands.common import out_dir, user_input
        from asymlora.experiments import load_spec, parse_shard, seeds_for
        from asymlora.experiments.reproduce import plan, reproduce as run_grid
        from asymlora.training import env

        with user_input():
            spec = load_spec(config)
            if max_steps is not None and max_steps < 1:
                raise UserError(f"--max-steps must be >= 1 (got {max_steps})")
            part = parse_shard(shard)
            chosen = parse_seeds(seeds)
            seed_list = list(chosen.values) if chosen.values is not None else seeds_for(spec, chosen.count)
            folder = Path(out) if out else Path("runs") / spec.name
            todo, skipped = plan(spec, folder, seed_list, part, max_steps, check_sources=not dry_run)
        if dry_run:
            for run in todo:
                print(run.run_id)
            print(f"{len(todo)} to do, {len(skipped)} already done")
            return
        result = run_grid(spec, out_dir(folder, spec.name), seed_list, part, max_steps, progress=verbose)
        if env.is_main_process() and report and (folder / "results.jsonl").exists():
            from asymlora.experiments.report import render

            rendered = render(folder / "results.jsonl", folder / "report")
            print(rendered["markdown"])
            print(f"wrote {', '.join(rendered['files'])}")
        if result["failed"]:
            first = result["failed"][0]
            raise RunsFailed(f"{len(result['failed'])} run(s) failed, first: {first['run_id']}: {first['error']} "
                             f"(traceback in {folder / 'runs' / first['run_id'] / 'error.txt'})")
