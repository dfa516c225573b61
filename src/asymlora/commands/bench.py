"""``asymlora bench``: asymlora against PEFT — step time, saved activations, peak memory, checkpoint size.

Writes ``bench.json`` (one entry per configuration plus init timings and environment), ``bench.md``
and ``bench.png`` to ``--out`` (default ``runs/bench``). Defaults: the packaged MiniLM, 3-label
sequence classification, 16 × 128 real tweets, fp32, 2 threads, r=8, alpha 16, query/value,
dropout 0.05, AdamW. ``--sweep`` runs the shape sweep instead (tiny BERT, MiniLM, a 2-layer
7B-Llama stack with q/v and all-linear targets, SmolLM2 as a causal LM) and writes ``sweep.json``,
``sweep.md`` and ``sweep.png``. ``--serving`` serves ``--adapters`` B-only adapters in one mixed
batch against PEFT's mixed batch and one forward per adapter (``serving.json``, ``serving.md``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from typing import Optional

import typer

from asymlora.commands.common import out_dir, user_input


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        out: Optional[str] = typer.Option(None, "--out", help="output folder (default runs/bench)"),
        model: Optional[str] = typer.Option(
            None, "--model", help="model folder, hub id, or random layout (roberta-base, roberta-large, llama-7b, "
                                  "llama-tiny, bert-tiny); default: packaged all-MiniLM-L6-v2"),
        layers: Optional[int] = typer.Option(None, "--layers", min=1, help="number of layers (cut a layout or model)"),
        batch: int = typer.Option(16, "--batch", min=1, help="sequences per step"),
        length: int = typer.Option(128, "--length", min=1, help="tokens per sequence (pad / truncate)"),
        rank: int = typer.Option(8, "--rank", min=1, help="adapter rank r"),
        alpha: float = typer.Option(16.0, "--alpha", help="LoRA alpha (scaling alpha / r)"),
        dropout: float = typer.Option(0.05, "--dropout", min=0.0, max=0.999, help="adapter dropout"),
        targets: Optional[str] = typer.Option(None, "--targets", help="comma-separated target modules "
                                                                       "(default: the attention query/value)"),
        dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16 or float16"),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N]"),
        threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads"),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="timed steps per configuration "
                                            "(default 30; with --sweep each workload's own default)"),
        warmup: Optional[int] = typer.Option(None, "--warmup", min=0, help="untimed warm-up steps per configuration "
                                             "(default 3; with --sweep each workload's own default)"),
        task: str = typer.Option("classification", "--task", help="classification or causal_lm"),
        configurations: Optional[str] = typer.Option(None, "--configurations",
                                                     help="comma-separated subset (default: all eight)"),
        memory: bool = typer.Option(True, "--memory/--no-memory", help="measure peak memory in fresh processes"),
        svd: bool = typer.Option(True, "--svd/--no-svd", help="also time the authors' full-SVD init (~25 s on CPU)"),
        seed: int = typer.Option(0, "--seed", min=0, help="seed of the model copy, adapters and batch"),
        quick: bool = typer.Option(False, "--quick", help="tiny random BERT, batch 4 × 32, 2 steps, no SVD"),
        mask_path: str = typer.Option("auto", "--mask-path", help="B-only dropout mask: auto (by size), saved "
                                                                  "(bit-packed) or regenerated, for every module"),
        sweep: bool = typer.Option(False, "--sweep", help="the shape sweep (5 workloads, B-only vs PEFT LoRA vs "
                                                          "the floor by default) instead of one suite"),
        serving: bool = typer.Option(False, "--serving", help="serve many B-only adapters in one batch against "
                                     "PEFT's mixed batch (adapter_names=) and one forward per adapter; model "
                                     "default smollm2, targets default all-linear"),
        adapters: int = typer.Option(8, "--adapters", min=1, help="with --serving: adapters mixed in the batch"),
        rows: Optional[str] = typer.Option(None, "--rows", help="throughput table instead of one suite: "
                                           "configuration:rank pairs timed interleaved in one process, e.g. "
                                           "peft_lora:8,peft_adalora:8,asymlora_b_only:8,asymlora_b_only:16"),
        repeats: int = typer.Option(3, "--repeats", help="with --rows: repeats (each builds every row afresh)"),
    ) -> None:
        """Benchmark asymlora (B-only, A-only, LoRA) against PEFT LoRA, LoRA-FA, AdaLoRA, head-only and the floor."""
        from asymlora.adapters.dropout import MASK_PATHS, forced_mask_path
        from asymlora.bench.configs import ORDER
        from asymlora.bench.report import markdown, write_report
        from asymlora.bench.suite import SuiteOptions, run_suite, validate
        from asymlora.bench.sweep import SWEEP_CONFIGURATIONS

        options = SuiteOptions(
            model=model, batch=batch, length=length, layers=layers, rank=rank, alpha=alpha, dropout=dropout,
            targets=[t.strip() for t in targets.split(",") if t.strip()] if targets else None, dtype=dtype,
            device=device, threads=threads, steps=steps or 30, warmup=3 if warmup is None else warmup,
            memory=memory, svd=svd, seed=seed, task=task,
            configurations=[c.strip() for c in configurations.split(",") if c.strip()] if configurations
            else list(SWEEP_CONFIGURATIONS if sweep else ORDER))
        if sweep:
            _sweep(options, out, steps, warmup)
            return
        if serving:
            _serving(options, out, adapters, steps, warmup)
            return
        if rows is not None:
            _throughput(options, out, rows, repeats)
            return
        if quick:
            options.model = options.model or "bert-tiny"
            options.batch, options.length, options.steps, options.warmup = 4, 32, 2, 1
            options.svd = False
        with user_input():
            validate(options)
            forced = None if mask_path == "auto" else mask_path
            if forced not in (None, *MASK_PATHS):
                raise ValueError(f"--mask-path must be auto, {' or '.join(MASK_PATHS)}; got {mask_path!r}")
        folder = out_dir(out, "bench")
        with _progress_bar() as progress, forced_mask_path(forced):
            document = run_suite(options, progress)
        document["suite"]["mask_path"] = mask_path
        document["command"] = "asymlora bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        paths = write_report(document, folder)
        typer.echo(markdown(document))
        typer.echo(f"wrote {paths['json']}, {paths['markdown']} and {paths['chart']}")


@contextlib.contextmanager
def _progress_bar():
    """A transient rich progress bar; yields ``progress(stage, done, total)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("bench", total=1)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield progress


