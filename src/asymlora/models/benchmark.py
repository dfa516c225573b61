"""A benchmark's model: a layout, a registry name, a folder or a hub id, with its task's head.

* a layout (:mod:`asymlora.models.layouts`): a randomly initialised model of the layout's config,
  no tokenizer (the benchmark then draws random token ids);
* anything else: ``from_pretrained`` on its folder or hub id, with its tokenizer when it has one.

``task``: ``"classification"`` -> ``…ForSequenceClassification`` with ``labels`` classes;
``"causal_lm"`` -> ``…ForCausalLM``. Weights not in the folder (a fresh head, a layout) are drawn
after ``torch.manual_seed(seed)`` (the global RNG, as the benchmarks always did).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from asymlora.models.layouts import LAYOUTS, layout_config
from asymlora.models.loading import model_path
from asymlora.models.meta import auto_class
from asymlora.models.packaged import minilm_path
from asymlora.models.quiet import quiet_transformers
from asymlora.models.registry import MODELS


class BenchmarkModel(NamedTuple):
    """A loaded benchmark model (unpacks as ``model, tokenizer, description``)."""

    model: nn.Module
    tokenizer: object | None
    description: str


def default_model() -> str:
    """The benchmarks' default model.

    Returns:
        str: the packaged all-MiniLM-L6-v2 folder (the registry's ``minilm``).

    Raises:
        FileNotFoundError: the package is missing.
    """
    return str(minilm_path())


def _layout_model(name: str, labels: int, layers: int | None, seed: int, task: str) -> BenchmarkModel:
    config = layout_config(name, layers)
    config.num_labels = labels
    torch.manual_seed(seed)
    built = auto_class(task).from_config(config)
    return BenchmarkModel(built, None, f"random {name} layout, {config.num_hidden_layers} layers"
                          + (" (causal LM)" if task == "causal_lm" else ""))


def load_for_benchmark(model: str, labels: int = 3, layers: int | None = None, seed: int = 0,
                       task: str = "classification") -> BenchmarkModel:
    """Load a benchmark's model (see the module docstring).

    Args:
        model: a layout, a registry name, a folder or a hub id.
        labels: classes of a classifier's head.
        layers: cut a layout (or a folder's config) to this many layers; None keeps them all.
        seed: the seed drawn before fresh weights are made.
        task: ``"classification"`` or ``"causal_lm"``.

    Returns:
        BenchmarkModel: the model, its tokenizer (None for a layout or a folder without one) and a
        one-line description.

    Raises:
        ValueError: an unknown task, or a model that cannot be loaded (one line).
    """
    from transformers import AutoTokenizer

    auto = auto_class(task)
    registry_name = model if model in MODELS and model not in LAYOUTS else None
    if registry_name:      # a registry name that is not a layout (packaged, tiny, hub): its folder or hub id
        model = model_path(model)
    if model in LAYOUTS:
        return _layout_model(model, labels, layers, seed, task)
    kwargs = {"num_labels": labels} if task == "classification" else {}
    if layers:
        kwargs["num_hidden_layers"] = layers
    torch.manual_seed(seed)
    try:
        with quiet_transformers():   # no "classifier newly initialised" report: that is intended here
            built = auto.from_pretrained(model, **kwargs)
    except OSError as error:
        raise ValueError(f"cannot load model {model!r} (not a folder, not a reachable hub id, not a layout of "
                         f"{', '.join(LAYOUTS)}): {str(error).splitlines()[0]}") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError):
        tokenizer = None
    if getattr(built.config, "pad_token_id", None) is None:
        built.config.pad_token_id = getattr(tokenizer, "pad_token_id", None) or 0
    name = "all-MiniLM-L6-v2 (packaged)" if model == default_model() else (registry_name or model)
    kind = ", causal LM" if task == "causal_lm" else ""
    return BenchmarkModel(built, tokenizer,
                          f"{name} ({built.config.model_type}, {built.config.num_hidden_layers} layers{kind})")
