"""Where a planner's model config comes from: a layout name, a registry name, a folder or a hub id.

Only the config is read (``config.json``); no weights. A layout (:data:`asymlora.models.LAYOUTS`)
needs neither files nor network: ``llama-7b`` is Llama-2-7B's shape (4096 wide, MLP 11008,
32 layers, 32 heads, vocabulary 32,000).
"""

from __future__ import annotations

from dataclasses import dataclass

from asymlora.models import ARCHITECTURES, LAYOUTS, layout_config, read_config

#: Architectures planned as causal LMs by default (the rest as sequence classifiers).
DECODERS = ("llama", "mistral", "gpt2", "qwen2", "phi3")


@dataclass
class ModelSource:
    """A config plus what the planner needs to know about it by default."""

    config: object
    description: str
    default_targets: tuple[str, ...]
    default_task: str


def load_config(model: str, layers: int | None = None) -> ModelSource:
    """The config of ``model`` (cut to ``layers`` if given). Raises ValueError / FileNotFoundError
    with one line naming the fix when it cannot be read (a hub id offline, say)."""
    if model in LAYOUTS:
        config = layout_config(model, layers)
        description = f"{model} layout, {config.num_hidden_layers} layers"
    else:
        config = read_config(model)
        if layers:
            config.num_hidden_layers = layers
        description = f"{model} ({config.model_type}, {config.num_hidden_layers} layers)"
    targets, _ = ARCHITECTURES.get(config.model_type, (("query", "value"), ()))
    task = "causal_lm" if config.model_type in DECODERS else "classification"
    return ModelSource(config, description, tuple(targets), task)
