"""Models without weights: a model's config read from its name, the model built from it on the meta
device (real module shapes, nothing allocated, nothing downloaded), and the auto class of a task."""

from __future__ import annotations

import torch
from torch import nn

#: Benchmark and planner tasks: a sequence classifier or a causal LM.
TASKS = ("classification", "causal_lm")


def auto_class(task: str):
    """The transformers auto class of a task.

    Args:
        task: ``"classification"`` or ``"causal_lm"``.

    Returns:
        type: ``AutoModelForSequenceClassification`` or ``AutoModelForCausalLM``.

    Raises:
        ValueError: an unknown task.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if task not in TASKS:
        raise ValueError(f"unknown benchmark task {task!r}; choose one of {', '.join(TASKS)}")
    return AutoModelForCausalLM if task == "causal_lm" else AutoModelForSequenceClassification


def read_config(name: str):
    """The config of a registry name, a folder or a hub id (``config.json`` only; no weights).

    Args:
        name: anything :func:`~asymlora.models.registry.resolve_model` takes.

    Returns:
        transformers.PretrainedConfig: the config.

    Raises:
        FileNotFoundError: a folder without ``config.json``.
        ValueError: an unknown name, or a config that cannot be read (a hub id offline without a
            cached copy), in one line.
    """
    from transformers import AutoConfig

    from asymlora.models.loading import model_path

    try:
        return AutoConfig.from_pretrained(model_path(name))
    except OSError as error:
        raise ValueError(f"cannot read the config of model {name!r} (offline without a cached copy?): "
                         f"{str(error).splitlines()[0][:120]}") from None


def empty_model(config, task: str | None = None, dtype: torch.dtype | None = None) -> nn.Module:
    """The model of ``config`` with every parameter and buffer on the meta device.

    Args:
        config: a transformers config.
        task: None -> the base model (``AutoModel``, no head); else a task of :data:`TASKS`.
        dtype: the dtype to cast to; None keeps the config's.

    Returns:
        nn.Module: the model, all tensors on ``meta``.

    Raises:
        ValueError: an unknown task.
    """
    from accelerate import init_empty_weights
    from transformers import AutoModel

    auto = AutoModel if task is None else auto_class(task)
    with init_empty_weights(include_buffers=True):
        model = auto.from_config(config)
    return model if dtype is None else model.to(dtype)
