"""The configurations a benchmark suite compares, as a registry of builders.

Each builder takes a fresh base model (a ``…ForSequenceClassification`` with its head named in
``Settings.head``) and the shared :class:`Settings`, and returns a :class:`Built`: the model
ready to train, the trainable parameters, the modules whose saved tensors count as the adapter's,
a checkpoint writer and an optional per-step hook. Every configuration trains the classifier head.

==================  ===========================================================================
``asymlora_b_only``  asymlora's ``b_only`` (:func:`asymlora.methods.get_method`): A frozen, B trained
``asymlora_a_only``  asymlora's ``a_only``: B frozen, A trained
``asymlora_lora``    asymlora's ``lora``: both trained
``peft_lora``        PEFT LoRA (the reference every ratio is taken against)
``peft_lora_fa``     PEFT LoRA with every ``lora_A`` frozen, what ``create_lorafa_optimizer`` does
``peft_adalora``     PEFT AdaLoRA (init rank 1.5·r, target rank r, ``update_and_allocate`` each step)
``head_only``        the classifier head alone (linear probing): the cost of the frozen network
``adapter_floor``    PEFT LoRA-FA with dropout 0: nothing wide saved, no A gradient
==================  ===========================================================================

Variants of B-only (:data:`B_ONLY_VARIANTS`), for the sweep's dropout and compile rows:

=============================  ================================================================
``asymlora_b_only_no_dropout``  B-only with dropout 0: B-only's own no-dropout floor
``asymlora_b_only_v1``          B-only with the legacy ``"v1"`` dropout masks (numpy, sparse path)
``asymlora_b_only_compiled``    B-only with each adapted layer compiled in place
                                (``torch.compile``, inductor; :func:`compile_adapters`)
``asymlora_b_only_compiled_model``  B-only with the whole model compiled (``torch.compile(model)``,
                                what ``train --compile`` does)
=============================  ================================================================

The asymlora rows are built from the method registry, never re-spelled: configuration
``asymlora_<name>`` is method ``<name>``'s adapter (:data:`ASYMLORA_METHODS`), and on the command line
the method's own name selects it (``--configurations b_only,peft_lora``, :func:`configuration_name`).
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import nn

#: Reference configuration for every ratio.
REFERENCE = "peft_lora"


@dataclass
class Settings:
    """What every configuration shares: adapter shape and the name of the trained head."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    head: str | None = "classifier"      # None: no trained head (causal LM)
    seed: int = 0
    total_steps: int = 1000   # AdaLoRA's schedule length (it needs one)


@dataclass
class Built:
    """A configuration ready to train.

    ``adapter_modules``: modules whose own saved tensors are the adapter's; ``excluded`` the
    submodules inside them that are not (the wrapped base layer). ``save(folder) -> Path`` writes
    the checkpoint a user would keep and returns the weights file. ``after_step(step)`` runs after
    each optimiser step (AdaLoRA's budget allocation).
    """

    model: nn.Module
    trainable: list[nn.Parameter]
    adapter_modules: list[nn.Module]
    excluded: list[nn.Module]
    save: Callable[[Path], Path]
    after_step: Callable[[int], None] | None = None


Builder = Callable[[nn.Module, Settings], Built]
CONFIGURATIONS: dict[str, Builder] = {}


def register(name: str):
    def decorate(function: Builder) -> Builder:
        CONFIGURATIONS[name] = function
        return function
    return decorate


def build(name: str, model: nn.Module, settings: Settings) -> Built:
    """Build configuration ``name`` on ``model`` (modified in place)."""
    if name not in CONFIGURATIONS:
        raise ValueError(f"unknown benchmark configuration {name!r}; known: {', '.join(CONFIGURATIONS)}")
    with warnings.catch_warnings():   # PEFT's deprecation notices are not the benchmark's business
        warnings.simplefilter("ignore", FutureWarning)
        return CONFIGURATIONS[name](model, settings)


def _heads(settings: Settings) -> list[str]:
    return [settings.head] if settings.head else []


def _task_type(settings: Settings) -> str:
    return "SEQ_CLS" if settings.head else "CAUSAL_LM"


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _save_tensors(tensors: dict[str, torch.Tensor], folder: Path, metadata: dict | None = None,
                  name: str = "adapter_model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path),
              metadata={k: json.dumps(v) for k, v in (metadata or {}).items()} or None)
    return path


