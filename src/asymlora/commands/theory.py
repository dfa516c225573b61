"""``asymlora theory``: docs/paper.md §5's linear-regression formulas, checked numerically.

Writes ``theory.json`` (every number), ``theory.md`` (the tables), ``theory.png`` (expected loss
against r/d, the four curves per spectrum) and ``theory_limit.png`` (E[P_Q] against rΣ/TrΣ as d/r
grows) to ``--out`` (default ``runs/theory``).
"""

from __future__ import annotations

import typer

from asymlora.commands.common import UserError, atomic_write_text, out_dir, write_json


def _int_list(text: str | None, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None


def register(app: typer.Typer) -> None:
    @app.command("theory")
    def theory(
        d_in: int = typer.Option(64, "--d-in", help="input dimension d_in"),
        d_out: int = typer.Option(64, "--d-out", help="output dimension d_out"),
        ranks: str = typer.Option("", "--ranks", help="comma-separated ranks (default 1,2,3,4,6,8,… up to d)"),
        noise: float = typer.Option(0.1, "--noise", help="noise standard deviation σ of each output coordinate"),
        spectra: str = typer.Option("isotropic,power_law,low_rank", "--spectra",
                                    help="input covariance spectra: isotropic, power_law, low_rank"),
        exponent: float = typer.Option(1.0, "--exponent", help="power_law spectrum's exponent: λ_i = i^-exponent"),
        effective_fraction: float = typer.Option(1 / 16, "--effective-fraction",
                                                 help="low_rank: fraction of directions carrying the variance"),
        draws: int = typer.Option(200, "--draws", help="Monte Carlo draws of Q and U per rank"),
        limit_rank: int = typer.Option(4, "--limit-rank", help="r for the d/r → ∞ limit check"),
        limit_dims: str = typer.Option("8,16,32,64,128,256,512,1024", "--limit-dims", help="d values of the limit check"),
        gd_steps: int = typer.Option(150, "--gd-steps", help="gradient-descent steps on B"),
        gd_samples: int = typer.Option(2000, "--gd-samples", help="samples for the gradient-descent fit"),
        seed: int = typer.Option(0, "--seed"),
        quick: bool = typer.Option(False, "--quick", help="d=32, 50 draws, smaller limit check"),
        out: str = typer.Option(None, "--out", help="output folder (default runs/theory)"),
    ) -> None:
        """Closed forms, Monte Carlo and a gradient-descent fit for freezing A or B (docs/paper.md §5)."""
        from tqdm import tqdm

        from asymlora.analysis import plots
        from asymlora.analysis.theory import SPECTRA, default_ranks, markdown_report, run_study

        names = [s for s in spectra.replace(" ", "").split(",") if s]
        unknown = [s for s in names if s not in SPECTRA]
        if unknown or not names:
            raise UserError(f"unknown spectrum {unknown[0] if unknown else spectra!r}; known: {', '.join(SPECTRA)}")
        if min(d_in, d_out) < 1 or draws < 2 or gd_steps < 1 or gd_samples < 2:
            raise UserError("d_in, d_out, --gd-steps must be >= 1 and --draws, --gd-samples >= 2")
        dims = _int_list(limit_dims, "--limit-dims") or [8, 16, 32, 64]
        if quick:
            d_in, d_out, draws, dims, gd_steps, gd_samples = min(d_in, 32), min(d_out, 32), 50, [8, 32, 128], 100, 1000
        folder = out_dir(out, "theory")
        steps = len(names) * (len(_int_list(ranks, "--ranks") or default_ranks(min(d_in, d_out))) + 2)
        with tqdm(total=steps, desc="theory", leave=False) as bar:
            def tick(message: str) -> None:
                bar.set_postfix_str(message[:40])
                bar.update(1)
            result = run_study(d_in=d_in, d_out=d_out, noise_std=noise, spectra=names,
                               ranks=_int_list(ranks, "--ranks"), alpha=exponent, effective_fraction=effective_fraction,
                               n_draws=draws, limit_rank=limit_rank, limit_dims=dims, gd_samples=gd_samples,
                               gd_steps=gd_steps, seed=seed, progress=tick)
        report = markdown_report(result)
        plots.theory_losses(result, folder / "theory.png")
        plots.theory_limit(result, folder / "theory_limit.png")
        write_json(folder / "theory.json", result)
        atomic_write_text(folder / "theory.md", report)
        worst_z = max(abs(r["frozen_B_z"]) for r in result["curves"])
        worst_gap = max(abs(r["rel_gap"]) for r in result["gradient_fit"])
        typer.echo(report)
        typer.echo(f"E[loss | B frozen]: Monte Carlo vs formula, worst |z| = {worst_z:.2f}; "
                   f"gradient descent vs closed form, worst relative gap = {worst_gap:.2e}")
        typer.echo(f"wrote {folder}/theory.json, theory.md, theory.png, theory_limit.png")
