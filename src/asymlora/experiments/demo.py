"""``make demo``: the paper's question on a laptop, told truthfully in under 5 minutes on 2 cores.

Three parts, everything under ``out``:

1. **Accuracy.** MiniLM (packaged) on real tweets (packaged), no hub: LoRA r=8, B-only
   (\\hat B_0 A_rand) r=8, A-only (B_rand \\hat A_0) r=8 and the head-only linear probe, trained
   through :func:`asymlora.experiments.reproduce.reproduce` (finished runs are skipped on a second
   call). The table uses plain-text labels and states seeds and budget, and leaves out the runs'
   samples/s (:data:`NOT_COMPARABLE`). The reading is computed from the numbers: this run's gaps, then
   the committed grids' gaps and order read from their files (:data:`COMMITTED`, :func:`interpretation`).
2. **Efficiency, measured live.** B-only against PEFT LoRA (and the no-dropout adapter floor) on the
   same model, 16 × 128 tokens, interleaved in one process (:mod:`asymlora.bench.suite`): step time,
   activations saved for backward, checkpoint size.
3. **Where the rest of the evidence lives** and the commands that reproduce it (:data:`EVIDENCE`).

Budget of part 1: ``max_length 48`` (90% of tweets fit), 150 steps of batch 16 over 2,400 training
tweets (one epoch), 400 validation and 400 test tweets, lr 1e-3, dropout 0.05, two evaluations per run,
no Trainer checkpoints. ``configs/demo_evidence.yaml`` is the same grid with 3 seeds and a larger
budget (the committed evidence).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

DEMO: dict = {
    "name": "demo",
    "description": "MiniLM on tweets: LoRA vs B-only vs A-only (r=8), linear probe",
    "model": "minilm",
    "tasks": ["tweets"],
    "methods": ["lora", "b_only", "a_only", "linear_probe"],
    "ranks": [8],
    "seeds": [0],
    "adapter_seeds": "per_seed",
    # mask_stream v1: the dropout masks of the committed demo results (docs/results/demo), kept reproducible
    "overrides": {"mask_stream": "v1", "max_steps": 150, "train_limit": 2400, "eval_limit": 400, "max_length": 48,
                  "learning_rate": 1e-3, "evals_per_run": 2, "save_checkpoints": False, "dropout": 0.05},
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


#: Part 3: where the evidence lives (file, command that writes it).
EVIDENCE = [
    ("what every committed result shows, with its file, command and machine", "docs/evidence.md",
     "asymlora evidence --out docs/evidence.md"),
    ("tweets, one full epoch, 3 seeds (one rate; a rate per method; out of distribution; structured frozen A)",
     "docs/results/converged_tweets/tables.md", "asymlora reproduce configs/converged_tweets.yaml"),
    ("out of distribution: tweets-trained classifiers on IMDB reviews", "docs/ood.md",
     "asymlora eval ood runs/converged_tweets"),
    ("the research's six claims tested on the committed results", "docs/results/claims/claims.md", "asymlora claims"),
]

#: The committed grids on this task whose reading the demo prints beside its own, shortest budget first:
#: (what differs between them, results file under docs/results/).
COMMITTED = (
    ("early training", "demo/results.jsonl"),
    ("one epoch, one learning rate for every method", "converged_tweets/results.jsonl"),
    ("one epoch, each method at the learning rate it chose on validation",
     "converged_tweets/lr_sweep/choice_wide/results.jsonl"),
)

#: Why the runs' own samples/s are not printed beside part 2.
NOT_COMPARABLE = ("Training speed is not compared in part 1: its runs ran one after another on a machine whose "
                  "load changes, so their samples/s (kept in report.md) measure the load as much as the method. "
                  "Part 2 times the methods step by step, interleaved in one process: that ratio is comparable.")


def _repository_docs() -> Path | None:
    """The repository's ``docs/`` folder when running from a checkout (the committed evidence)."""
    folder = Path(__file__).resolve().parents[3] / "docs"
    return folder if (folder / "results").is_dir() else None


def _mean_by_method(records: list[dict], metric: str = "accuracy") -> dict[str, tuple[float, int]]:
    """``{method: (mean, seeds)}`` of ``metric`` at rank 8 (rank 0: the probe), one record per run."""
    import statistics

    from asymlora.experiments.report import latest

    by: dict[str, list[float]] = {}
    for r in latest(records):
        if r.get("rank") in (0, 8) and metric in r.get("metrics", {}):
            by.setdefault(r["method"], []).append(float(r["metrics"][metric]))
    return {m: (statistics.fmean(v), len(v)) for m, v in by.items()}


