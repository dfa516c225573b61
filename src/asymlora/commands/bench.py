"""``asymlora bench MODE``: asymlora against PEFT — step time, saved activations, peak memory, checkpoint size.

Modes, one subcommand each (plain ``asymlora bench [OPTIONS]`` runs ``suite``), among them:

* ``suite``: one workload, every configuration interleaved: ``bench.json`` (one entry per
  configuration plus init timings and environment), ``bench.md`` and ``bench.png`` in ``--out``
  (default ``runs/bench``). Defaults: the packaged MiniLM, 3-label sequence classification,
  16 × 128 real tweets, fp32, r=8, alpha 16, query/value, dropout 0.05, AdamW.
* ``sweep``: the shape sweep (tiny BERT, MiniLM, a 2-layer 7B-Llama stack with q/v and all-linear
  targets, SmolLM2 as a causal LM): ``sweep.json``, ``sweep.md``, ``sweep.png``.
* ``serving``: ``--adapters`` B-only adapters in one mixed batch against PEFT's mixed batch and one
  forward per adapter: ``serving.json``, ``serving.md``.
* ``throughput``: ``--rows`` configuration:rank pairs timed interleaved in one process (the
  rebuttal's throughput tables): ``throughput.json``, ``throughput.md``.
* ``mask-cost``: the v2 dropout mask per module call, per way of building it, against
  ``F.dropout`` (:mod:`asymlora.commands.bench_mask`): ``mask_cost.json``, ``mask_cost.md``.

Configurations are named by the method vocabulary (:mod:`asymlora.bench.configs`): asymlora's
``b_only``, ``a_only``, ``lora``; PEFT's ``peft_lora``, ``peft_lora_fa``, ``peft_adalora``; and
``head_only``, ``adapter_floor``. See docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import typer

from asymlora.commands.common import (batch_size_option, command_line, device_name, device_option, dtype_name, dtype_option,
                                      max_length_option, out_option, out_dir, threads_option, user_input,
                                      write_json)


# ---------------------------------------------------------------------------- options of every mode
def _model(default: str):
    return typer.Option(None, "--model", help="model folder, hub id, or random layout (roberta-base, roberta-large, "
                                              f"llama-7b, llama-tiny, bert-tiny); default {default}")


def _steps(default: str):
    return typer.Option(None, "--steps", min=1, help=f"timed steps per configuration (default {default})")


def _warmup(default: str):
    return typer.Option(None, "--warmup", min=0, help=f"untimed warm-up steps per configuration (default {default})")


def _rank():
    return typer.Option(8, "--rank", min=1, help="adapter rank r")


def _alpha():
    return typer.Option(16.0, "--alpha", help="LoRA alpha (scaling alpha / r)")


def _dropout():
    return typer.Option(0.05, "--dropout", min=0.0, max=0.999, help="adapter dropout")


def _targets(default: str = "the attention query/value"):
    return typer.Option(None, "--targets", help=f"comma-separated target modules (default: {default})")


def _seed():
    return typer.Option(0, "--seed", min=0, help="seed of the model copy, adapters and batch")


def _memory():
    return typer.Option(True, "--memory/--no-memory", help="measure peak memory in fresh processes")


def _configurations(default: str):
    return typer.Option(None, "--configurations", help="comma-separated: b_only, a_only, lora, peft_lora, "
                                                       f"peft_lora_fa, peft_adalora, head_only, adapter_floor "
                                                       f"(default {default})")


def _names(text: Optional[str]) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _suite_options(*, model, layers, batch_size, max_length, rank, alpha, dropout, targets, dtype, device, threads,
                   steps, warmup, task, configurations, memory, svd, seed, default_configurations):
    """The :class:`~asymlora.bench.suite.SuiteOptions` of a mode's flags (names resolved, nothing checked)."""
    from asymlora.bench.configs import configuration_name
    from asymlora.bench.suite import SuiteOptions
    from asymlora.commands.common import DTYPES
    from asymlora.training.env import set_threads

    chosen = _names(configurations)
    return SuiteOptions(
        model=model, batch=batch_size, length=max_length, layers=layers, rank=rank, alpha=alpha, dropout=dropout,
        targets=_names(targets), dtype=DTYPES[dtype_name(dtype)], device=device_name(device),
        threads=set_threads(threads), steps=steps or 30, warmup=3 if warmup is None else warmup,
        memory=memory, svd=svd, seed=seed, task=task,
        configurations=[configuration_name(c) for c in chosen] if chosen else list(default_configurations))


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=False, help="Benchmarks against PEFT: suite (the default), sweep, serving, frontier, "
                                                    "throughput, quantized, mask-cost. Plain 'asymlora bench [OPTIONS]' runs the suite.")
    app.add_typer(group, name="bench")
    from asymlora.commands.bench_mask import add_mask_cost
    from asymlora.commands.bench_quantized import add_quantized

    for add in (_add_suite, _add_sweep, _add_serving, _add_throughput, _add_frontier, add_quantized, add_mask_cost):
        add(group)


