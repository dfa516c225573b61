"""Put adapters into a model and manage them: inject, merge / unmerge / disable, summaries.

``inject(model, config)`` replaces every targeted linear layer by an
:class:`~asymlora.adapters.linear.AdaptedLinear` wrapping it, freezes everything else, and keeps
``config.modules_to_save`` (e.g. a classifier head) trainable. Targets are matched on the
module's dotted name: a suffix (``"query"`` matches ``encoder.layer.0.attention.self.query``),
``"re:<regex>"`` (full match), or ``"all-linear"`` (every linear layer except the output head).

Quantized bases (:mod:`asymlora.adapters.quantized`: bitsandbytes 4-/8-bit, torchao int8/intx
weight-only) are wrapped as they are: ``W0`` stays packed and computes itself, the adapter's
factors are fp32. A layer that looks quantized but is of no registered kind is refused.
:func:`merge` refuses a quantized base unless asked to dequantise (``dequantize=True``), which
replaces each quantized base by a dense fp32 ``nn.Linear`` first (no way back to the packed weight).
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.linear import AdaptedLinear, weight_layout
from asymlora.adapters.quantized import (check_supported, dense_linear, looks_quantized, quantized_kind,
                                        refuse_quantized_merge)
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


def _check_quantized(model: nn.Module, names: list[str]) -> None:
    """Refuse (UserError) the first of ``names`` that is quantized in an unsupported way."""
    for name in names:
        check_supported(model.get_submodule(name), name)


def find_targets(model: nn.Module, config: AdapterConfig) -> list[str]:
    """The names of the modules ``config.targets`` selects, in model order.

    Raises:
        UserError: a selected layer (or, for ``"all-linear"``, any non-head layer) is quantized in a
            way :mod:`asymlora.adapters.quantized` does not support, or an explicit target is not linear.
    """
    linear = linear_module_names(model)
    modules = dict(model.named_modules())
    targets = config.targets
    if targets == "all-linear":
        quantized = [n for n, m in modules.items() if n and looks_quantized(m) and not _is_head(model, n, m)]
        _check_quantized(model, quantized)
        return [n for n in linear if not _is_head(model, n, modules[n]) and not _under(n, config.modules_to_save)]
    if isinstance(targets, str):  # "re:<regex>"
        pattern = re.compile(targets[3:])
        _check_quantized(model, [n for n, m in modules.items() if n and looks_quantized(m) and pattern.fullmatch(n)])
        return [n for n in linear if pattern.fullmatch(n)]
    chosen = [n for n, _ in modules.items() if n and any(_suffix_match(n, t) for t in targets)]
    _check_quantized(model, chosen)
    for name in chosen:
        if weight_layout(modules[name]) is None:
            linear = sorted({n.split(".")[-1] for n in linear_module_names(model)})
            raise UserError(f"target {name!r} is a {type(modules[name]).__name__}, not a linear layer; name a linear "
                            f"layer instead ({', '.join(linear[:8])})")
    return chosen


def inject(model: nn.Module, config: AdapterConfig) -> nn.Module:
    """Freeze ``model`` and wrap its target layers with adapters; returns the same model.

    Each target layer ``y = W0 x + b`` becomes ``y = W0 x + b + s · B (A · drop(x))`` with
    ``A: r × d_in``, ``B: d_out × r``, ``s = alpha / r`` (:class:`AdaptedLinear`). Every factor is
    drawn before the model is changed, so a failure leaves the model as it was.

    Args:
        model (nn.Module): a base model without asymlora adapters (``nn.Linear`` or ``Conv1D`` layers).
        config (AdapterConfig): rank, alpha, dropout, which factors train, initialisers, seed, targets
            and ``modules_to_save`` (kept trainable, e.g. the classifier head).

    Returns:
        nn.Module: ``model`` itself, every parameter frozen except the trained factors and the
        ``modules_to_save`` parameters.

    Raises:
        UserError: (a ValueError) the targets match nothing (the message lists a few linear layers
            that exist), a target is not a linear layer, or a rank a layer cannot hold.
        ValueError: the model already carries asymlora adapters, a ``modules_to_save`` entry matches
            no module, or a factor cannot be drawn (e.g. an orthonormal factor with rank > dimension).
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
    """The adapted layers of ``model``.

    Args:
        model (nn.Module): any model.

    Returns:
        dict[str, AdaptedLinear]: ``{target name: AdaptedLinear}`` in model order; empty without adapters.
    """
    return {m.name: m for m in model.modules() if isinstance(m, AdaptedLinear)}