def budget(records: list[dict]) -> str:
    """The budget the records ran at, read from them: steps, batch, learning rate(s) by method.

    Args:
        records: result records (``train_steps``, ``resolved.batch_size``, ``resolved.learning_rate``).

    Returns:
        str: e.g. ``"1860 steps of 16, learning rate 0.001"``.
    """
    steps = sorted({r["train_steps"] for r in records if r.get("train_steps")})
    batches = sorted({r["resolved"]["batch_size"] for r in records if r.get("resolved", {}).get("batch_size")})
    rates: dict[str, float] = {}
    for r in records:
        if r.get("resolved", {}).get("learning_rate") is not None and r.get("rank") in (0, 8):
            rates[r["method"]] = float(r["resolved"]["learning_rate"])
    if len(set(rates.values())) == 1:
        rate = f"learning rate {next(iter(rates.values())):g}"
    else:
        rate = "learning rate " + ", ".join(f"{m} {lr:g}" for m, lr in rates.items())
    parts = [f"{'/'.join(map(str, steps))} steps" + (f" of {'/'.join(map(str, batches))}" if batches else "")] \
        if steps else []
    return ", ".join(parts + ([rate] if rates else []))


def _gaps(here: dict[str, tuple[float, int]]) -> str:
    """``B-only − LoRA +x.xx, B-only − A-only +y.yy points (n seeds)`` for the methods present."""
    gaps = [f"B-only − {name} {here['b_only'][0] - here[m][0]:+.2f}" for m, name in (("lora", "LoRA"), ("a_only", "A-only"))
            if m in here]
    return ", ".join(gaps) + f" accuracy points (mean of {here['b_only'][1]} seed(s))"


def _order(here: dict[str, tuple[float, int]]) -> str:
    """The methods by mean accuracy, best first: ``LoRA > A-only > B-only``."""
    names = {"lora": "LoRA", "b_only": "B-only", "a_only": "A-only", "linear_probe": "linear probe"}
    ranked = sorted((m for m in names if m in here), key=lambda m: -here[m][0])
    return " > ".join(names[m] for m in ranked)


def interpretation(records: list[dict], committed: dict[str, list[dict]] | None = None) -> list[str]:
    """The demo's reading, computed from numbers only.

    Args:
        records: this demo run's records.
        committed: ``{label: records}`` of committed grids on the same task, shortest budget first.

    Returns:
        list[str]: one line for this run, one per committed grid (its budget read from its records),
        and, when committed grids are given, the order of the methods in the last of them.
    """
    lines = []
    here = _mean_by_method(records)
    if {"lora", "b_only"} <= set(here):
        lines.append(f"This run ({budget(records)}): {_gaps(here)}.")
    longest = None
    for label, recs in (committed or {}).items():
        there = _mean_by_method(recs)
        if {"lora", "b_only"} <= set(there):
            lines.append(f"Committed, {label} ({budget(recs)}): {_gaps(there)}.")
            longest = (label, there)
    if longest is not None:
        label, there = longest
        lines.append(f"The last committed grid ({label}) ranks {_order(there)}; the committed grids, not a short "
                     "run, are the evidence (docs/evidence.md).")
    return lines


def efficiency() -> dict:
    """Part 2: B-only vs PEFT LoRA vs the adapter floor on MiniLM, 16 × 128 tokens, interleaved."""
    import warnings

    from asymlora.bench.suite import SuiteOptions, run_suite

    options = SuiteOptions(steps=6, warmup=1, memory=False, init=False, svd=False, mask_path=False,
                           configurations=["asymlora_b_only", "peft_lora", "adapter_floor"])
    with warnings.catch_warnings():  # huggingface_hub refuses to turn bars back on when the CLI turned them off
        warnings.filterwarnings("ignore", message="Cannot enable progress bars")
        return run_suite(options)


def efficiency_markdown(document: dict) -> str:
    rows = document["configurations"]
    names = {"asymlora_b_only": "asymlora B-only", "peft_lora": "PEFT LoRA", "adapter_floor": "adapter floor (dropout 0)"}
    lines = ["| | step (s, median) | × PEFT LoRA | saved activations (MiB) | of which adapter code (MiB) | "
             "checkpoint (bytes) |", "|---|---:|---:|---:|---:|---:|"]
    base = rows["peft_lora"]["step_time_median_s"]
    for key, name in names.items():
        r = rows[key]
        lines.append(f"| {name} | {r['step_time_median_s']:.3f} | {r['step_time_median_s'] / base:.3f} | "
                     f"{r['saved_activation_bytes'] / 2**20:.1f} | {r['adapter_activation_bytes'] / 2**20:.2f} | "
                     f"{r['checkpoint_bytes']:,} |")
    return "\n".join(lines)


