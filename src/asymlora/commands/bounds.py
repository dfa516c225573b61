"""``asymlora bounds``: the information-theoretic generalisation bound on a model's real shapes.

Writes ``bounds.json`` and ``bounds.md`` to ``--out`` (default ``runs/bounds``).
"""

from __future__ import annotations

import typer

from asymlora.commands.common import UserError, atomic_write_text, out_dir, user_input, write_json


def parse_targets(text: str):
    """``"query,value"`` -> list; ``"all-linear"`` and ``"re:<regex>"`` stay strings."""
    text = text.strip()
    if text == "all-linear" or text.startswith("re:"):
        return text
    targets = [t for t in text.replace(" ", "").split(",") if t]
    if not targets:
        raise UserError("--targets is empty; give module-name suffixes (query,value), 'all-linear' or 're:<regex>'")
    return targets


def markdown(table: dict, model: str, targets) -> str:
    lines = [f"# Generalisation bound (docs/paper.md §5): {model}", "",
             f"targets={targets}, rank r={table['rank']}, n={table['n']}, σ={table['sigma']}, "
             f"q={table['bits']} bits per parameter, {len(table['modules'])} adapted modules", "",
             "| training | trained parameters | bound on |gen| |", "|---|---|---|"]
    for row in table["bounds"]:
        lines.append(f"| {row['label']} | {row['trained_parameters']:,} | {row['bound']:.4f} |")
    eq = table["b_only_at_equal_budget"]
    lines += ["", f"Equal-budget rank for B only: r_B = r·Σ(d_in+d_out)/Σd_out = {table['equal_budget_rank']:.3f}; "
              f"at r_B = {eq['rank']}: {eq['trained_parameters']:,} trained parameters, bound {eq['bound']:.4f}.", "",
              "| module | d_in | d_out | rank |", "|---|---|---|---|"]
    lines += [f"| {m['name']} | {m['d_in']} | {m['d_out']} | {m['rank']} |" for m in table["modules"]]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("bounds")
    def bounds(
        model: str = typer.Option("minilm", "--model",
                                  help="a model name (minilm, roberta-large, …), a local model folder or a hub id"),
        targets: str = typer.Option(None, "--targets",
                                    help="comma-separated module suffixes, 'all-linear' or 're:<regex>' "
                                         "(default: the model's usual targets)"),
        rank: int = typer.Option(8, "--rank", help="adapter rank r"),
        n: int = typer.Option(1000, "--n", help="number of training samples"),
        sigma: float = typer.Option(1.0, "--sigma", help="sub-Gaussian parameter σ of the loss"),
        bits: float = typer.Option(32.0, "--bits", help="q, bits per trained parameter"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/bounds)"),
    ) -> None:
        """Bound on |gen| for both-trained, B-only and A-only adapters, and the equal-budget rank r_B."""
        from asymlora.analysis.bounds import bounds_table, default_targets, empty_model, module_shapes

        if rank < 1:
            raise UserError(f"--rank must be >= 1, got {rank}")
        if n < 1:
            raise UserError(f"--n must be >= 1, got {n}")
        with user_input():
            parsed = parse_targets(targets) if targets is not None else default_targets(model)
            shapes = module_shapes(empty_model(model), parsed, rank)
        table = bounds_table(shapes, n, sigma, bits)
        table.update({"model": model, "targets": parsed})
        folder = out_dir(out, "bounds")
        report = markdown(table, model, parsed)
        write_json(folder / "bounds.json", table)
        atomic_write_text(folder / "bounds.md", report)
        typer.echo("\n".join(report.splitlines()[:10]))
        typer.echo(f"wrote {folder}/bounds.json, bounds.md")
