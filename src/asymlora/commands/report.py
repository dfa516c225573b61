"""``asymlora report PATH...``: the tables of any result file, whatever command wrote it.

The file's kind picks the renderer (:data:`KINDS`, first match wins):

=============  ======================================================  ===================================
kind           PATH                                                    writes (default ``--out``)
=============  ======================================================  ===================================
ood            ``ood.jsonl`` of ``eval ood`` (or its folder)           ood.md, ood.json (beside the file)
results        a grid's ``results.jsonl`` (or its folder), any .jsonl  report.md/.json/.png (runs/report)
bench          ``bench.json`` of ``bench suite``                       bench.md/.json/.png (runs/report)
sweep          ``sweep.json`` of ``bench sweep``                       sweep.md/.json/.png (runs/report)
serving        ``serving.json`` of ``bench serving``                   serving.md/.json (runs/report)
throughput     ``throughput.json`` of ``bench throughput``             throughput.md/.json (runs/report)
rouge          ``summary.json`` files of ``eval rouge`` (or folders)   table.md/.json (runs/summarise_table)
=============  ======================================================  ===================================

Several PATHs must be of one kind (only ``rouge`` tables take more than one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import typer

from asymlora.commands.common import UserError, out_dir, results_file, user_input


@dataclass(frozen=True)
class Kind:
    """One kind of result file: how to recognise it and how to render its tables.

    claims  ``claims(path) -> bool``: whether ``path`` (a file or folder) is of this kind.
    render  ``render(paths, out, title) -> (markdown, written paths)``; ``out`` None: the kind's default.
    """

    name: str
    claims: Callable[[Path], bool]
    render: Callable[[list[Path], Optional[str], Optional[str]], tuple[str, list[str]]]


def _holds(path: Path, name: str) -> bool:
    """``path`` is called ``name`` (it may not exist yet: the renderer says so) or is a folder holding one."""
    return path.name == name or (path / name).is_file()


def _render_ood(paths, out, title):
    from asymlora.commands.ood import write_reports

    jsonl = paths[0] if paths[0].name == "ood.jsonl" else paths[0] / "ood.jsonl"
    if not jsonl.is_file():
        raise UserError(f"{jsonl}: no scores to report; score runs first (asymlora eval ood RUNS --out "
                        f"{jsonl.parent})")
    folder = out_dir(out, "report") if out else jsonl.parent
    return write_reports(folder, jsonl, str(jsonl))


def _render_results(paths, out, title):
    from asymlora.experiments.report import render
    from asymlora.experiments.store import read_results

    source = results_file(paths[0])
    with user_input(str(source)):
        read_results(source, missing_ok=False)
    rendered = render(source, out_dir(out, "report"), title)
    return rendered["markdown"], list(rendered["files"])


def _document(path: Path, keys: tuple[str, ...]) -> dict:
    with user_input(str(path)):
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or any(k not in document for k in keys):
            raise ValueError(f"{path}: not a {path.name} written by asymlora (no {', '.join(keys)})")
    return document


def _bench_kind(stem: str, keys: tuple[str, ...], module: str, to_markdown: str, chart: str | None) -> Kind:
    """A kind for one bench document (``<stem>.json``), rendered by ``module``'s functions."""
    def render(paths, out, title):
        import importlib

        from asymlora.bench.report import write_documents

        functions = importlib.import_module(module)
        document = _document(paths[0], keys)
        markdown = getattr(functions, to_markdown)
        written = write_documents(document, out_dir(out, "report"), stem, markdown,
                                  getattr(functions, chart) if chart else None)
        return markdown(document), [str(p) for p in written.values()]

    return Kind(stem, lambda path: path.name == f"{stem}.json", render)


def _render_rouge(paths, out, title):
    from asymlora.commands.common import atomic_write_text, command_line, write_json
    from asymlora.evaluation.summary_table import markdown, read_documents, table_document

    with user_input():
        documents = read_documents(paths)
    text = markdown(documents)
    folder = out_dir(out, "summarise_table")
    write_json(folder / "table.json", {**table_document(documents), "command": command_line()})
    atomic_write_text(folder / "table.md", text)
    return text, [str(folder / "table.md"), str(folder / "table.json")]


def _is_rouge(path: Path) -> bool:
    return path.name == "summary.json" or path.is_dir() and any(path.rglob("summary.json"))


#: The kinds of result file, tried in this order.
KINDS: tuple[Kind, ...] = (
    Kind("ood", lambda path: _holds(path, "ood.jsonl") and not (path / "results.jsonl").is_file(), _render_ood),
    Kind("results", lambda path: path.suffix == ".jsonl" or _holds(path, "results.jsonl"), _render_results),
    _bench_kind("bench", ("configurations",), "asymlora.bench.report", "markdown", "bar_chart"),
    _bench_kind("sweep", ("sweep", "results"), "asymlora.bench.report", "sweep_markdown", "sweep_chart"),
    _bench_kind("serving", ("serving", "results"), "asymlora.bench.serving", "serving_markdown", None),
    _bench_kind("throughput", ("rows", "workload"), "asymlora.bench.throughput", "throughput_markdown", None),
    Kind("rouge", _is_rouge, _render_rouge),
)


