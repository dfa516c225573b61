"""``asymlora bench quantized``: QLoRA-style bases (fp32, 8-bit, 4-bit) x {PEFT LoRA, B-only}.

Rows (peak training memory, step time; one fresh process per row) and, with ``--quality``, the
validation loss of B-only after the same steps on each ``--quality-bits`` base. Writes
``quantized.json`` and ``quantized.md`` in ``--out``. See docs/quantized.md.
"""

from __future__ import annotations

from typing import Optional

import typer

from asymlora.commands.common import out_dir, out_option, threads_option, user_input


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated bit widths (32, 8, 4); got {text!r}") from None


def add_quantized(group: typer.Typer) -> None:
    """Register ``quantized`` on the bench command group."""
    @group.command("quantized")
    def quantized(
        out: Optional[str] = out_option("bench-quantized"),
        model: str = typer.Option("smollm2", "--model", help="a causal LM: registry name, folder or hub id"),
        bits: str = typer.Option("32,8,4", "--bits", help="base bit widths of the rows (32 = fp32)"),
        backend: str = typer.Option("bitsandbytes", "--backend", help="bitsandbytes or torchao"),
        configurations: str = typer.Option("peft_lora,b_only", "--configurations", help="peft_lora and/or b_only"),
        batch_size: int = typer.Option(4, "--batch-size", min=1), max_length: int = typer.Option(256, "--max-length", min=1),
        rank: int = typer.Option(32, "--rank", min=1), alpha: float = typer.Option(64.0, "--alpha"),
        dropout: float = typer.Option(0.05, "--dropout", min=0.0, max=0.999),
        steps: int = typer.Option(3, "--steps", min=1), warmup: int = typer.Option(1, "--warmup", min=0),
        rows: bool = typer.Option(True, "--rows/--no-rows", help="measure the memory / step-time rows"),
        quality: bool = typer.Option(False, "--quality/--no-quality", help="also train B-only and score validation"),
        quality_bits: str = typer.Option("32,4", "--quality-bits"),
        quality_steps: int = typer.Option(60, "--quality-steps", min=1),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", min=1, help="score only the first N "
                                                 "validation pairs (default all)"),
        threads: Optional[int] = threads_option(),
        mmap_threshold: int = typer.Option(65536, "--mmap-threshold", min=0, help="glibc MALLOC_MMAP_THRESHOLD_ "
                                           "of each row's process (bytes): the peak RSS then counts live memory, "
                                           "not freed heap glibc keeps; 0: glibc's default"),
    ) -> None:
        """Peak training memory and step time on fp32 / 8-bit / 4-bit bases; B-only quality 4-bit vs fp32."""
        from asymlora.bench.configs import configuration_name
        from asymlora.bench.quantized import RowSpec
        from asymlora.bench.quantized_quality import QualitySpec
        from asymlora.models.loading import model_path
        from asymlora.models.quantized import check_request, check_saved_quantization
        from asymlora.training.env import set_threads

        with user_input():
            widths, quality_widths = _ints(bits, "--bits"), _ints(quality_bits, "--quality-bits")
            for width in {*(widths if rows else []), *(quality_widths if quality else [])}:
                check_request(width, backend)
            names = [configuration_name(c.strip()) for c in configurations.split(",") if c.strip()]
            unknown = [n for n in names if n not in ("peft_lora", "asymlora_b_only")]
            if unknown:
                raise ValueError(f"--configurations: {', '.join(unknown)} not benchmarked here; use peft_lora, b_only")
            check_saved_quantization(model_path(model))
            count = set_threads(threads)
        folder = out_dir(out, "bench-quantized")
        common = dict(model=model, backend=backend, batch=batch_size, length=max_length, rank=rank, alpha=alpha,
                      threads=count)
        specs = [RowSpec(**common, bits=w, configuration=n, dropout=dropout, steps=steps, warmup=warmup,
                         mmap_threshold=mmap_threshold)
                 for w in widths for n in names] if rows else []
        quality_specs = [QualitySpec(**common, bits=w, steps=quality_steps, eval_limit=eval_limit) for w in quality_widths] if quality else []
        _write(folder, specs, quality_specs)


def _write(folder, specs, quality_specs) -> None:
    import json

    from asymlora.atomic import atomic_write_text
    from asymlora.bench.quantized import run_rows
    from asymlora.bench.quantized_quality import run_quality
    from asymlora.bench.quantized_report import quantized_markdown
    from asymlora.commands.common import command_line

    document = {"command": command_line(), "rows": run_rows(specs, typer.echo),
                "quality": [run_quality(q, typer.echo) for q in quality_specs]}
    text = quantized_markdown(document)
    atomic_write_text(folder / "quantized.json", json.dumps(document, indent=2) + "\n")
    atomic_write_text(folder / "quantized.md", text)
    typer.echo(text)
    typer.echo(f"wrote {folder / 'quantized.json'} and {folder / 'quantized.md'}")