def get_adapter_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's trainable adapter parameters by dotted name, as torchtune's
    ``torchtune.modules.peft.get_adapter_params`` returns them.

    Every module with an ``adapter_params()`` method (an :class:`AdaptedLinear`, or any module
    following torchtune's adapter protocol) contributes the parameters it names: for B-only,
    ``{"encoder.layer.0.attention.self.query.B": B (d_out × r), …}``. The frozen factors are buffers
    and never here; nor are ``modules_to_save`` parameters (a classifier head): they are trainable
    but not adapter parameters, so ``trainable_parameters(model)`` counts them and this does not.

    Args:
        model (nn.Module): any model, with or without adapters.

    Returns:
        dict[str, nn.Parameter]: ``{module name + "." + parameter name: the parameter itself}`` in
        model order; empty when the model has no adapters.

    Raises:
        AttributeError: a module's ``adapter_params()`` names something that is not one of its
            parameters.
    """
    found: dict[str, nn.Parameter] = {}
    for prefix, module in model.named_modules():
        names = getattr(module, "adapter_params", None)
        if callable(names):
            for name in names():
                found[f"{prefix}.{name}" if prefix else name] = module.get_parameter(name)
    return found


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


def dequantize_bases(model: nn.Module) -> list[str]:
    """Replace every quantized base of an adapted layer by a dense fp32 ``nn.Linear`` holding its
    dequantised weight (:func:`asymlora.adapters.quantized.dense_linear`). Not reversible: the packed
    weight is dropped; the model then computes with ``dequant(W0)`` exactly as before, in fp32.

    Args:
        model (nn.Module): a model with asymlora adapters.

    Returns:
        list[str]: the names of the layers dequantised (empty when no base was quantized).

    Raises:
        ValueError: the model has no asymlora adapters.
    """
    done = []
    for name, module in _require_adapters(model).items():
        if quantized_kind(module.base) is not None:
            module.base = dense_linear(module.base)
            done.append(name)
    return done


def merge(model: nn.Module, dequantize: bool = False) -> nn.Module:
    """Fold every adapter into its base weight: ``W0 ← W0 + s · B A`` (fp32 delta, cast once).

    Exactly reversible for dense bases: :func:`unmerge` restores ``W0`` bit for bit. Merging twice
    is a no-op. A quantized base cannot take the delta: without ``dequantize`` the merge is refused
    before anything changes; with it, every quantized base is first replaced by its dequantised fp32
    weight (:func:`dequantize_bases`; unmerge then restores that dense weight, not the packed one).

    Args:
        model (nn.Module): a model with asymlora adapters.
        dequantize (bool): dequantise quantized bases (to fp32) and merge into them.

    Returns:
        nn.Module: ``model`` itself, merged.

    Raises:
        ValueError: the model has no asymlora adapters.
        UserError: (a ValueError) a base is quantized and ``dequantize`` is False.
    """
    modules = _require_adapters(model)
    if dequantize:
        dequantize_bases(model)
    for module in modules.values():   # refuse before any layer changes
        if not module.merged:
            refuse_quantized_merge(module.base, module.name)
    for module in modules.values():
        module.merge()
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Undo :func:`merge`, restoring the pretrained weights ``W0`` bit for bit (no-op when not merged).

    Args:
        model (nn.Module): a model with asymlora adapters.

    Returns:
        nn.Module: ``model`` itself, unmerged.

    Raises:
        ValueError: the model has no asymlora adapters.
        RuntimeError: a trained factor or a base weight changed in place since the merge (the
            restored weight would be wrong).
    """
    for module in _require_adapters(model).values():
        module.unmerge()
    return model


@contextlib.contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block the model computes as its base: ``y = W0 x + b`` (merged adapters are
    unmerged meanwhile and merged again on exit).

    Args:
        model (nn.Module): a model with asymlora adapters.

    Yields:
        nn.Module: ``model`` itself, adapters off until the block ends.

    Raises:
        ValueError: the model has no asymlora adapters.
    """
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
    """Number of scalars that an optimiser would update (``requires_grad`` parameters).

    Args:
        model (nn.Module): any model.

    Returns:
        int: ``Σ numel`` over parameters with ``requires_grad`` (B-only, per adapted layer: ``d_out · r``,
        plus any ``modules_to_save`` parameters).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total_parameters(model: nn.Module) -> int:
    """Parameters plus frozen factor buffers (the size of the model as it computes).

    Args:
        model (nn.Module): any model.

    Returns:
        int: ``Σ numel`` over all parameters plus the frozen factors (B-only: ``r · d_in`` per layer).
    """
    frozen = sum(getattr(m, f).numel() for m in adapted_modules(model).values() for f in m.frozen_factors)
    return sum(p.numel() for p in model.parameters()) + frozen


def summary(model: nn.Module) -> str:
    """A plain-text table: one line per adapted module (d_in, d_out, rank, trained and frozen
    factors, trained scalars), then the totals of :func:`trainable_parameters` / :func:`total_parameters`.

    Args:
        model (nn.Module): any model (without adapters the table has only its header and totals).

    Returns:
        str: the table, lines joined by newlines.
    """
    modules = adapted_modules(model)
    lines = [f"{'module':<48} {'d_in':>6} {'d_out':>6} {'rank':>5} {'trained':>7} {'frozen':>6} {'params':>9}"]
    for name, m in modules.items():
        params = sum(p.numel() for p in m.trained_factor_params().values())
        lines.append(f"{name:<48} {m.in_features:>6} {m.out_features:>6} {m.rank:>5} {m.train_mode:>7} "
                     f"{','.join(m.frozen_factors) or '-':>6} {params:>9,}")
    trainable, total = trainable_parameters(model), total_parameters(model)
    lines.append(f"{len(modules)} adapted modules; trainable {trainable:,} of {total:,} "
                 f"({100.0 * trainable / max(total, 1):.3f}%)")
    return "\n".join(lines)