def _add_suite(group: typer.Typer) -> None:
    """Register ``suite`` on the command group."""
    @group.command("suite")
    def suite(
        out: Optional[str] = out_option("bench"),
        model: Optional[str] = _model("the packaged all-MiniLM-L6-v2"),
        layers: Optional[int] = typer.Option(None, "--layers", min=1, help="number of layers (cut a layout or model)"),
        batch_size: int = batch_size_option(16, "sequences per step", minimum=1),
        max_length: int = max_length_option(128, "tokens per sequence (pad / truncate)", minimum=1),
        rank: int = _rank(), alpha: float = _alpha(), dropout: float = _dropout(), targets: Optional[str] = _targets(),
        dtype: str = dtype_option(), device: str = device_option(), threads: Optional[int] = threads_option(),
        steps: Optional[int] = _steps("30"), warmup: Optional[int] = _warmup("3"),
        task: str = typer.Option("classification", "--task", help="classification or causal_lm"),
        configurations: Optional[str] = _configurations("all eight"),
        memory: bool = _memory(),
        svd: bool = typer.Option(True, "--svd/--no-svd", help="also time the authors' full-SVD init (~25 s on CPU)"),
        seed: int = _seed(),
        quick: bool = typer.Option(False, "--quick", help="tiny random BERT, batch 4 × 32, 2 steps, no SVD"),
        mask_path: str = typer.Option("auto", "--mask-path", help="v1 dropout mask (b_only_v1): auto (by size), saved "
                                                                  "(bit-packed) or regenerated, for every module (v2: "
                                                                  "whether the mask is kept for backward)"),
    ) -> None:
        """One workload: asymlora (b_only, a_only, lora) against PEFT LoRA, LoRA-FA, AdaLoRA, head-only and the floor."""
        from asymlora.adapters.dropout import MASK_PATHS, forced_mask_path
        from asymlora.bench.configs import DEFAULT_SUITE
        from asymlora.bench.report import markdown, write_report
        from asymlora.bench.suite import run_suite, validate

        with user_input():
            options = _suite_options(model=model, layers=layers, batch_size=batch_size, max_length=max_length,
                                     rank=rank, alpha=alpha, dropout=dropout, targets=targets, dtype=dtype,
                                     device=device, threads=threads, steps=steps, warmup=warmup, task=task,
                                     configurations=configurations, memory=memory, svd=svd, seed=seed,
                                     default_configurations=DEFAULT_SUITE)
            if quick:
                options.model = options.model or "bert-tiny"
                options.batch, options.length, options.steps, options.warmup = 4, 32, 2, 1
                options.svd = False
            validate(options)
            forced = None if mask_path == "auto" else mask_path
            if forced not in (None, *MASK_PATHS):
                raise ValueError(f"--mask-path must be auto, {' or '.join(MASK_PATHS)}; got {mask_path!r}")
        def run(progress):
            with forced_mask_path(forced):
                document = run_suite(options, progress)
            document["suite"]["mask_path"] = mask_path
            return document

        _run_and_write(out_dir(out, "bench"), run, write_report, markdown)


