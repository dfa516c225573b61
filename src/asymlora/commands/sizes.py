"""``asymlora sizes``: adapter file sizes (B-only, LoRA, PEFT export) against PEFT's own LoRA file.

Writes ``sizes.json`` and ``sizes.md`` (and the measured adapter folders under ``files/``) to
``--out`` (default ``runs/sizes``). Default model: the packaged all-MiniLM-L6-v2, query/value, r=8.
"""

from __future__ import annotations

import tempfile
from typing import Optional

import typer

from pathlib import Path

from asymlora.commands.common import UserError, atomic_write_text, out_dir, write_json


def register(app: typer.Typer) -> None:
    @app.command("sizes")
    def sizes(
        out: Optional[str] = typer.Option(None, "--out", help="output folder (default runs/sizes)"),
        model: Optional[str] = typer.Option(None, "--model", help="a transformers model folder (default: packaged MiniLM)"),
        rank: int = typer.Option(8, "--rank", min=1, help="adapter rank r"),
        seed: int = typer.Option(0, "--seed", min=0, help="seed of the frozen factors and the fake trained values"),
        quick: bool = typer.Option(False, "--quick", help="a tiny random BERT instead of MiniLM"),
    ) -> None:
        """Compare adapter file sizes with PEFT's adapter_model.safetensors (same model, same rank)."""
        from rich.progress import Progress

        from asymlora.bench.sizes import measure_file_sizes, sizes_markdown, tiny_bert_path

        if model and not (Path(model) / "config.json").is_file():
            raise UserError(f"--model {model}: not a transformers model folder (no config.json)")
        folder = out_dir(out, "sizes")
        with tempfile.TemporaryDirectory() as scratch, Progress(transient=True) as progress:
            task = progress.add_task("sizes", total=5)

            def step(message: str) -> None:
                progress.update(task, description=message, advance=1)

            model_path = tiny_bert_path(scratch) if quick else model
            result = measure_file_sizes(folder, model_path=model_path, rank=rank, seed=seed, progress=step)
            if quick:
                result["model"] = "tiny random BERT (hidden 32, 2 layers)"
                result["model_path"] = None
        result["command"] = "asymlora sizes" + (" --quick" if quick else "") + (f" --model {model}" if model else "") \
            + f" --rank {rank} --seed {seed} --out {folder}"
        write_json(folder / "sizes.json", result)
        table = sizes_markdown(result)
        atomic_write_text(folder / "sizes.md", table)
        typer.echo(table)
        typer.echo(f"wrote {folder / 'sizes.json'} and {folder / 'sizes.md'}")