def _sweep(options, out: Optional[str], steps: Optional[int], warmup: Optional[int]) -> None:
    """``asymlora bench --sweep``: every workload of :data:`asymlora.bench.sweep.SWEEP`."""
    from asymlora.bench.report import sweep_markdown, write_sweep_report
    from asymlora.bench.suite import validate
    from asymlora.bench.sweep import run_sweep, workload_options

    with user_input():
        validate(options)
        workload_options(options, steps=steps, warmup=warmup)
    folder = out_dir(out, "bench-sweep")
    with _progress_bar() as progress:
        document = run_sweep(options, steps=steps, warmup=warmup, progress=progress)
    document["command"] = "asymlora bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    paths = write_sweep_report(document, folder)
    typer.echo(sweep_markdown(document))
    typer.echo(f"wrote {paths['json']}, {paths['markdown']} and {paths['chart']}")


def _serving(options, out: Optional[str], adapters: int, steps: Optional[int], warmup: Optional[int]) -> None:
    """``asymlora bench --serving``: :mod:`asymlora.bench.serving` (rows = ``--batch``, rounds = ``--steps``)."""
    from asymlora.bench.serving import ServingOptions, run_serving, serving_markdown, write_serving_report

    with user_input():
        serving = ServingOptions(
            model=options.model or "smollm2", adapters=adapters, rows=options.batch, length=options.length,
            rank=options.rank, alpha=options.alpha, targets=options.targets or ["all-linear"],
            threads=options.threads, rounds=steps or 5, warmup=1 if warmup is None else warmup,
            seed=options.seed, memory=options.memory)
        serving.check()
        if options.device != "cpu" or options.dtype != "float32":
            raise ValueError("--serving runs on the CPU in float32 only (it compares CPU time and resident memory)")
        from asymlora.models import check_reachable
        check_reachable(serving.model)
    folder = out_dir(out, "bench-serving")
    with _progress_bar() as progress:
        document = run_serving(serving, progress)
    document["command"] = "asymlora bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    paths = write_serving_report(document, folder)
    typer.echo(serving_markdown(document))
    typer.echo(f"wrote {paths['json']} and {paths['markdown']}")


def _throughput(options, out: Optional[str], rows_text: str, repeats: int) -> None:
    """``asymlora bench --rows …``: :mod:`asymlora.bench.throughput` (the rebuttal's throughput tables)."""
    from asymlora.bench.suite import validate
    from asymlora.bench.throughput import parse_rows, run_throughput, throughput_markdown, write_throughput_report

    with user_input():
        rows = parse_rows(rows_text)
        if repeats < 1:
            raise ValueError(f"--repeats must be at least 1, got {repeats}")
        options.configurations = sorted({row.configuration for row in rows})
        validate(options)
        if options.model is not None:
            from asymlora.models import LAYOUTS, check_reachable, resolve_model

            if options.model not in LAYOUTS:
                check_reachable(resolve_model(options.model))
    folder = out_dir(out, "bench-throughput")
    with _progress_bar() as progress:
        document = run_throughput(options, rows, repeats, progress)
    document["command"] = "asymlora bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    paths = write_throughput_report(document, folder)
    typer.echo(throughput_markdown(document))
    typer.echo(f"wrote {paths['json']} and {paths['markdown']}")
