"""``asymlora domainbed``: ViT adapters out of distribution under the DomainBed protocol.

* ``pretrain --out DIR``: the small ViT foundation model (Fashion-MNIST), a plain transformers folder.
* ``sweep CONFIG --out DIR``: every run of a sweep (random search x trials x test environments),
  resumable; ``--dry-run`` validates and prints the plan without loading anything.
* ``collect DIR``: DomainBed's tables (training-domain validation, and the oracle) with the paper's
  in-domain accuracy and train-test gap, as ``DIR/tables.md`` and ``DIR/tables.json``.

Bad input (unknown dataset or variant, a test environment that does not exist, ``--n-trials 0``, a
data folder with a missing environment or class, an unreadable image) is one ``error:`` line and
exit 2, checked before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from asymlora.commands.common import UserError, atomic_write_text, out_dir, user_input, write_json


def _stop_time(text: str | None) -> float | None:
    """``HH:MM`` (UTC, today) -> a ``time.time()``; None stays None."""
    if not text:
        return None
    import datetime as dt

    try:
        hour, minute = (int(x) for x in text.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    except ValueError:
        raise UserError(f"--stop-at must be HH:MM in UTC (got {text!r})") from None


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="DomainBed protocol: ViT adapters out of distribution.")
    app.add_typer(group, name="domainbed")
    for add in (_add_pretrain, _add_sweep, _add_collect):
        add(group)


def _add_pretrain(group: typer.Typer) -> None:
    """Register ``pretrain`` on the command group."""
    @group.command("pretrain")
    def pretrain_cmd(
        out: str = typer.Option(..., "--out", help="folder for the pretrained ViT (a transformers folder)"),
        epochs: float = typer.Option(3.0, "--epochs", help="passes over the 60,000 Fashion-MNIST images"),
        seed: int = typer.Option(0, "--seed"),
        data_dir: str = typer.Option(None, "--data-dir", help="Fashion-MNIST IDX folder (default: the Debian package's)"),
        threads: int = typer.Option(None, "--threads"),
    ) -> None:
        """Pretrain the small ViT on Fashion-MNIST (seeded) and save it."""
        from asymlora.experiments.domainbed.pretrain import pretrain
        from asymlora.tasks.domainbed.idx import fashion_mnist
        from asymlora.training.env import set_threads

        if epochs <= 0:
            raise UserError(f"--epochs must be > 0 (got {epochs})")
        with user_input("Fashion-MNIST"):
            fashion_mnist("test", data_dir)
        set_threads(threads)
        record = pretrain(Path(out), epochs=epochs, seed=seed, data_dir=data_dir, log=typer.echo)
        typer.echo(f"saved {out}: {record['backbone_parameters']:,} parameters, test accuracy "
                   f"{record['test_accuracy']:.4f}, {record['train_seconds']:.0f} s")


def _add_sweep(group: typer.Typer) -> None:
    """Register ``sweep`` on the command group."""
    @group.command("sweep")
    def sweep_cmd(
        config: str = typer.Argument(..., help="a configs/domainbed_*.yaml file"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/domainbed/<name>)"),
        n_hparams: int = typer.Option(None, "--n-hparams", help="hparam samples (seed 0 = the defaults)"),
        n_trials: int = typer.Option(None, "--n-trials", help="trial seeds"),
        test_envs: str = typer.Option(None, "--test-envs", help="comma-separated indices or names (default: config)"),
        steps: int = typer.Option(None, "--steps"),
        checkpoint_freq: int = typer.Option(None, "--checkpoint-freq"),
        eval_examples: int = typer.Option(None, "--eval-examples", help="fixed evaluation subset per split"),
        tune: str = typer.Option(None, "--tune", help="lora (reuse LoRA's choice) or each"),
        variants: str = typer.Option(None, "--variants", help="comma-separated method variants (default: config)"),
        data_dir: str = typer.Option(None, "--data-dir"),
        model: str = typer.Option(None, "--model"),
        dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the plan; load and write nothing"),
        stop_at: str = typer.Option(None, "--stop-at", help="HH:MM UTC after which no new run starts"),
        threads: int = typer.Option(None, "--threads"),
    ) -> None:
        """Run a DomainBed sweep (resumable: finished runs are skipped)."""
        from asymlora.experiments.domainbed.config import read_config
        from asymlora.experiments.domainbed.sweep import plan_lines, run_sweep

        envs = None
        if test_envs is not None:
            envs = tuple(t.strip() for t in test_envs.split(","))  # a name, else an index
        with user_input():
            cfg = read_config(config, n_hparams=n_hparams, n_trials=n_trials, test_envs=envs, steps=steps,
                              checkpoint_freq=checkpoint_freq, eval_examples=eval_examples, tune=tune,
                              data_dir=data_dir, model=model, threads=threads,
                              variants=tuple(v.strip() for v in variants.split(",")) if variants else None)
        from asymlora.models import resolve_model

        stop = _stop_time(stop_at)
        for line in plan_lines(cfg):
            typer.echo(line)
        if dry_run:
            try:
                resolve_model(cfg.model)
            except FileNotFoundError:
                typer.echo(f"note: model folder {cfg.model} does not exist yet (asymlora domainbed pretrain "
                           f"--out {cfg.model} makes the embedded runs' ViT)")
            typer.echo("dry run: nothing loaded or written")
            return
        with user_input("--model"):
            resolve_model(cfg.model)
        from asymlora.tasks.domainbed import get_dataset
        from asymlora.training.env import set_threads

        with user_input(cfg.dataset):  # the data folder's layout and images, before any folder is made
            spec = get_dataset(cfg.dataset)
            if spec.needs_data_dir:
                spec.load(cfg.data_dir, 0)
        folder = out_dir(out, f"domainbed/{cfg.name}")
        write_json(folder / "sweep_config.json", cfg.to_dict())
        set_threads(cfg.threads)
        counts = run_sweep(cfg, folder, log=typer.echo, stop_at=stop)
        typer.echo(f"{counts['ran']} run(s) now, {counts['done_before']} done before, "
                   f"{counts['not_started']} not started")


def _add_collect(group: typer.Typer) -> None:
    """Register ``collect`` on the command group."""
    @group.command("collect")
    def collect_cmd(
        folder: str = typer.Argument(..., help="a sweep's output folder"),
        test_envs: str = typer.Option(None, "--test-envs", help="environments to tabulate (default: those with runs)"),
    ) -> None:
        """DomainBed's result tables (training-domain validation and oracle) with in-domain accuracy and gap."""
        from asymlora.experiments.domainbed.aggregate import markdown, rows, trial_results
        from asymlora.experiments.domainbed.config import VARIANTS
        from asymlora.experiments.domainbed.records import read_runs
        from asymlora.experiments.domainbed.selection import SELECTIONS

        root = Path(folder)
        if not root.is_dir():
            raise UserError(f"{root}: no such sweep folder")
        with user_input(str(root)):
            runs = read_runs(root)
        if not runs:
            raise UserError(f"{root}: no finished run (no result.json below it)")
        text, data = [], {}
        for dataset in sorted({r.key.dataset for r in runs}):
            mine = [r for r in runs if r.key.dataset == dataset]
            names = mine[0].info.get("env_names") or [str(i) for i in range(mine[0].n_envs)]
            envs = sorted({r.key.test_env for r in mine})
            if test_envs is not None:
                wanted = [t.strip() for t in test_envs.split(",")]
                envs = [names.index(t) if t in names else int(t) if t.isdigit() and int(t) < len(names) else -1
                        for t in wanted]
                if -1 in envs:
                    raise UserError(f"--test-envs {test_envs}: {dataset}'s environments are "
                                    + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
            variants = [v for v in VARIANTS if any(r.key.variant == v for r in mine)]
            text.append(f"## {dataset}\n\nTest environments: {', '.join(f'{e}={names[e]}' for e in envs)}; "
                        f"{len(mine)} runs.\n")
            data[dataset] = {}
            for label, selection in SELECTIONS.items():
                table = rows(trial_results(mine, selection), dataset, variants, mine[0].n_envs, envs)
                text.append(markdown(table, [names[e] for e in envs], selection))
                data[dataset][label] = [r.to_dict() for r in table]
        atomic_write_text(root / "tables.md", "\n".join(text))
        write_json(root / "tables.json", data)
        typer.echo("\n".join(text))
