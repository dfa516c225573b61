"""``asymlora verify PATH``: check an adapter folder before using it; writes nothing.

Reads the folder the way :func:`asymlora.adapters.io.load_adapter` does: the format and its
version, the tensor file's SHA-256 and names, and every frozen factor's SHA-256 (regenerated from
its recipe). With a base model (``--model`` and ``--task``, or the ``metrics.json`` of a run folder)
it also loads the adapter onto that model, which checks the targeted modules, their shapes and the
fingerprint of the pretrained weights. Any problem is one ``error:`` line and exit 2.
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
        from asymlora.adapters.io import load_adapter, read_adapter
        from asymlora.commands.common import user_input

        if (model is None) != (task is None) and not (Path(path) / "metrics.json").is_file():
            raise UserError("give both --model and --task to check the adapter against a base model (or neither)")
        with user_input():
            folder, model, task = _locate(Path(path), model, task)
            state = read_adapter(folder)
            checked = "format and hashes"
            if model and task:
                from asymlora.models import resolve_model
                from asymlora.tasks import get_family, get_task

                chosen = get_task(task)
                base = get_family(chosen.family).load_model(resolve_model(model), chosen, 0)
                load_adapter(base, folder)
                checked += f"; loads onto {model} ({chosen.name})"
        size = (folder / state.meta.weights.file).stat().st_size
        print(f"ok: {folder}: {len(state.meta.modules)} adapted modules, rank {state.config.rank}, trains "
              f"{state.config.train}, {size:,} bytes of tensors; checked {checked}")
