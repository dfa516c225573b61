"""The conformance check: would a serving engine load this PEFT LoRA folder, and apply it to every
module it adapts on a given model?

:func:`check_view` runs an engine's acceptance rules (:mod:`asymlora.adapters.engines`) and its
tensor-name parsing, pairs every module's ``lora_A`` (r × d_in) with its ``lora_B`` (d_out × r),
and, with a model, counts the modules the engine would apply the adapter to. The count must equal
the adapter's own: zero means the engine serves the base model without a warning (vLLM issue
34186: module paths of another model class; vLLM issue 55193: the server's
``--lora-target-modules`` covers none of them), fewer means part of the update is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from asymlora.adapters.adapter_file import read_json, read_safetensors
from asymlora.adapters.engines import AdapterView, Engine, ModelView, get_engine
from asymlora.adapters.linear import AdaptedLinear, weight_layout

PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class EngineCheck:
    """The result: the engine, the adapter's rank and module count, the modules the engine applies on
    the model (None without a model), and how to serve it."""

    engine: str
    rank: int
    modules: int
    applied: int | None
    serve: str


def model_view(model: nn.Module, served_targets: tuple[str, ...] | None = None) -> ModelView:
    """The linear-layer paths of ``model`` (adapted ones included) and its decoder-layer count.

    Args:
        model (nn.Module): the model the engine serves (real or on the meta device).
        served_targets (tuple[str, ...] | None): the server's ``--lora-target-modules`` (None: all).

    Returns:
        ModelView: what :attr:`Engine.applies` reads.
    """
    paths = frozenset(name for name, module in model.named_modules()
                      if isinstance(module, AdaptedLinear) or weight_layout(module) is not None)
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) if config is not None else None
    return ModelView(paths, int(layers) if isinstance(layers, int) else None, served_targets)


def read_view(directory: str | os.PathLike) -> AdapterView:
    """The :class:`AdapterView` of a PEFT LoRA folder (safetensors only; a pickle-only folder is refused).

    Raises:
        FileNotFoundError: the folder, its config or its tensor file is missing.
        ValueError: an asymlora adapter folder (export it first), a pickle-only folder, corrupt files.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"adapter folder {folder} does not exist; give the folder asymlora export wrote")
    config = read_json(folder / PEFT_CONFIG_FILE)
    if "peft_type" not in config:
        raise ValueError(f"{folder} is an asymlora adapter folder, not what an engine loads; export it first: "
                         f"asymlora export {folder} --for ENGINE --out DIR")
    weights = folder / PEFT_WEIGHTS_FILE
    if not weights.is_file() and (folder / "adapter_model.bin").is_file():
        raise ValueError(f"{folder} has only adapter_model.bin; asymlora never loads pickle files — re-save it with "
                         f"PEFT's save_pretrained(..., safe_serialization=True)")
    tensors = read_safetensors(weights)
    return AdapterView(config, {name: tuple(t.shape) for name, t in tensors.items()})


def _modules(engine: Engine, view: AdapterView) -> dict[str, dict[str, tuple[int, ...]]]:
    """``{module: {"A": shape, "B": shape}}`` as the engine parses the names; checks the pairs chain
    at the config's rank (ValueError otherwise)."""
    modules: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in sorted(view.shapes.items()):
        parsed = engine.parse(name)
        if parsed.part in ("A", "B"):
            modules.setdefault(parsed.module, {})[parsed.part] = shape
    if not modules:
        raise ValueError("the adapter holds no lora_A / lora_B tensors; export a trained adapter with asymlora export")
    for module, pair in modules.items():
        if set(pair) != {"A", "B"}:
            raise ValueError(f"adapter is corrupt: module {module!r} has lora_{''.join(pair)} but not both factors; "
                             f"export it again")
        a, b = pair["A"], pair["B"]
        if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            raise ValueError(f"adapter is corrupt: module {module!r} has lora_A {a} and lora_B {b}, which do not "
                             f"chain; export it again")
        if engine.name != "peft" and a[0] != view.rank:
            raise ValueError(f"module {module!r} has rank {a[0]} but r={view.rank}: {engine.title} scales every "
                             f"module by lora_alpha/r; re-export with asymlora export --for {engine.name} (pads ranks)")
    return modules