def _add_sweep(group: typer.Typer) -> None:
    """Register ``sweep`` on the command group."""
    @group.command("sweep")
    def sweep(
        out: Optional[str] = out_option("bench-sweep"),
        rank: int = _rank(), alpha: float = _alpha(), dropout: float = _dropout(),
        dtype: str = dtype_option(), device: str = device_option(), threads: Optional[int] = threads_option(),
        steps: Optional[int] = _steps("each workload's own"), warmup: Optional[int] = _warmup("each workload's own"),
        configurations: Optional[str] = _configurations("b_only, peft_lora, adapter_floor; also b_only_no_dropout, "
                                                        "b_only_v1, b_only_compiled, b_only_compiled_model"),
        workloads: Optional[str] = typer.Option(None, "--workloads", help="comma-separated: tiny_bert, minilm, "
                                                "llama7b_qv, llama7b_all, smollm2 (default all five)"),
        crossover: bool = typer.Option(True, "--crossover/--no-crossover", help="also measure the v1 mask-path "
                                       "crossover (CPU)"),
        seed: int = _seed(),
    ) -> None:
        """The shape sweep: 5 workloads (tiny BERT, MiniLM, a 2-layer 7B Llama with q/v and all-linear, SmolLM2)."""
        from asymlora.bench.report import sweep_markdown, write_sweep_report
        from asymlora.bench.suite import validate
        from asymlora.bench.sweep import SWEEP_CONFIGURATIONS, run_sweep, select_workloads, workload_options

        with user_input():
            options = _suite_options(model=None, layers=None, batch_size=16, max_length=128, rank=rank, alpha=alpha,
                                     dropout=dropout, targets=None, dtype=dtype, device=device, threads=threads,
                                     steps=steps, warmup=warmup, task="classification",
                                     configurations=configurations, memory=True, svd=True, seed=seed,
                                     default_configurations=SWEEP_CONFIGURATIONS)
            validate(options)
            chosen = select_workloads(_names(workloads))
            workload_options(options, chosen, steps=steps, warmup=warmup)
            compiled = [c for c in options.configurations if c.startswith("asymlora_b_only_compiled")]
            if compiled:
                from asymlora.adapters.compiled import require_compile
                from asymlora.bench.configs import ASYMLORA_PREFIX

                names = ", ".join(c.removeprefix(ASYMLORA_PREFIX) for c in compiled)
                require_compile(options.device, f"or drop {names} from --configurations")
        _run_and_write(out_dir(out, "bench-sweep"),
                       lambda progress: run_sweep(options, chosen, steps=steps, warmup=warmup, crossover=crossover,
                                                 progress=progress),
                       write_sweep_report, sweep_markdown)


def _add_serving(group: typer.Typer) -> None:
    """Register ``serving`` on the command group."""
    @group.command("serving")
    def serving(
        out: Optional[str] = out_option("bench-serving"),
        model: Optional[str] = typer.Option("smollm2", "--model", help="a causal LM: registry name, folder or hub id"),
        adapters: int = typer.Option(8, "--adapters", min=1, help="adapters mixed in the batch"),
        batch_size: int = batch_size_option(16, "rows per batch (at least --adapters)", minimum=1),
        max_length: int = max_length_option(128, "tokens per row", minimum=1),
        rank: int = _rank(), alpha: float = _alpha(), targets: Optional[str] = _targets("all-linear"),
        threads: Optional[int] = threads_option(),
        steps: Optional[int] = _steps("5 timed rounds"), warmup: Optional[int] = _warmup("1"),
        memory: bool = _memory(), seed: int = _seed(),
    ) -> None:
        """Serve many B-only adapters in one batch against PEFT's mixed batch and one forward per adapter (CPU, fp32)."""
        from asymlora.bench.serving import ServingOptions, run_serving, serving_markdown, write_serving_report
        from asymlora.training.env import set_threads

        with user_input():
            options = ServingOptions(
                model=model, adapters=adapters, rows=batch_size, length=max_length, rank=rank, alpha=alpha,
                targets=_names(targets) or ["all-linear"], threads=set_threads(threads), rounds=steps or 5,
                warmup=1 if warmup is None else warmup, seed=seed, memory=memory)
            options.check()
            from asymlora.models import check_reachable
            check_reachable(options.model)
        _run_and_write(out_dir(out, "bench-serving"), lambda progress: run_serving(options, progress),
                       write_serving_report, serving_markdown)


