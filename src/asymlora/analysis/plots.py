"""PNG figures for the analysis commands (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import io
import math
import textwrap
import os

import numpy as np

from asymlora.atomic import atomic_write_bytes

CURVE_STYLE = {
    "frozen_A": ("A frozen (Q), B trained", "C0", "-"),
    "frozen_B": ("B frozen (U), A trained", "C3", "-"),
    "best_rank": ("best rank r (Eckart–Young)", "C2", "-"),
    "full": ("full fine-tuning (noise floor)", "k", ":"),
}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def theory_losses(result: dict, path: str | os.PathLike) -> None:
    """Expected loss against r/d, one panel per spectrum: the four curves, the E[loss | B frozen]
    formula (dashed) and the no-adapter loss (grey)."""
    plt = _pyplot()
    spectra = result["settings"]["spectra"]
    fig, axes = plt.subplots(1, len(spectra), figsize=(4.6 * len(spectra), 3.8), squeeze=False)
    for ax, name in zip(axes[0], spectra):
        rows = [r for r in result["curves"] if r["spectrum"] == name]
        x = [r["r_over_d"] for r in rows]
        for key, (label, colour, style) in CURVE_STYLE.items():
            y = [r[key] for r in rows]
            ax.plot(x, y, style, color=colour, marker="o" if style == "-" else None, ms=3, label=label)
        ax.plot(x, [r["frozen_B_formula"] for r in rows], "--", color="C1", label="E[loss | B frozen] formula")
        ax.axhline(rows[0]["no_adapter"], color="0.6", lw=0.8, label="no adapter")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("r / d")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("expected population loss")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.1))
    s = result["settings"]
    fig.suptitle(f"linear regression, d_in={s['d_in']}, d_out={s['d_out']}, σ={s['noise_std']}, "
                 f"{s['n_draws']} draws of Q, U", fontsize=10)
    _save(fig, path)


def theory_limit(result: dict, path: str | os.PathLike) -> None:
    """Relative error of E[P_Q] against rΣ/TrΣ as d/r grows, per spectrum, with the Monte Carlo noise."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for i, name in enumerate(result["settings"]["spectra"]):
        rows = [r for r in result["limit"] if r["spectrum"] == name]
        x = [r["d_over_r"] for r in rows]
        ax.plot(x, [r["rel_error"] for r in rows], "-o", ms=3, color=f"C{i}", label=name)
        ax.plot(x, [r["mc_noise"] for r in rows], ":", color=f"C{i}", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("d / r")
    ax.set_ylabel("‖E[P_Q] − rΣ/TrΣ‖_F / ‖rΣ/TrΣ‖_F")
    ax.set_title(f"limit E[(QΣ^½)⁺(QΣ^½)] → rΣ/TrΣ (r={result['settings']['limit_rank']}; dotted: MC noise)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def similarity_heatmaps(panels: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """A grid of heatmaps like the paper's Figure 1.

    ``panels``: dicts with ``title``, ``matrix`` (rows × columns, NaN shown blank), ``rows`` and
    ``columns`` (tick labels), ``row`` / ``col`` (grid position). Colour scale [0, 1].
    """
    plt = _pyplot()
    n_rows = 1 + max(p["row"] for p in panels)
    n_cols = 1 + max(p["col"] for p in panels)
    widest = max(np.asarray(p["matrix"]).shape[1] for p in panels)
    tallest = max(np.asarray(p["matrix"]).shape[0] for p in panels)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(max(2.8, 0.42 * widest + 1.6) * n_cols, max(2.6, 0.24 * tallest + 2.2) * n_rows))
    image = None
    for ax in axes.flat:
        ax.axis("off")
    for panel in panels:
        ax = axes[panel["row"]][panel["col"]]
        ax.axis("on")
        matrix = np.asarray(panel["matrix"], dtype=float)
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(textwrap.fill(panel["title"], 34), fontsize=7)
        ax.set_xticks(range(len(panel["columns"])))
        ax.set_xticklabels(panel["columns"], rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(panel["rows"])))
        ax.set_yticklabels(panel["rows"], fontsize=6)
        if matrix.size <= 120:
            for (i, j), value in np.ndenumerate(matrix):
                if math.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                            color="white" if value < 0.5 else "black")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="subspace similarity")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def similarity_summary(summary: list[dict], chance: float | None, path: str | os.PathLike, labels: dict) -> None:
    """Bars: mean similarity (± std over modules and pairs) per comparison, A and B side by side,
    one panel per method; a dashed line at the chance level r/n."""
    plt = _pyplot()
    summary = [row for row in summary if row["factor"] in ("A", "B")]
    methods = list(dict.fromkeys(row["method"] for row in summary))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.8 * len(methods), 3.8), squeeze=False, layout="constrained")
    for ax, method in zip(axes[0], methods):
        rows = [r for r in summary if r["method"] == method]
        comparisons = [c for c in labels if any(r["comparison"] == c for r in rows)]
        for k, (factor, colour) in enumerate((("A", "C0"), ("B", "C3"))):
            values = {r["comparison"]: r for r in rows if r["factor"] == factor}
            xs = [i + (k - 0.5) * 0.38 for i, c in enumerate(comparisons) if c in values]
            ys = [values[c]["mean"] for c in comparisons if c in values]
            es = [values[c]["std"] for c in comparisons if c in values]
            ax.bar(xs, ys, width=0.36, yerr=es, color=colour, label=f"{factor}", capsize=2)
        if chance is not None:
            ax.axhline(chance, ls="--", color="k", lw=0.8, label=f"chance r/n = {chance:.3f}")
        ax.set_xticks(range(len(comparisons)))
        ax.set_xticklabels([labels[c] for c in comparisons], rotation=20, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"method {method}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean subspace similarity")
    axes[0][-1].legend(fontsize=7)
    _save(fig, path)


def validation_curves(groups: list[dict], metric: str, path: str | os.PathLike) -> None:
    """Validation ``metric`` against the epoch, one colour per run group: each seed thin, the mean bold.

    ``groups``: :class:`asymlora.experiments.curves.GroupSummary` as dicts (``group``, ``epochs``,
    ``mean_curve``, ``curves`` = run id -> values at the group's steps)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for index, group in enumerate(groups):
        colour = f"C{index % 10}"
        for values in group["curves"].values():
            ax.plot(group["epochs"], values, color=colour, lw=0.7, alpha=0.45)
        seeds = len(group["curves"])
        ax.plot(group["epochs"], group["mean_curve"], color=colour, lw=2.0, marker="o", ms=3,
                label=f"{group['group']} ({seeds} seed{'s' if seeds != 1 else ''})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
