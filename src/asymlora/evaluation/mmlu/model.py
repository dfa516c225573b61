"""The causal LM (and optional asymlora adapter) an MMLU evaluation scores.

A registry name, a local folder or a hub id resolves through :mod:`asymlora.models`. A checkpoint
without an LM head (the tiny random test models are saved as bare ``LlamaModel``) gets a fresh head
initialised from ``torch.manual_seed(seed)`` in a forked RNG, so runs are repeatable.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asymlora import models


def load_causal_lm(name: str, adapter: str | Path | None = None, seed: int = 0, device: str = "cpu"):
    """``(model, tokenizer)`` in eval mode; ``adapter``: an asymlora adapter folder loaded on top
    (its base-model fingerprint is checked: an adapter trained on another base raises ValueError)."""
    from transformers import AutoModelForCausalLM

    from asymlora.adapters.io import CONFIG_FILE, load_adapter

    if adapter is not None and not (Path(adapter) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{adapter}: not an asymlora adapter folder (no {CONFIG_FILE})")
    ref = models.resolve_model(name)
    if ref.kind != "text":
        raise ValueError(f"--model {name}: MMLU needs a causal language model, {name} is an image model")
    tokenizer = models.load_tokenizer(ref)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = AutoModelForCausalLM.from_pretrained(models.model_path(ref), dtype=torch.float32)
    if adapter is not None:
        load_adapter(model, adapter)
    return model.to(device).eval(), tokenizer
