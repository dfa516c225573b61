"""``asymlora eval ood RUNS_DIR_OR_RESULTS --out DIR``: tweet-trained classifiers on IMDB reviews.

Every run (a run folder, a folder of runs, or a ``results.jsonl`` of ``asymlora reproduce``) is
loaded back, scored on the fixed IMDB evaluation subset and on the tweets test split by the
two-logit rule (:mod:`asymlora.evaluation.ood`), and appended as one line to ``DIR/ood.jsonl``.
A run already scored there with the same ``metrics.json`` and the same IMDB settings is skipped.
Then ``DIR/ood.md`` and ``DIR/ood.json`` are rewritten from every line: mean (std) over seeds per
method of in-domain accuracy, out-of-domain accuracy and the gap. ``asymlora report DIR/ood.jsonl``
only rewrites them, e.g. after the lines of several scoring processes were merged into one ``ood.jsonl``
(``--report-only``, the old way, still works, with one warning line).

Registered under ``asymlora eval`` by :mod:`asymlora.commands.eval` (:func:`add_to`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from asymlora.commands.common import (UserError, atomic_write_text, batch_size_option, device_name, device_option,
                                      max_length_option, out_dir, out_option, threads_option, write_json)


def _run_folders(source: str) -> list[Path]:
    from asymlora.evaluation.trained import find_runs, folders_of_records
    from asymlora.experiments.store import read_results

    path = Path(source)
    if path.is_file():
        return folders_of_records(read_results(path, missing_ok=False), path)
    return find_runs(path)


def add_to(group: typer.Typer) -> None:
    """Register ``ood`` on the ``eval`` group."""
    @group.command("ood")
    def ood(
        source: str = typer.Argument(None, help="a run folder, a folder of runs, or a results.jsonl "
                                                "(none with --report-only)"),
        out: str = out_option("ood"),
        limit: int = typer.Option(5000, "--limit", help="IMDB reviews to score (fixed stratified subset; 0 = all)"),
        max_length: int = max_length_option(256, "reviews are cut to this many tokens"),
        batch_size: int = batch_size_option(32, "reviews per forward pass"),
        data_dir: str = typer.Option(None, "--data-dir", help="the IMDB CSV or its folder (default: the cache)"),
        device: str = device_option(),
        threads: int = threads_option(),
        report_only: bool = typer.Option(False, "--report-only", hidden=True,
                                         help="deprecated: asymlora report OUT/ood.jsonl"),
    ) -> None:
        """Score tweet-trained runs out of distribution (IMDB) and in distribution by the same rule."""

        from asymlora.evaluation.ood import read_scores, score
        from asymlora.evaluation.trained import load_trained, read_run
        from asymlora.experiments.store import append_result
        from asymlora.tasks import get_task, imdb
        from asymlora.training.env import set_threads

        if max_length < 4 or batch_size < 1:
            raise UserError(f"--max-length must be >= 4 and --batch-size >= 1 (got {max_length}, {batch_size})")
        if report_only:
            typer.echo(f"warning: '--report-only' is deprecated; use 'asymlora report {Path(out or 'runs/ood')}"
                       "/ood.jsonl'", err=True)
            if source is not None:
                raise UserError(f"--report-only scores nothing: drop the SOURCE {source!r}")
            jsonl = Path(out or "runs/ood") / "ood.jsonl"
            if not jsonl.is_file():
                raise UserError(f"{jsonl}: no scores to report; score runs first (asymlora eval ood RUNS --out "
                                f"{jsonl.parent}), --report-only only rewrites their tables")
            _echo(write_reports(jsonl.parent, jsonl, str(jsonl)))
            return
        if source is None:
            raise UserError("give a SOURCE (a run folder, a folder of runs, or a results.jsonl), or --report-only")
        folder = out_dir(out, "ood")
        jsonl = folder / "ood.jsonl"
        set_threads(threads)
        device = device_name(device)
        infos = []
        for run in _run_folders(source):
            info = read_run(run)
            labels = get_task(info.task).label_names or ()
            if "negative" in labels and "positive" in labels:
                infos.append(info)
            else:
                typer.echo(f"skip {info.run_id}: task {info.task!r} has no negative/positive classes")
        if not infos:
            raise UserError(f"{source}: no run of a sentiment task (negative/positive classes) to score")
        done = {s.key() for s in read_scores(jsonl)}
        todo = [i for i in infos if (i.digest, limit, max_length) not in done]
        if todo:
            reviews = imdb.load(data_dir, limit)
            for info in todo:
                result = score(load_trained(info, device), reviews, limit, max_length, batch_size, device)
                append_result(jsonl, result.to_dict())
                typer.echo(f"{info.run_id}: in-domain (neg/pos) {result.in_domain_binary_accuracy:.2f}, "
                           f"IMDB {result.ood_accuracy:.2f}, gap {result.gap:.2f}")
        typer.echo(f"{len(infos) - len(todo)} run(s) already scored, {len(todo)} scored now")
        _echo(write_reports(folder, jsonl, str(source)))


def _echo(written: tuple[str, list[str]]) -> None:
    typer.echo(written[0])
    typer.echo(f"wrote {', '.join(written[1])}")


def write_reports(folder: Path, jsonl: Path, source: str) -> tuple[str, list[str]]:
    """Rewrite ``folder/ood.md`` and ``folder/ood.json`` from every line of ``jsonl``.

    Args:
        folder: where the tables go.
        jsonl: the ``ood.jsonl`` of scored runs.
        source: what the runs came from (recorded in ood.json).

    Returns:
        ``(the markdown table, the paths written)``.
    """
    from asymlora.evaluation.ood import read_scores, summarise, to_markdown

    scores = read_scores(jsonl)
    rows = summarise(scores)
    write_json(folder / "ood.json", {"rows": [r.to_dict() for r in rows], "source": source})
    report = to_markdown(rows, scores)
    atomic_write_text(folder / "ood.md", report)
    return report, [str(folder / "ood.md"), str(folder / "ood.json")]