# ---------------------------------------------------------------------------- asymlora
#: The asymlora methods a suite compares, by their registry names (configuration ``asymlora_<name>``).
ASYMLORA_METHODS = ("b_only", "a_only", "lora")
ASYMLORA_PREFIX = "asymlora_"


def _asymlora(method: str, model: nn.Module, settings: Settings, dropout: float | None = None,
              mask_stream: str | None = None) -> Built:
    from asymlora.adapters.inject import adapted_modules, inject
    from asymlora.methods import get_method

    config = get_method(method).adapter_config(settings.rank, settings.alpha,
                                               settings.dropout if dropout is None else dropout,
                                               list(settings.targets), settings.seed, _heads(settings), mask_stream)
    inject(model, config)
    modules = list(adapted_modules(model).values())

    def save(folder: Path) -> Path:
        return save_asymlora(model, folder)

    return Built(model, _trainable(model), modules, [m.base for m in modules], save)


def save_asymlora(model: nn.Module, folder: Path) -> Path:
    """The asymlora checkpoint (:func:`asymlora.adapters.io.save_adapter`): trained factors and head
    in safetensors; frozen factors only as recipes (they are regenerated, never stored)."""
    from asymlora.adapters.io import WEIGHTS_FILE, save_adapter

    save_adapter(model, str(folder))
    return Path(folder) / WEIGHTS_FILE


for _method in ASYMLORA_METHODS:
    register(ASYMLORA_PREFIX + _method)(functools.partial(_asymlora, _method))


#: Compiled graphs allowed per code object in the compiled configuration (torch's default is 8): one
#: adapted layer's code is compiled once per weight shape and input kind (SmolLM2: 7 shapes, the first
#: block's inputs without grad), and past the limit dynamo would silently run the rest eagerly.
COMPILE_RECOMPILE_LIMIT = 64


def compile_adapters(model: nn.Module) -> int:
    """Compile each adapted layer of ``model`` in place (``nn.Module.compile``: names unchanged).

    The layers share their code, so there is one compiled graph per weight shape (their weights,
    factors and mask buffers are graph inputs), whatever the depth. Whole transformer blocks are
    not compiled: transformers' blocks carry a ``layer_idx`` that dynamo specialises on, one
    recompilation per block.

    Returns:
        int: how many layers were compiled.

    Raises:
        ValueError: compiling is unavailable here.
    """
    from asymlora.adapters.compiled import require_compile
    from asymlora.adapters.inject import adapted_modules

    require_compile(next(model.parameters()).device)
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, COMPILE_RECOMPILE_LIMIT)
    modules = adapted_modules(model)
    for module in modules.values():
        module.compile()
    return len(modules)


def _b_only_compiled(model: nn.Module, settings: Settings) -> Built:
    built = _asymlora("b_only", model, settings)
    compile_adapters(built.model)
    return built


def _b_only_compiled_model(model: nn.Module, settings: Settings) -> Built:
    """B-only with the whole model compiled (``torch.compile(model)``, what ``train --compile`` gets
    through the HF Trainer's ``torch_compile``); the trainable parameters and saved modules are the
    eager model's own (the compiled wrapper shares them)."""
    from asymlora.adapters.compiled import compile_model

    built = _asymlora("b_only", model, settings)
    built.model = compile_model(built.model, next(model.parameters()).device)
    return built


#: B-only variants: configuration name -> builder.
B_ONLY_VARIANTS = {
    "asymlora_b_only_no_dropout": functools.partial(_asymlora, "b_only", dropout=0.0),
    "asymlora_b_only_v1": functools.partial(_asymlora, "b_only", mask_stream="v1"),
    "asymlora_b_only_compiled": _b_only_compiled,
    "asymlora_b_only_compiled_model": _b_only_compiled_model,
}
for _name, _builder in B_ONLY_VARIANTS.items():
    register(_name)(_builder)


