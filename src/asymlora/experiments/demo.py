"""``make demo``: the paper's question on a laptop — MiniLM on real tweets, no hub, minutes on 2 cores.

1. Variants: for each demo method, the trainable parameters, which factor is frozen / trained and,
   for a frozen orthonormal factor, ``max |A Aᵀ − I|`` (or ``max |Bᵀ B − I|``) over adapted layers.
2. The grid of :data:`DEMO` (``configs/demo.yaml`` is the same spec as a file): MiniLM on
   ``tweets`` with LoRA r=8, \\hat B_0 A_rand r=8, B_rand \\hat A_0 r=8, \\hat B_0 A_rand r=16 and the
   head-only linear probe (the floor), trained through :func:`asymlora.experiments.reproduce.reproduce`
   (so finished runs are skipped on a second call).
3. The table (accuracy, macro-F1, trainable params, samples / s, adapter file size) as markdown,
   JSON and a PNG plot, via :mod:`asymlora.experiments.report`.

Budget (see docs/training.md for the measurements): ``max_length 48`` (90% of tweets fit), 150
steps of batch 16 over 2,400 training tweets (one epoch), 400 validation and 400 test tweets, lr 1e-3,
two evaluations per run, no Trainer checkpoints. ``configs/demo_evidence.yaml`` is the same grid
with 3 seeds and a larger budget (the committed evidence).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

DEMO: dict = {
    "name": "demo",
    "description": "MiniLM on tweets: LoRA vs B-only vs A-only (r=8), B-only r=16, linear probe",
    "model": "minilm",
    "tasks": ["tweets"],
    "methods": ["lora", "b_only", "a_only", "linear_probe"],
    "ranks": [8],
    "runs": [{"method": "b_only", "rank": 16}],
    "seeds": [0],
    "adapter_seeds": "per_seed",
    "overrides": {"max_steps": 150, "train_limit": 2400, "eval_limit": 400, "max_length": 48,
                  "learning_rate": 1e-3, "evals_per_run": 2, "save_checkpoints": False},
}
#: ``--quick``: the same grid on a smaller budget (a smoke test of the whole pipeline).
QUICK_OVERRIDES = {"max_steps": 10, "train_limit": 160, "eval_limit": 100, "evals_per_run": 1}


def demo_spec(quick: bool = False, seeds: int | None = None):
    from asymlora.experiments.spec import validate

    data = copy.deepcopy(DEMO)
    if quick:
        data["name"] = "demo_quick"
        data["overrides"].update(QUICK_OVERRIDES)
    if seeds is not None:
        from asymlora.experiments.grid import seeds_for

        data["seeds"] = seeds_for(validate(copy.deepcopy(data)), seeds)
    return validate(data, "demo")


def _orthonormality_error(factor, frozen: str) -> float:
    import torch

    f = factor.detach().double()
    gram = f @ f.T if frozen == "A" else f.T @ f
    return float((gram - torch.eye(gram.shape[0], dtype=gram.dtype)).abs().max())


def variants(spec, seed: int = 0) -> list[dict]:
    """One row per (method, rank) of the demo grid: trainable params and the frozen factor's shape."""
    from asymlora.adapters.inject import adapted_modules
    from asymlora.experiments.grid import method_ranks
    from asymlora.methods import get_method, prepare
    from asymlora.models import load_for_sequence_classification, resolve_model
    from asymlora.tasks import get_task

    ref = resolve_model(spec.model)
    task = get_task(spec.tasks[0])
    rows = []
    for method, rank in method_ranks(spec):
        m = get_method(method)
        model = load_for_sequence_classification(ref, task.num_labels, seed=seed)
        total = sum(p.numel() for p in model.parameters())
        model = prepare(model, m, rank=max(rank, 1), alpha=spec.overrides.get("alpha", task.hyper.alpha),
                        targets=list(ref.default_targets), seed=seed, head_modules=list(ref.head), total_steps=100)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        modules = adapted_modules(model) if m.kind == "adapter" else {}
        frozen = m.frozen_factors
        errors = [_orthonormality_error(getattr(mod, f), f) for mod in modules.values() for f in frozen
                  if (m.init_A if f == "A" else m.init_B) == "orthonormal"]
        rows.append({"method": method, "label": m.label, "rank": rank, "trained": m.trained_factors or
                     ("all" if m.kind == "full" else "head"), "frozen": frozen or "-",
                     "adapted_modules": len(modules), "trainable_params": trainable, "total_params": total,
                     "trainable_percent": 100.0 * trainable / total,
                     "max_orthonormality_error": max(errors) if errors else None})
    return rows


def variants_markdown(rows: list[dict]) -> str:
    lines = ["| Method | rank | trained | frozen | adapted layers | trainable params | % | "
             "frozen factor: max abs(A Aᵀ − I) or abs(Bᵀ B − I) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = "—" if r["max_orthonormality_error"] is None else f"{r['max_orthonormality_error']:.1e}"
        lines.append(f"| {r['label']} | {r['rank'] or '—'} | {r['trained']} | {r['frozen']} | {r['adapted_modules']} "
                     f"| {r['trainable_params']:,} | {r['trainable_percent']:.3f}% | {err} |")
    return "\n".join(lines)


def run_demo(out: str | Path, quick: bool = False, seeds: int | None = None, echo=print) -> dict:
    """Variants, the grid, the report; everything under ``out``. Returns the rendered report."""
    from asymlora.atomic import atomic_write_text
    from asymlora.experiments.report import render
    from asymlora.experiments.reproduce import reproduce

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = demo_spec(quick, seeds)
    rows = variants(spec)
    table = variants_markdown(rows)
    atomic_write_text(out / "variants.md", "# Variants (MiniLM, 3-class head)\n\n" + table + "\n")
    atomic_write_text(out / "variants.json", json.dumps(rows, indent=2) + "\n")
    echo("Variants (MiniLM, adapters on query,value; the head is trained by every method):")
    echo(table)
    echo("")
    result = reproduce(spec, out, spec.seeds, None, None, echo=echo)
    rendered = render(out / "results.jsonl", out, title=f"{spec.name}: MiniLM on tweets")
    echo("")
    echo(rendered["markdown"])
    echo(f"wrote {', '.join(rendered['files'])}, {out / 'variants.md'}")
    rendered["failed"] = result["failed"]
    return rendered
