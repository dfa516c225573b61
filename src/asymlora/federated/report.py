"""Tables and a plot of a :class:`~asymlora.federated.experiment.Comparison`."""

from __future__ import annotations

import io
import os

from asymlora.atomic import atomic_write_bytes
from asymlora.federated.privacy import DEFAULT_DELTA, gaussian_epsilon, run_label


def _by_method(rounds: list[dict]) -> dict[str, list[dict]]:
    """Round records grouped by run (:func:`~asymlora.federated.privacy.run_label`), in order."""
    out: dict[str, list[dict]] = {}
    for r in rounds:
        label = run_label(r["method"], r.get("noise_multiplier", 0.0), r.get("clipping_norm", 0.0))
        out.setdefault(label, []).append(r)
    return out


def privacy_table(result: dict, delta: float = DEFAULT_DELTA) -> str:
    """One row per differentially private run: z, C, the noise std on the average, ε at ``delta``
    after its rounds (:func:`~asymlora.federated.privacy.gaussian_epsilon`), the clients' mean
    pre-clipping update norm, and accuracy. Empty when no run was private."""
    private = {label: rows for label, rows in _by_method(result["rounds"]).items() if rows[-1].get("clipping_norm")}
    if not private:
        return ""
    lines = [f"| run | noise multiplier z | clipping norm C | noise std σ = zC/N | ε at δ={delta:g} after all rounds "
             "| client update norm before clipping, mean over rounds | final accuracy | best accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for label, rows in private.items():
        last, trained = rows[-1], [r for r in rows if r["round"] > 0]
        epsilon = gaussian_epsilon(last["noise_multiplier"], len(trained), delta)
        norms = [r["update_norm"] for r in trained if r.get("update_norm") is not None]
        lines.append(f"| {label} | {last['noise_multiplier']:g} | {last['clipping_norm']:g} | {last['noise_std']:.3g} "
                     f"| {'∞' if epsilon == float('inf') else format(epsilon, '.3g')} "
                     f"| {_num(sum(norms) / len(norms) if norms else None, '.3g')} | {last['accuracy']:.4f} "
                     f"| {max(r['accuracy'] for r in rows):.4f} |")
    return "\n".join(lines) + "\n"


def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(result: dict) -> str:
    """Two tables: per method (final accuracy, bytes per round, aggregation error, time), then accuracy
    per round with one column per method; a third, :func:`privacy_table`, when some runs were private."""
    methods = _by_method(result["rounds"])
    lines = ["| method | final accuracy | best accuracy | upload / round (all clients) | of which adapter factors "
             "| download / round | ‖avg ΔW − ΔW_agg‖_F, mean over rounds | relative, max over rounds | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in methods.items():
        trained = [r for r in rows if r["round"] > 0]
        errors = [r["agg_error"] for r in trained if r["agg_error"] is not None]
        rel = [r["agg_error_rel"] for r in trained if r["agg_error_rel"] is not None]
        lines.append(f"| {name} | {rows[-1]['accuracy']:.4f} | {max(r['accuracy'] for r in rows):.4f} "
                     f"| {trained[-1]['upload_bytes']:,} B | {trained[-1]['adapter_upload_bytes']:,} B "
                     f"| {trained[-1]['download_bytes']:,} B | {_num(sum(errors) / len(errors) if errors else None, '.3g')} "
                     f"| {_num(max(rel) if rel else None, '.3g')} | {result['seconds'].get(name, 0):.0f} |")
    rounds = max(len(rows) for rows in methods.values())
    lines += ["", "| round | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for i in range(rounds):
        cells = [_num(rows[i]["accuracy"] if i < len(rows) else None, ".4f") for rows in methods.values()]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    privacy = privacy_table(result)
    return "\n".join(lines) + "\n" + ("\n" + privacy if privacy else "")


def accuracy_plot(result: dict, path: str | os.PathLike) -> None:
    """Test accuracy against round, one line per method (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in _by_method(result["rounds"]).items():
        ax.plot([r["round"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=name,
                linestyle=":" if name == "centralised" else "-")
    cfg = result["config"]
    ax.set(xlabel="round", ylabel="test accuracy",
           title=f"{cfg['task']} / {cfg['model']}: {cfg['clients']} clients, Dirichlet α={cfg['alpha']}, "
                 f"{cfg['local_steps']} local steps")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
