"""``asymlora verify PATH``: check an adapter folder before using it; writes nothing.

Reads the folder the way :func:`asymlora.adapters.io.load_adapter` does: the format and its
version, the tensor file's SHA-256 and names, and every frozen factor's SHA-256 (regenerated from
its recipe). With a base model (``--model`` and ``--task``, or the ``metrics.json`` of a run folder)
it also loads the adapter onto that model, which checks the targeted modules, their shapes and the
fingerprint of the pretrained weights. A PEFT LoRA folder is checked the way ``import_peft`` reads
it (config, ``adapter_model.safetensors``, factor pairs; a pickle-only folder is refused) and, with
a base model, imported onto it.

``--for vllm|sglang|peft`` checks a PEFT LoRA folder (``asymlora export`` output) the way that
engine's loader reads it (:mod:`asymlora.adapters.engines`): its acceptance rules, its tensor-name
parsing and, with ``--model M``, how many modules of M it would apply the adapter to (M built on
the meta device from its config, with the class of the adapter's ``task_type``); zero, or fewer
than the adapter's own count, is refused. Any problem is one ``error:`` line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from asymlora.commands.adapter_source import base_model, locate
from asymlora.commands.common import UserError


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        path: str = typer.Argument(..., help="adapter folder, or a run folder holding adapter/ and metrics.json"),
        model: str = typer.Option(None, "--model", help="base model to load the adapter onto (default: the run's)"),
        task: str = typer.Option(None, "--task", help="task the adapter was trained for: picks the model class and "
                                 "head (default: the run's)"),
        engine: str = typer.Option(None, "--for", help="check a PEFT folder as this engine loads it: vllm, sglang "
                                   "or peft (with --model: count the modules it applies)"),
        served: str = typer.Option(None, "--lora-target-modules", help="with --for: the server's "
                                   "--lora-target-modules, comma list (default: all)"),
    ) -> None:
        """Check an adapter folder's format and hashes, and (with --model/--task) that it loads onto its base."""
        if engine is not None:
            _verify_for_engine(Path(path), engine, model, served)
            return
        if served is not None:
            raise UserError("--lora-target-modules needs --for vllm|sglang|peft")
        _verify_folder(Path(path), model, task)


def _verify_folder(path: Path, model: str | None, task: str | None) -> None:
    from asymlora.adapters.adapter_file import read_json
    from asymlora.adapters.io import load_adapter, read_adapter
    from asymlora.commands.common import user_input

    if (model is None) != (task is None) and not (path / "metrics.json").is_file():
        raise UserError("give both --model and --task to check the adapter against a base model (or neither)")
    with user_input():
        folder, model, task = locate(path, model, task)
        base = base_model(model, task) if model and task else None
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


def _verify_for_engine(path: Path, engine: str, model: str | None, served: str | None) -> None:
    """``verify --for ENGINE``: the engine's rules on the folder, and the module count on ``model``."""
    from asymlora.adapters.engine_check import check_view, read_view
    from asymlora.adapters.engines import get_engine
    from asymlora.commands.adapter_source import served_model
    from asymlora.commands.common import user_input

    with user_input():
        record = get_engine(engine)
        targets = tuple(t.strip() for t in served.split(",") if t.strip()) if served is not None else None
        if targets == ():
            raise UserError("--lora-target-modules is empty; give a comma list such as q_proj,v_proj")
        view = read_view(locate(path, None, None)[0])
        served_on = served_model(model, view.config.get("task_type")) if model else None
        result = check_view(view, record, served_on, targets, model_name=model or "the model")
    applied = (f"; applies to {result.applied} of {result.modules} modules of {model}" if result.applied is not None
               else "; give --model M to count the modules it applies to")
    print(f"ok: {path}: {record.title} accepts it: {result.modules} modules, rank {result.rank}{applied}; "
          f"{result.serve}")