def _add_throughput(group: typer.Typer) -> None:
    """Register ``throughput`` on the command group."""
    @group.command("throughput")
    def throughput(
        rows: str = typer.Option(..., "--rows", help="configuration:rank pairs timed interleaved in one process, "
                                 "e.g. peft_lora:8,peft_adalora:8,b_only:8,b_only:16"),
        repeats: int = typer.Option(3, "--repeats", help="repeats (each builds every row afresh)"),
        out: Optional[str] = out_option("bench-throughput"),
        model: Optional[str] = _model("the packaged all-MiniLM-L6-v2"),
        layers: Optional[int] = typer.Option(None, "--layers", min=1, help="number of layers (cut a layout or model)"),
        batch_size: int = batch_size_option(16, "sequences per step", minimum=1),
        max_length: int = max_length_option(128, "tokens per sequence (pad / truncate)", minimum=1),
        alpha: float = _alpha(), dropout: float = _dropout(), targets: Optional[str] = _targets(),
        dtype: str = dtype_option(), device: str = device_option(), threads: Optional[int] = threads_option(),
        steps: Optional[int] = _steps("30"), warmup: Optional[int] = _warmup("3"),
        task: str = typer.Option("classification", "--task", help="classification or causal_lm"),
        seed: int = _seed(),
    ) -> None:
        """The rebuttal's throughput table: every row (configuration at a rank) timed interleaved."""
        from asymlora.bench.configs import DEFAULT_SUITE
        from asymlora.bench.suite import validate
        from asymlora.bench.throughput import parse_rows, run_throughput, throughput_markdown, write_throughput_report

        with user_input():
            parsed = parse_rows(rows)
            if repeats < 1:
                raise ValueError(f"--repeats must be at least 1, got {repeats}")
            options = _suite_options(model=model, layers=layers, batch_size=batch_size, max_length=max_length,
                                     rank=8, alpha=alpha, dropout=dropout, targets=targets, dtype=dtype,
                                     device=device, threads=threads, steps=steps, warmup=warmup, task=task,
                                     configurations=None, memory=True, svd=True, seed=seed,
                                     default_configurations=DEFAULT_SUITE)
            options.configurations = sorted({row.configuration for row in parsed})
            validate(options)
            if options.model is not None:
                from asymlora.models import LAYOUTS, check_reachable, resolve_model

                if options.model not in LAYOUTS:
                    check_reachable(resolve_model(options.model))
        _run_and_write(out_dir(out, "bench-throughput"), lambda progress: run_throughput(options, parsed, repeats, progress),
                       write_throughput_report, throughput_markdown)


def _add_frontier(group: typer.Typer) -> None:
    """Register ``frontier`` on the command group."""
    @group.command("frontier")
    def frontier(
        arms: str = typer.Option("lora:2,lora:8,lora:32,b_only:8,b_only:32,b_only:128", "--arms",
                                 help="method:rank pairs (lora, b_only)"),
        out: Optional[str] = out_option("bench-frontier"),
        model: str = typer.Option("minilm", "--model", help="the model every arm adapts (query/value)"),
        batch_size: int = batch_size_option(16, "sequences per step", minimum=1),
        max_length: int = max_length_option(64, "tokens per sequence (pad / truncate)", minimum=1),
        dropout: float = _dropout(),
        steps: int = typer.Option(3, "--steps", min=1, help="training steps each fresh process takes"),
        threads: Optional[int] = threads_option(),
    ) -> None:
        """Peak training memory of each arm of a budget frontier: measured in a fresh process, predicted by the planner."""
        from asymlora.planning.frontier_memory import FrontierSetting, measure, parse_arms
        from asymlora.models import check_reachable, resolve_model

        with user_input():
            parsed = parse_arms(arms)
            check_reachable(resolve_model(model))
            setting = FrontierSetting(model=model, batch=batch_size, length=max_length, dropout=dropout,
                                      steps=steps, threads=threads or 1)
        folder = out_dir(out, "bench-frontier")
        with _progress_bar() as progress:
            document = measure(parsed, setting, progress)
        document["command"] = command_line()
        path = write_json(folder / "frontier_memory.json", document)
        for row in document["arms"]:
            typer.echo(f"{row['method']} r={row['rank']}: measured {row['measured_bytes'] / 2**20:.0f} MiB, "
                       f"predicted {row['predicted_bytes'] / 2**20:.0f} MiB ({row['planner_method']})")
        typer.echo(f"wrote {path}")


def _run_and_write(folder, run, write, to_markdown) -> None:
    """``document = run(progress)`` under a progress bar, stamped with the command line, written to
    ``folder`` by ``write(document, folder)`` and printed by ``to_markdown(document)``."""
    with _progress_bar() as progress:
        document = run(progress)
    document["command"] = command_line()
    paths = [str(p) for p in write(document, folder).values()]
    typer.echo(to_markdown(document))
    typer.echo(f"wrote {', '.join(paths[:-1])} and {paths[-1]}")


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
