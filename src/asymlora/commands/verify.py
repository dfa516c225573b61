"""``asymlora verify PATH``: check an adapter folder before using it; writes nothing.

Reads the folder the way :func:`asymlora.adapters.io.load_adapter` does: the format and its
version, the tensor file's SHA-256 and names, and every frozen factor's SHA-256 (regenerated from
its recipe). With a base model (``--model`` and ``--task``, or the ``metrics.json`` of a run folder)
it also loads the adapter onto that model, which checks the targeted modules, their shapes and the
fingerprint of the pretrained weights. A PEFT LoRA folder is checked the way ``import_peft`` reads
it (config, ``adapter_model.safetensors``, factor pairs; a pickle-only folder is refused) and, with
a base model, imported onto it. Any problem is one ``error:`` line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from asymlora.commands.common import UserError


def _locate(path: Path, model: str | None, task: str | None) -> tuple[Path, str | None, str | None]:
    """``(adapter folder, model, task)``: a run folder (``adapter/`` + ``metrics.json``) fills in the
    model and task it was trained with, unless given."""
    run = path / "metrics.json"
    if (path / "adapter").is_dir() and run.is_file():
        record = json.loads(run.read_text(encoding="utf-8"))
        return path / "adapter", model or record.get("model"), task or record.get("task")
    return path, model, task


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        path: str = typer.Argument(..., help="adapter folder, or a run folder holding adapter/ and metrics.json"),
        model: str = typer.Option(None, "--model", help="base model to load the adapter onto (default: the run's)"),
        task: str = typer.Option(None, "--task", help="task the adapter was trained for: picks the model class and "
                                 "head (default: the run's)"),
    ) -> None:
        """Check an adapter folder's format and hashes, and (with --model/--task) that it loads onto its base."""
        from asymlora.adapters.adapter_file import read_json
        from asymlora.adapters.io import load_adapter, read_adapter
        from asymlora.commands.common import user_input

        if (model is None) != (task is None) and not (Path(path) / "metrics.json").is_file():
            raise UserError("give both --model and --task to check the adapter against a base model (or neither)")
        with user_input():
            folder, model, task = _locate(Path(path), model, task)
            base = _base(model, task) if model and task else None
            peft = (folder / "adapter_config.json").is_file() and "peft_type" in read_json(folder / "adapter_config.json")
            if peft:
                from asymlora.adapters.peft_interop import PEFT_WEIGHTS_FILE, import_peft, read_peft

                data, factors, _ = read_peft(folder)
                if base is not None:
                    import_peft(base, folder)
                what, rank, trains, weights = "PEFT LoRA", data["r"], "AB", PEFT_WEIGHTS_FILE
                modules = len(factors)
            else:
                state = read_adapter(folder)
                if base is not None:
                    load_adapter(base, folder)
                what, rank, trains, weights = "asymlora", state.config.rank, state.config.train, state.meta.weights.file
                modules = len(state.meta.modules)
        checked = "format and hashes" + (f"; loads onto {model} ({task})" if base is not None else "")
        size = (folder / weights).stat().st_size
        print(f"ok: {folder}: {what} adapter, {modules} adapted modules, rank {rank}, trains {trains}, "
              f"{size:,} bytes of tensors; checked {checked}")


def _base(model: str, task: str):
    """A fresh base model for ``task``'s family (the class and head the adapter was trained with)."""
    from asymlora.models import resolve_model
    from asymlora.tasks import get_family, get_task

    chosen = get_task(task)
    return get_family(chosen.family).load_model(resolve_model(model), chosen, 0)
