"""Put adapters into a model and manage them: inject, merge / unmerge / disable, summaries.

``inject(model, config)`` replaces every targeted linear layer by an
:class:`~asymlora.adapters.linear.AdaptedLinear` wrapping it, freezes everything else, and keeps
``config.modules_to_save`` (e.g. a classifier head) trainable. Targets are matched on the
module's dotted name: a suffix (``"query"`` matches ``encoder.layer.0.attention.self.query``),
``"re:<regex>"`` (full match), or ``"all-linear"`` (every linear layer except the output head).
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.linear import AdaptedLinear, weight_layout
from asymlora.errors import UserError

#: Names of output heads that "all-linear" never adapts (PEFT skips the output layer the same way).
HEAD_NAMES = ("lm_head", "classifier", "score", "qa_outputs", "cls", "head")
CONFIG_ATTRIBUTE = "asymlora_config"


def _suffix_match(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def _is_head(model: nn.Module, name: str, module: nn.Module) -> bool:
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and module is output:
        return True
    return name.split(".")[0] in HEAD_NAMES or name.split(".")[-1] in HEAD_NAMES


def linear_module_names(model: nn.Module) -> list[str]:
    """Dotted names of every linear-like module (``nn.Linear``, ``Conv1D``) not yet adapted."""
    adapted = {f"{name}.base" for name, m in model.named_modules() if isinstance(m, AdaptedLinear)}
    return [name for name, m in model.named_modules()
            if weight_layout(m) is not None and name not in adapted]


def _under(name: str, prefixes: list[str]) -> bool:
    return any(_suffix_match(name, p) or f".{p}." in f".{name}" for p in prefixes)


def find_targets(model: nn.Module, config: AdapterConfig) -> list[str]:
    """The names of the modules ``config.targets`` selects, in model order."""
    linear = linear_module_names(model)
    modules = dict(model.named_modules())
    targets = config.targets
    if targets == "all-linear":
        return [n for n in linear if not _is_head(model, n, modules[n]) and not _under(n, config.modules_to_save)]
    if isinstance(targets, str):  # "re:<regex>"
        pattern = re.compile(targets[3:])
        return [n for n in linear if pattern.fullmatch(n)]
    chosen = [n for n, _ in modules.items() if n and any(_suffix_match(n, t) for t in targets)]
    for name in chosen:
        if weight_layout(modules[name]) is None:
            linear = sorted({n.split(".")[-1] for n in linear_module_names(model)})
            raise UserError(f"target {name!r} is a {type(modules[name]).__name__}, not a linear layer; name a linear "
                            f"layer instead ({', '.join(linear[:8])})")
    return chosen


def inject(model: nn.Module, config: AdapterConfig) -> nn.Module:
    """Freeze ``model`` and wrap its target layers with adapters; returns the same model.

    Raises ValueError when nothing matches (listing a few linear layers that do exist), when the
    model already carries asymlora adapters, or when a factor cannot be drawn (e.g. an orthonormal
    factor with rank > dimension). Targets that match nothing, or a rank a layer cannot hold, are
    :class:`~asymlora.errors.UserError` (a ValueError). Every factor is drawn before the model is
    changed, so a failure leaves the model as it was.
    """
    if any(isinstance(m, AdaptedLinear) for m in model.modules()):
        raise ValueError("the model already has asymlora adapters; start from a fresh base model")
    names = find_targets(model, config)
    if not names:
        existing = sorted({n.split(".")[-1] for n in linear_module_names(model)})
        raise UserError(f"no module matches targets={config.targets!r}; linear layers in this model "
                        f"are named {', '.join(existing[:8]) or '(none)'}")
    saved = [n for n, _ in model.named_modules() if n and any(_suffix_match(n, s) for s in config.modules_to_save)]
    missing = [s for s in config.modules_to_save if not any(_suffix_match(n, s) for n in saved)]
    if missing:
        raise ValueError(f"modules_to_save {missing} match no module of the model")
    wrappers = {name: AdaptedLinear(model.get_submodule(name), name, config) for name in names}  # may raise
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name, wrapper in wrappers.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, wrapper)
    for name in saved:
        for parameter in model.get_submodule(name).parameters():
            parameter.requires_grad_(True)
    setattr(model, CONFIG_ATTRIBUTE, config)
    return model


def adapted_modules(model: nn.Module) -> dict[str, AdaptedLinear]:
    """``{target name: AdaptedLinear}`` in model order."""
    return {m.name: m for m in model.modules() if isinstance(m, AdaptedLinear)}


def adapter_config(model: nn.Module) -> AdapterConfig:
    config = getattr(model, CONFIG_ATTRIBUTE, None)
    if config is None:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    return config


def _require_adapters(model: nn.Module) -> dict[str, AdaptedLinear]:
    modules = adapted_modules(model)
    if not modules:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    return modules


def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (fp32 delta, cast once). Exactly reversible."""
    for module in _require_adapters(model).values():
        module.merge()
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Undo :func:`merge`, restoring the pretrained weights bit for bit."""
    for module in _require_adapters(model).values():
        module.unmerge()
    return model


@contextlib.contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block the model computes as its base (merged adapters are unmerged meanwhile)."""
    modules = list(_require_adapters(model).values())
    was_merged = [m.merged for m in modules]
    for module in modules:
        module.unmerge()
        module.active = False
    try:
        yield model
    finally:
        for module, merged in zip(modules, was_merged):
            module.active = True
            if merged:
                module.merge()


def trainable_parameters(model: nn.Module) -> int:
    """Number of scalars that an optimiser would update (``requires_grad`` parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total_parameters(model: nn.Module) -> int:
    """Parameters plus frozen factor buffers (the size of the model as it computes)."""
    frozen = sum(getattr(m, f).numel() for m in adapted_modules(model).values() for f in m.frozen_factors)
    return sum(p.numel() for p in model.parameters()) + frozen


def summary(model: nn.Module) -> str:
    """A plain-text table: one line per adapted module, then totals."""
    modules = adapted_modules(model)
    lines = [f"{'module':<48} {'d_in':>6} {'d_out':>6} {'rank':>5} {'trained':>7} {'frozen':>6} {'params':>9}"]
    for name, m in modules.items():
        params = sum(p.numel() for p in m.adapter_params().values())
        lines.append(f"{name:<48} {m.in_features:>6} {m.out_features:>6} {m.rank:>5} {m.train_mode:>7} "
                     f"{','.join(m.frozen_factors) or '-':>6} {params:>9,}")
    trainable, total = trainable_parameters(model), total_parameters(model)
    lines.append(f"{len(modules)} adapted modules; trainable {trainable:,} of {total:,} "
                 f"({100.0 * trainable / max(total, 1):.3f}%)")
    return "\n".join(lines)
