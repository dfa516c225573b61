"""``asymlora export SRC --for vllm|sglang|peft --out DIR``: a PEFT LoRA folder an engine serves exactly.

SRC is an asymlora adapter folder (with ``--model`` and ``--task``) or a run folder (its
``metrics.json`` names both). The adapter is loaded onto its base model (hashes and base
fingerprint checked), then written by :func:`asymlora.adapters.engine_export.export_for`: scaling
folded into B (``lora_alpha = r``, no ``use_rslora``, no patterns), explicit ``target_modules``,
``task_type`` from the model, every module at one rank (``--pad-rank N`` zero-pads to N, for vLLM one
of its ``--max-lora-rank`` values), checked with the engine's own rules before it is written.
Bad input is one ``error:`` line and exit 2, with nothing written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from asymlora.commands.adapter_source import base_model, locate
from asymlora.commands.common import UserError, user_input


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        source: str = typer.Argument(..., help="asymlora adapter folder, or a run folder holding adapter/ and "
                                     "metrics.json"),
        engine: str = typer.Option(..., "--for", help="the engine that will serve it: vllm, sglang or peft"),
        out: str = typer.Option(..., "--out", help="output folder (a PEFT LoRA folder; replaced atomically)"),
        pad_rank: int = typer.Option(None, "--pad-rank", help="zero-pad every module to this rank (vLLM: one of "
                                     "1, 8, 16, 32, 64, 128, 256, 320, 512); default the adapter's largest rank"),
        model: str = typer.Option(None, "--model", help="base model the adapter was trained on (default: the run's)"),
        task: str = typer.Option(None, "--task", help="task the adapter was trained for: picks the model class "
                                 "and head (default: the run's)"),
    ) -> None:
        """Export an adapter as a PEFT LoRA folder that vLLM, SGLang or PEFT serves exactly."""
        from asymlora.adapters.engine_export import export_for, export_rank
        from asymlora.adapters.engines import get_engine
        from asymlora.adapters.adapter_file import read_meta
        from asymlora.adapters.io import load_adapter

        with user_input():
            record = get_engine(engine)
            folder, model, task = locate(Path(source), model, task)
            meta = read_meta(folder)
            if not (model and task):
                raise UserError(f"{source} is an adapter folder without its run's metrics.json; give --model and "
                                f"--task (the base model and task it was trained with)")
            if pad_rank is not None:
                export_rank([entry.rank for entry in meta.modules.values()], record, pad_rank)
            _check_out(Path(out), folder)
            adapted = load_adapter(base_model(model, task), folder)
            result = export_for(adapted, record.name, out, pad_rank=pad_rank)
        print(f"ok: wrote {result.folder}: {record.title} LoRA, {result.modules} modules, rank {result.rank}, "
              f"task_type {result.task_type}, scaling folded into B; {result.serve}")


def _check_out(out: Path, source: Path) -> None:
    """``--out`` must be a folder that is not the adapter folder itself."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder")
    if out.resolve() == source.resolve():
        raise UserError(f"--out {out} is the adapter folder itself; choose another folder")
