"""``asymlora eval rouge``: generate summaries with a base model or a finished training run, score
them with ROUGE (bootstrap 95% intervals), write predictions beside the metrics. The paper's Table 3
layout of several evaluations is ``asymlora report SUMMARY_JSON...`` (:mod:`asymlora.commands.report`).
(``summarise generate`` and ``summarise table``, the old spellings, still work, with one warning line.)
Registered under ``asymlora eval`` by :mod:`asymlora.commands.eval` (:func:`add_to`). See docs/summarisation.md."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from typing import Optional

import typer

from asymlora.commands.common import (UserError, batch_size_option, device_option, device_name, out_option, out_dir,
                                      threads_option, user_input)


#: Generation settings: the option that sets each and its smallest value.
FLAG_MINIMA = {"num_beams": ("--beams", 1), "max_new_tokens": ("--max-new-tokens", 1),
               "min_new_tokens": ("--min-new-tokens", 0), "no_repeat_ngram_size": ("--no-repeat-ngram", 0)}


def _command() -> str | None:
    """The command line as typed (``None`` when not run from the command line)."""
    if sys.argv[1:3] not in (["eval", "rouge"], ["summarise", "generate"]):
        return None
    return "asymlora " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def add_to(group: typer.Typer) -> None:
    """Register ``rouge`` on the ``eval`` group."""
    @group.command("rouge")
    def generate(
        task: Optional[str] = typer.Option(None, "--task", help="summarisation task (aclsum_summary, xsum, "
                                           "cnn_dailymail, *_lm, aclsum_summary_s2s); default: the run's"),
        model: Optional[str] = typer.Option(None, "--model", help="base model to evaluate untuned (registry name, "
                                            "folder or hub id)"),
        run: Optional[str] = typer.Option(None, "--run", help="finished training run folder (metrics.json + adapter/)"),
        split: str = typer.Option("test", "--split", help="split to summarise"),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="first N examples of the split (default all)"),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="local data folder (train/validation/test "
                                               ".jsonl, .json or .csv)"),
        beams: Optional[int] = typer.Option(None, "--beams", help="beam width (1 = greedy; default: the task's)"),
        max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="default: the task's"),
        min_new_tokens: Optional[int] = typer.Option(None, "--min-new-tokens", help="default: the task's"),
        length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="default: the task's"),
        no_repeat_ngram: Optional[int] = typer.Option(None, "--no-repeat-ngram", help="0 = off; default: the task's"),
        max_source_length: Optional[int] = typer.Option(None, "--max-source-length",
                                                        help="source / prompt tokens kept (default: the run's length)"),
        batch_size: int = batch_size_option(8, "sources per generate call"),
        bootstrap: int = typer.Option(1000, "--bootstrap", help="bootstrap resamples of the 95% intervals"),
        seed: int = typer.Option(0, "--seed", min=0, help="generation and bootstrap seed"),
        threads: Optional[int] = threads_option(),
        device: str = device_option(),
        out: Optional[str] = out_option("summarise"),
    ) -> None:
        """Summarise a split and score it with ROUGE; write predictions.jsonl, summary.json and table.md."""
        import torch

        from asymlora.training.env import set_threads

        from asymlora.evaluation.summarise import (SummariseOptions, generative_task, load_subject, select,
                                                   summarise, summary_document, write_outputs)
        from asymlora.evaluation.trained import read_run

        with user_input():  # every argument, the run folder and the data files are the user's
            set_threads(threads)
            device = device_name(device)
            options = SummariseOptions(split=split, limit=limit, batch_size=batch_size,
                                       max_source_length=max_source_length, bootstrap=bootstrap, seed=seed)
            changes = {k: v for k, v in dict(num_beams=beams, max_new_tokens=max_new_tokens,
                                             min_new_tokens=min_new_tokens, length_penalty=length_penalty,
                                             no_repeat_ngram_size=no_repeat_ngram).items() if v is not None}
            for key, (flag, low) in FLAG_MINIMA.items():
                if key in changes and changes[key] < low:
                    raise ValueError(f"{flag} must be >= {low} (got {changes[key]})")
            if (model is None) == (run is None):
                raise ValueError("give exactly one of --model (a base model) and --run (a finished training run)")
            trained = read_run(run) if run is not None else None
            chosen, _ = generative_task(task or (trained.task if trained else ""))
            generation = dataclasses.replace(chosen.generation, **changes)
            # the data before the weights: a bad file fails in seconds
            examples = select(chosen, split, limit, data_dir if data_dir is not None
                              else (trained.data_dir if trained else None))
            subject = load_subject(chosen.name, model=model, run=run, device=device, seed=seed)
        result = summarise(subject, examples, generation, options, device)
        document = summary_document(result, subject, options, {"command": _command(), "data_dir": data_dir,
                                                               "threads": torch.get_num_threads(), "device": device})
        folder = out_dir(out, "summarise")
        paths = write_outputs(folder, result, document, options.snippet)
        typer.echo((folder / "table.md").read_text(encoding="utf-8"))
        typer.echo(f"{len(result.predictions)} of {examples.split_size} {split} examples; {result.sources_cut} "
                   f"sources cut to {result.generation['max_source_length']} tokens; "
                   f"{document['generated_tokens_per_second']:.1f} generated tokens/s")
        typer.echo("wrote " + ", ".join(str(p) for p in paths))


__all__ = ["add_to", "UserError"]
