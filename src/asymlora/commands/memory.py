"""``asymlora memory``: predict peak training memory from a model's config (no weights loaded).

Components: weights, trainable parameters, gradients, optimiser states, saved activations (with
the adapter-attributable part); see :mod:`asymlora.planning.planner` and docs/benchmarks.md.

Methods by the shared vocabulary: asymlora's ``b_only``; PEFT's ``peft_lora``, ``peft_lora_fa``,
``peft_adalora``; ``full``. The old names ``lora``, ``lora_fa`` and ``adalora`` (PEFT's, here) are
still read as ``peft_lora``, ``peft_lora_fa``, ``peft_adalora``, with one warning line each.

``--paper`` prints the paper's Llama-2-7B settings (r = 32 and 64, batch 16, bf16; sequence length
``--max-length``, default 512) for PEFT LoRA, B-only, PEFT AdaLoRA and full fine-tuning, then PEFT
LoRA (QLoRA) and B-only on the same base in 4 bits; ``--bits 4|8`` plans a quantized base;
``--device cpu`` adds the runtime floor (a fresh interpreter's RSS with the libraries, measured here)
to the peak; ``--validate SWEEP_JSON`` compares the planner with the saved activations a ``bench sweep`` measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from asymlora.commands.common import (batch_size_option, dtype_name, dtype_option, max_length_option, out_dir,
                                      user_input)

PAPER_METHODS = ("peft_lora", "b_only", "peft_adalora", "full")
PAPER_RANKS = (32, 64)
PAPER_4BIT_METHODS = ("peft_lora", "b_only")


def _table(plans) -> str:
    lines = ["| model | method | rank | weights | trainable | gradients | optimiser | activations "
             "(adapter part) | total | loss temporaries | layer transient | runtime | checkpoint map | peak (GiB) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rank, item in plans:
        gib = item.gib()
        rank_text = "–" if item.method == "full" else str(rank)
        lines.append(f"| {item.model} | {item.method} | {rank_text} | {gib['weights']:.2f} | {gib['trainable']:.3f} | "
                     f"{gib['gradients']:.3f} | {gib['optimizer']:.3f} | {gib['activations']:.2f} "
                     f"({item.adapter_activations / 2**30:.2f}) | {gib['total']:.2f} | {gib['loss_temporaries']:.2f} | "
                     f"{gib['layer_transient']:.3f} | {gib['runtime']:.2f} | {gib['checkpoint_map']:.2f} | {gib['peak']:.2f} |")
    return "\n".join(lines)


def _methods(text: str) -> list[str]:
    """The planner methods of ``--method``; an old name is read as its new one, with one warning line."""
    from asymlora.planning.planner import OLD_METHOD_NAMES

    names = []
    for name in (m.strip() for m in text.split(",") if m.strip()):
        if name in OLD_METHOD_NAMES:
            typer.echo(f"warning: '{name}' is deprecated; use '{OLD_METHOD_NAMES[name]}'", err=True)
        names.append(OLD_METHOD_NAMES.get(name, name))
    return names


def register(app: typer.Typer) -> None:
    @app.command("memory")
    def memory(
        model: str = typer.Option("llama-7b", "--model", help="layout (llama-7b, roberta-large, …), registry "
                                                              "name, model folder or hub id: only its config is read"),
        method: str = typer.Option("b_only", "--method", help="comma-separated: b_only (asymlora's), peft_lora, "
                                   "peft_lora_fa, peft_adalora, full"),
        rank: int = typer.Option(8, "--rank", help="adapter rank r"),
        alpha: Optional[float] = typer.Option(None, "--alpha", help="LoRA alpha (default 2 r)"),
        dropout: float = typer.Option(0.05, "--dropout", help="adapter dropout"),
        targets: Optional[str] = typer.Option(None, "--targets", help="comma-separated target modules "
                                                                       "(default: the architecture's paper targets)"),
        batch: int = batch_size_option(16, "sequences per step"),
        seq: int = max_length_option(512, "tokens per sequence"),
        dtype: str = dtype_option("bf16"),
        layers: Optional[int] = typer.Option(None, "--layers", help="cut the model to this many layers"),
        task: Optional[str] = typer.Option(None, "--task", help="causal_lm or classification (default by "
                                                                 "architecture: decoders causal_lm)"),
        gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
        optimizer: str = typer.Option("adamw", "--optimizer", help="adamw, adamw8bit or sgd"),
        bits: Optional[int] = typer.Option(None, "--bits", help="base linear weights stored in 4 or 8 bits "
                                                                "(QLoRA-style); default: in --dtype"),
        device: str = typer.Option("cuda", "--device", help="what the peak counts: cuda (tensors, as "
                                   "max_memory_allocated) or cpu (adds the runtime floor of a fresh interpreter, "
                                   "measured here, as a peak RSS)"),
        paper: bool = typer.Option(False, "--paper", help="the paper's Llama-2-7B table (r 32/64, batch 16, bf16)"),
        validate_sweep: Optional[str] = typer.Option(None, "--validate", help="a sweep.json from bench sweep: "
                                                                               "predicted vs measured activations"),
        out: Optional[str] = typer.Option(None, "--out", help="also write memory.json and memory.md here"),
    ) -> None:
        """Predict peak training memory: weights + trainable + gradients + optimiser + saved activations,
        then the peak with the loss's temporaries, a quantized layer's transient and (--device cpu) the runtime."""
        from asymlora.planning.planner import PlanRequest, plan, validate
        from asymlora.planning.sources import load_config

        if validate_sweep:
            _validate(validate_sweep, out)
            return
        with user_input():
            if batch < 1 or seq < 1 or rank < 1:
                raise ValueError("--batch-size, --max-length and --rank must be at least 1")
            dtype = dtype_name(dtype)
            if paper:
                model, methods, ranks, batch, dtype = "llama-7b", list(PAPER_METHODS), list(PAPER_RANKS), 16, "bf16"
            else:
                methods, ranks = _methods(method), [rank]
            source = load_config(model, layers)
            grid = [(r, m, None if paper else bits) for r in ranks for m in methods if m != "full" or r == ranks[0]]
            if paper:
                grid += [(r, m, 4) for r in ranks for m in PAPER_4BIT_METHODS]
            requests = []
            for each_rank, each, each_bits in grid:
                request = PlanRequest(
                    source.config, source.description + (f", {each_bits}-bit base" if each_bits else ""),
                    method=each, rank=each_rank, alpha=alpha if alpha is not None else 2.0 * each_rank,
                    dropout=dropout,
                    targets=tuple(t.strip() for t in targets.split(",")) if targets else source.default_targets,
                    batch=batch, length=seq, dtype=dtype, task=task or source.default_task,
                    gradient_checkpointing=gradient_checkpointing, optimizer=optimizer, bits=each_bits,
                    device=device)
                validate(request)
                requests.append((each_rank, request))
        plans = [(r, plan(request)) for r, request in requests]
        first = requests[0][1]
        header = (f"{source.description}: batch {batch} × {seq} tokens, {dtype}, {first.task}, targets "
                  f"{', '.join(first.targets)}, dropout {dropout:g}, optimiser {optimizer}"
                  f"{', gradient checkpointing' if gradient_checkpointing else ''}, device profile {device}. "
                  f"GiB = 2^30 bytes. total = weights + trainable + gradients + optimiser + activations; "
                  f"peak = runtime + checkpoint map + total + max(loss temporaries, layer transient).")
        text = header + "\n\n" + _table(plans) + "\n"
        typer.echo(text)
        if out:
            settings = {"model": model, "batch": batch, "seq": seq, "dtype": dtype, "task": first.task,
                        "targets": list(first.targets), "dropout": dropout, "optimizer": optimizer,
                        "gradient_checkpointing": gradient_checkpointing, "bits": bits, "device": device}
            _write(out, settings, plans, text)


def _write(out: str, settings: dict, plans, text: str) -> None:
    """memory.json (``settings`` and every plan's components) and memory.md (``text``) in ``out``."""
    from asymlora.atomic import atomic_write_text

    folder = out_dir(out, "memory")
    document = {"settings": settings, "plans": [{"rank": r, **p.as_dict()} for r, p in plans]}
    atomic_write_text(folder / "memory.json", json.dumps(document, indent=2) + "\n")
    atomic_write_text(folder / "memory.md", "# Memory plan\n\n" + text)
    typer.echo(f"wrote {folder / 'memory.json'} and {folder / 'memory.md'}")


def _validate(path: str, out: Optional[str]) -> None:
    from asymlora.atomic import atomic_write_text
    from asymlora.planning.validate import compare_sweep, comparison_markdown

    with user_input():
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"--validate {path}: no such file (run asymlora bench sweep first)")
        try:
            document = json.loads(source.read_text())
            document["sweep"], document["results"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"--validate {path}: not a sweep.json written by asymlora bench sweep") from None
    rows = compare_sweep(document)
    text = comparison_markdown(rows, str(source))
    typer.echo(text)
    if out:
        folder = out_dir(out, "memory")
        atomic_write_text(folder / "validation.json", json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
        atomic_write_text(folder / "validation.md", text)
        typer.echo(f"wrote {folder / 'validation.json'} and {folder / 'validation.md'}")