def _render_frontier(paths: list[Path], memory: Path, out: Optional[str]) -> tuple[str, list[str]]:
    """The budget frontier of one results file with a ``frontier_memory.json`` (see
    :mod:`asymlora.experiments.frontier`); writes frontier.md/.json/.png (default runs/report)."""
    from asymlora.commands.common import atomic_write_text, command_line, write_json
    from asymlora.experiments import frontier as fr
    from asymlora.experiments.store import read_results

    source = _one_results_file(paths, "--frontier")
    with user_input(str(source)):
        records = read_results(source, missing_ok=False)
    with user_input(f"--frontier {memory}"):
        arms = fr.arms_from_document(json.loads(memory.read_text(encoding="utf-8")))
    with user_input(str(source)):
        built = fr.build(records, arms)
    folder = out_dir(out, "report")
    text = fr.markdown(built, command_line())
    write_json(folder / "frontier.json", {**fr.as_json(built), "command": command_line()})
    atomic_write_text(folder / "frontier.md", text)
    fr.plot(built, folder / "frontier.png")
    return text, [str(folder / name) for name in ("frontier.md", "frontier.json", "frontier.png")]


def _render_gaps(paths: list[Path], reference: str, out: Optional[str]) -> tuple[str, list[str]]:
    """Each method's gap to ``reference`` per (task, model, rank) of one results file, and how the gaps move
    between model sizes (see :mod:`asymlora.experiments.gaps`); writes gaps.md/.json (default runs/report)."""
    from asymlora.commands.common import atomic_write_text, command_line, write_json
    from asymlora.experiments import gaps
    from asymlora.experiments.store import read_results

    source = _one_results_file(paths, "--against")
    with user_input(str(source)):
        built = gaps.build(read_results(source, missing_ok=False), reference)
    folder = out_dir(out, "report")
    text = gaps.markdown(built, command_line())
    write_json(folder / "gaps.json", {**gaps.as_json(built), "command": command_line()})
    atomic_write_text(folder / "gaps.md", text)
    return text, [str(folder / name) for name in ("gaps.md", "gaps.json")]


def _one_results_file(paths: list[Path], option: str) -> Path:
    if len(paths) != 1:
        raise UserError(f"{option} takes one results file (the runs at each arm's chosen rate), not {len(paths)}")
    return results_file(paths[0])


def kind_of(paths: list[Path]) -> Kind:
    """The one kind every path is of.

    Raises:
        UserError: a path of no known kind (or missing), or paths of different kinds.
    """
    found = []
    for path in paths:
        kind = next((k for k in KINDS if k.claims(path)), None)
        if kind is None and not path.exists():
            raise UserError(f"{path}: no such file or folder")
        if kind is None:
            raise UserError(f"{path}: not a result file asymlora knows (results.jsonl, ood.jsonl, bench.json, "
                            "sweep.json, serving.json, throughput.json, summary.json)")
        found.append(kind)
    if len({k.name for k in found}) > 1 or (len(paths) > 1 and found[0].name != "rouge"):
        raise UserError(f"give one result file (or several summary.json), not {len(paths)} of kinds "
                        f"{', '.join(sorted({k.name for k in found}))}")
    return found[0]


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        paths: List[str] = typer.Argument(..., help="a result file (or its folder): results.jsonl, ood.jsonl, "
                                                    "bench.json, sweep.json, serving.json, throughput.json, "
                                                    "or summary.json files of eval rouge"),
        out: Optional[str] = typer.Option(None, "--out", help="output folder (default: runs/report; ood tables "
                                                              "beside the ood.jsonl; rouge runs/summarise_table)"),
        title: Optional[str] = typer.Option(None, "--title", help="report title of a results.jsonl "
                                                                  "(default: the experiment names)"),
        frontier: Optional[str] = typer.Option(None, "--frontier", help="frontier_memory.json of bench frontier: "
                                               "render the results (runs at each arm's chosen rate) as a budget "
                                               "frontier instead (frontier.md/.json/.png)"),
        against: Optional[str] = typer.Option(None, "--against", help="a method (e.g. b_only): each other "
                                              "method's gap to it per model and rank, with pooled std and its "
                                              "standard error, and how the gap moves between model sizes "
                                              "(gaps.md/.json)"),
    ) -> None:
        """The tables of a result file, by its kind: markdown beside JSON (and a chart where one exists)."""
        sources = [Path(p) for p in paths]
        if frontier is not None and against is not None:
            raise UserError("give --frontier or --against, not both (they are two different reports)")
        if against is not None:
            from asymlora.methods import get_method

            with user_input("--against"):
                reference = get_method(against).name
            markdown, written = _render_gaps(sources, reference, out)
        elif frontier is not None:
            markdown, written = _render_frontier(sources, Path(frontier), out)
        else:
            markdown, written = kind_of(sources).render(sources, out, title)
        typer.echo(markdown)
        typer.echo(f"wrote {', '.join(map(str, written))}")