def accuracy_markdown(report: dict) -> str:
    """Part 1's table: every metric of the task, trainable parameters and seeds; no per-run speed
    (:data:`NOT_COMPARABLE`).

    Args:
        report: :func:`asymlora.experiments.report.build`'s report of one task.

    Returns:
        str: a markdown table.
    """
    from asymlora.experiments.report import METRIC_NAMES, fmt

    task = report["tasks"][0]
    metrics = report["metrics"][task]
    head = ["Method"] + [METRIC_NAMES.get(m, m) for m in metrics] + ["Trainable params", "Seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["rows"]:
        cells = row["cells"].get(task, {})
        lines.append("| " + " | ".join([row["label"]] + [fmt(cells.get(m)) for m in metrics] +
                                       [f"{row['trainable_params']:,.0f}", str(len(row["seeds"].get(task, [])))]) + " |")
    return "\n".join(lines)


def committed_records(docs: Path | None) -> dict[str, list[dict]]:
    """``{label: records}`` of the committed grids of :data:`COMMITTED` found under ``docs/results``.

    Args:
        docs: the repository's ``docs`` folder, or ``None`` (an installed package: nothing committed).

    Returns:
        dict[str, list[dict]]: the records of each grid whose file exists, in :data:`COMMITTED`'s order.
    """
    from asymlora.experiments.store import read_results

    found = {}
    for label, name in COMMITTED if docs is not None else ():
        path = docs / "results" / name
        if path.is_file():
            found[label] = read_results(path)
    return found


def _accuracy(spec, out: Path, quick: bool, echo) -> tuple[dict, list[str]]:
    """Part 1: train the grid, print its table and the reading; returns the rendered report and the reading."""
    from asymlora.experiments.report import render
    from asymlora.experiments.reproduce import reproduce
    from asymlora.experiments.store import read_results

    o = spec.overrides
    echo(f"1. Accuracy: MiniLM on real tweets (3 classes), {len(spec.seeds)} seed(s), {o['max_steps']} steps of "
         f"16 tweets, lr {o['learning_rate']:g}, adapters r=8 on query,value, test accuracy at the best of "
         f"{o['evals_per_run']} validation checks")
    import datasets

    datasets.disable_progress_bars()  # the demo prints one line per run instead
    result = reproduce(spec, out, spec.seeds, None, None, echo=echo, progress=False)
    rendered = render(out / "results.jsonl", out, title=f"{spec.name}: MiniLM on tweets")
    rendered["failed"] = result["failed"]
    echo("")
    echo(accuracy_markdown(rendered["report"]))
    echo("")
    story = interpretation(read_results(out / "results.jsonl"), committed_records(_repository_docs()))
    if quick:
        story.insert(0, f"--quick trains {o['max_steps']} steps: a check that the pipeline runs, not a measurement.")
    for line in story + [NOT_COMPARABLE]:
        echo("=> " + line)
    echo("")
    return rendered, story


def run_demo(out: str | Path, quick: bool = False, seeds: int | None = None, echo=print) -> dict:
    """The three parts (see the module docstring); everything under ``out``. Returns the rendered report."""
    from asymlora.atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = demo_spec(quick, seeds)
    rows = variants(spec)
    atomic_write_text(out / "variants.md", "# Variants (MiniLM, 3-class head)\n\n" + variants_markdown(rows) + "\n")
    atomic_write_text(out / "variants.json", json.dumps(rows, indent=2) + "\n")
    rendered, story = _accuracy(spec, out, quick, echo)
    document = None
    if not quick:
        echo("2. Efficiency, measured now on this machine: MiniLM, 16 × 128 tokens, r=8, dropout 0.05; the "
             "configurations' steps interleaved in one process, so the machine's load falls on all of them alike")
        document = efficiency()
        table = efficiency_markdown(document)
        atomic_write_text(out / "efficiency.md", table + "\n")
        atomic_write_text(out / "efficiency.json", json.dumps(document, indent=2, default=str) + "\n")
        echo(table)
        echo("")
    echo("3. The rest of the evidence (files in the repository; commands to reproduce):")
    for label, where, command in EVIDENCE:
        echo(f"   - {label}: {where}  ({command})")
    atomic_write_text(out / "story.md", "\n".join(["# The demo's reading", ""] + [f"* {x}" for x in story]) + "\n")
    echo(f"wrote {', '.join(rendered['files'])}, {out / 'story.md'}" + (f", {out / 'efficiency.md'}" if document else ""))
    return rendered