def _count_line(engine: Engine, modules: list[str], applied: list[str], model: ModelView, name: str) -> str:
    """The refusal when the engine applies fewer modules than the adapter has."""
    missing = [m for m in modules if m not in applied]
    if model.served_targets is not None and any(m in model.linear_paths for m in missing):
        return (f"the server's --lora-target-modules {list(model.served_targets)} leave out {len(missing)} of the "
                f"adapter's {len(modules)} modules (e.g. {missing[0]!r}): they are served without the update"
                + (" — none applies, the base model is served (vLLM issue 55193)" if not applied else "")
                + "; serve with --lora-target-modules covering every target_modules entry")
    if not applied:
        return (f"the adapter applies to 0 of {name}'s modules: its module paths (e.g. {modules[0]!r}) match no "
                f"linear layer {engine.title} serves, so it would serve the base model without a warning "
                f"({engine.silent_zero}); export from the model class the engine serves (asymlora export)")
    return (f"the adapter applies to {len(applied)} of its {len(modules)} modules on {name} (e.g. {missing[0]!r} "
            f"is not served by {engine.title}); export for that model, or target modules {engine.title} serves")


def check_view(view: AdapterView, engine: str | Engine, model: nn.Module | None = None,
               served_targets: tuple[str, ...] | None = None, model_name: str = "the model") -> EngineCheck:
    """Run ``engine``'s acceptance rules on ``view`` and, with ``model``, count the modules it applies.

    Args:
        view (AdapterView): the adapter as the loader reads it.
        engine (str | Engine): ``vllm``, ``sglang``, ``peft`` or a record.
        model (nn.Module | None): the model served (its module paths); None skips the count.
        served_targets (tuple[str, ...] | None): the server's ``--lora-target-modules``.
        model_name (str): how to name the model in messages.

    Returns:
        EngineCheck: rank, modules, modules applied, how to serve.

    Raises:
        ValueError: the first refusal, one line naming the problem, its source and the fix.
    """
    record = engine if isinstance(engine, Engine) else get_engine(engine)
    for rule in record.rules:
        message = rule.check(view)
        if message:
            raise ValueError(f"{record.title}: {message}")
    try:
        modules = _modules(record, view)
    except ValueError as err:
        text = str(err)
        raise ValueError(text if text.startswith(record.title) else f"{record.title}: {text}") from None
    applied_count = None
    if model is not None:
        seen = model_view(model, served_targets)
        names = list(modules)
        applied = [m for m in names if record.applies(m, view, seen)]
        if len(applied) != len(names):
            raise ValueError(f"{record.title}: {_count_line(record, names, applied, seen, model_name)}")
        applied_count = len(applied)
    return EngineCheck(record.name, view.rank, len(modules), applied_count, record.serve_hint(view.rank))


def verify_for(directory: str | os.PathLike, engine: str | Engine, model: nn.Module | None = None,
                 served_targets: tuple[str, ...] | None = None, model_name: str = "the model") -> EngineCheck:
    """:func:`check_view` on a PEFT LoRA folder (see :func:`read_view`).

    Args:
        directory (str | os.PathLike): the folder an engine would load (``asymlora export`` output).
        engine (str | Engine): ``vllm``, ``sglang`` or ``peft``.
        model (nn.Module | None): the model served; None skips the module count.
        served_targets (tuple[str, ...] | None): the server's ``--lora-target-modules``.
        model_name (str): how to name the model in messages.

    Returns:
        EngineCheck: see :func:`check_view`.

    Raises:
        FileNotFoundError: a missing folder or file.
        ValueError: a refusal (one line), or corrupt files.
    """
    record = get_engine(engine) if isinstance(engine, str) else engine
    return check_view(read_view(directory), record, model, served_targets, model_name)
