"""Where a model's task head is and which modules the adapters go on, found from the model itself.

For registry entries both come from :data:`~asymlora.models.registry.ARCHITECTURES`; these
functions serve models known only as a module tree or a config (benchmarks, the memory planner).
"""

from __future__ import annotations

from torch import nn

from asymlora.models.registry import ARCHITECTURES

#: Attention (query, value) projection names, tried in order when no targets are given.
QUERY_VALUE_PAIRS = (("query", "value"), ("q_proj", "v_proj"), ("q", "v"), ("q_lin", "v_lin"))

#: Names of a classification head's module, tried in order on a model of unknown architecture.
HEAD_NAMES = ("classifier", "score")

#: Modules never adapted by ``all-linear`` (heads); poolers are excluded too.
_HEADS = {"lm_head", "score", "classifier"}


def head_module_name(model_type: str | None, default: str = "score") -> str:
    """The module of a sequence classifier's head for a ``model_type``.

    Args:
        model_type: a transformers ``model_type`` (``"bert"``, ``"llama"``, ...).
        default: the answer for a type missing from ``ARCHITECTURES`` (decoders name it ``score``).

    Returns:
        str: the last head module of ``ARCHITECTURES[model_type]`` (the classifier itself), else ``default``.
    """
    if model_type in ARCHITECTURES:
        return ARCHITECTURES[model_type][1][-1]
    return default


def classifier_head(model: nn.Module) -> str:
    """The name of a loaded sequence classifier's head module (a direct child of ``model``).

    Args:
        model: a ``…ForSequenceClassification`` (or image classification) model.

    Returns:
        str: its architecture's head name when present, else the first of :data:`HEAD_NAMES` it has.

    Raises:
        ValueError: the model has none of them.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    known = head_module_name(model_type, default="") if model_type else ""
    for name in ((known,) if known else ()) + HEAD_NAMES:
        if hasattr(model, name):
            return name
    raise ValueError(f"{type(model).__name__} has no classifier head named {' or '.join(map(repr, HEAD_NAMES))}")


def guess_targets(model: nn.Module) -> list[str]:
    """The attention query and value projections of a model, by their leaf names.

    Args:
        model: any module tree.

    Returns:
        list[str]: the first pair of :data:`QUERY_VALUE_PAIRS` whose two names both occur as leaves.

    Raises:
        ValueError: no pair occurs (the caller should name its targets).
    """
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in QUERY_VALUE_PAIRS:
        if set(pair) <= leaves:
            return list(pair)
    raise ValueError("cannot guess the attention projections of this model; pass --targets")


def resolve_targets(model: nn.Module, targets: list[str] | None, head: str | None) -> list[str]:
    """Adapter targets as module-name suffixes.

    Args:
        model: the model the targets are for.
        targets: None or empty -> :func:`guess_targets`; ``["all-linear"]`` -> the leaf names of every
            ``nn.Linear`` inside the transformer blocks (not ``head``, ``lm_head``, ``score``,
            ``classifier``, nor a pooler); anything else is returned as a list.
        head: the task head's module name, or None.

    Returns:
        list[str]: the suffixes, in order of first appearance.

    Raises:
        ValueError: nothing to guess from, or ``all-linear`` on a model without linear layers outside its head.
    """
    if not targets:
        return guess_targets(model)
    if targets != ["all-linear"]:
        return list(targets)
    excluded = (_HEADS | {head}) - {None}
    names = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, nn.Linear) and not (set(parts) & excluded) and "pooler" not in parts:
            if parts[-1] not in names:
                names.append(parts[-1])
    if not names:
        raise ValueError("all-linear: the model has no linear layers outside its head")
    return names