# ---------------------------------------------------------------------------- PEFT
def _peft(model: nn.Module, settings: Settings, config, freeze_a: bool = False) -> Built:
    from peft import get_peft_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    peft_model = get_peft_model(model, config)
    if freeze_a:   # exactly what peft.optimizers.create_lorafa_optimizer does to the model
        for name, parameter in peft_model.named_parameters():
            if "lora_A" in name:
                parameter.requires_grad_(False)
    layers = [m for m in peft_model.modules() if isinstance(m, BaseTunerLayer) and hasattr(m, "base_layer")]

    def save(folder: Path) -> Path:
        peft_model.save_pretrained(str(folder))
        return Path(folder) / "adapter_model.safetensors"

    return Built(peft_model, _trainable(peft_model), layers, [m.base_layer for m in layers], save)


def _lora_config(settings: Settings, dropout: float):
    from peft import LoraConfig

    return LoraConfig(task_type=_task_type(settings), r=settings.rank, lora_alpha=settings.alpha,
                      lora_dropout=dropout, target_modules=list(settings.targets),
                      modules_to_save=_heads(settings) or None)


@register("peft_lora")
def peft_lora(model: nn.Module, settings: Settings) -> Built:
    return _peft(model, settings, _lora_config(settings, settings.dropout))


@register("peft_lora_fa")
def peft_lora_fa(model: nn.Module, settings: Settings) -> Built:
    return _peft(model, settings, _lora_config(settings, settings.dropout), freeze_a=True)


@register("peft_adalora")
def peft_adalora(model: nn.Module, settings: Settings) -> Built:
    from peft import AdaLoraConfig

    config = AdaLoraConfig(task_type=_task_type(settings), init_r=settings.rank + settings.rank // 2,
                           target_r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                           target_modules=list(settings.targets), modules_to_save=_heads(settings) or None,
                           total_step=settings.total_steps)
    built = _peft(model, settings, config)
    built.after_step = built.model.base_model.update_and_allocate
    return built


@register("head_only")
def head_only(model: nn.Module, settings: Settings) -> Built:
    if not settings.head:
        raise ValueError("head_only needs a task head; a causal LM has none to train")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    head = model.get_submodule(settings.head)
    for parameter in head.parameters():
        parameter.requires_grad_(True)

    def save(folder: Path) -> Path:
        return _save_tensors({f"{settings.head}.{n}": p for n, p in head.named_parameters()}, Path(folder),
                             name="head.safetensors")

    return Built(model, _trainable(model), [], [], save)


@register("adapter_floor")
def adapter_floor(model: nn.Module, settings: Settings) -> Built:
    return _peft(model, settings, _lora_config(settings, 0.0), freeze_a=True)


#: The default suite's configurations in the canonical order (also the interleaving order of a suite).
DEFAULT_SUITE = ("asymlora_b_only", "asymlora_a_only", "asymlora_lora", "peft_lora", "peft_lora_fa", "peft_adalora",
                 "head_only", "adapter_floor")
#: Every configuration in the canonical order (the default suite, then the B-only variants, on request only).
ORDER = (*DEFAULT_SUITE, *B_ONLY_VARIANTS)
assert set(ORDER) == set(CONFIGURATIONS)


def configuration_name(name: str) -> str:
    """The configuration a command-line name selects: an asymlora method's registry name
    (``b_only``, ``lora``: :data:`ASYMLORA_METHODS`) or a configuration's own name (``peft_lora``,
    ``asymlora_b_only``, the key bench.json records).

    Args:
        name: as typed in ``--configurations`` or ``--rows``.

    Returns:
        A key of :data:`CONFIGURATIONS`, or ``name`` unchanged when it is none (the caller reports it).
    """
    key = name.strip()
    if key in CONFIGURATIONS:
        return key
    if ASYMLORA_PREFIX + key in B_ONLY_VARIANTS:
        return ASYMLORA_PREFIX + key
    from asymlora.methods import canonical_name

    method = canonical_name(key)
    return ASYMLORA_PREFIX + method if method in ASYMLORA_METHODS else key


#: The names a user types: the asymlora methods, then the other configurations.
USER_NAMES = (*ASYMLORA_METHODS, *(c for c in ORDER if not c.startswith(ASYMLORA_PREFIX)),
              *(c[len(ASYMLORA_PREFIX):] for c in B_ONLY_VARIANTS))
