"""What one party does with its data: tokenised shards, the adapted model, local steps, accuracy.

Shared by the Flower clients, the server's evaluation and the centralised baseline, so that every
method trains with the same code, data order rule and optimiser.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from asymlora.federated.config import FederatedConfig
from asymlora.federated.splits import dirichlet_split


@dataclass(frozen=True)
class Shard:
    """Tokenised examples: ``input_ids`` / ``attention_mask`` (n × max_length, padded), ``labels`` (n)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index) -> "Shard":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Shard(self.input_ids[index], self.attention_mask[index], self.labels[index])


@dataclass(frozen=True)
class TaskData:
    """The pooled training subsample, the evaluation subsample, and each client's indices into ``train``."""

    train: Shard
    test: Shard
    parts: tuple
    num_labels: int


def _encode(tokenizer, texts, labels, max_length: int) -> Shard:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    return Shard(enc["input_ids"], enc["attention_mask"], torch.as_tensor(list(labels), dtype=torch.long))


#: The config fields the data depends on (runs that differ only in training settings share one load).
DATA_FIELDS = ("task", "model", "clients", "alpha", "batch_size", "max_length", "train_examples", "eval_examples",
               "seed")


def task_data(config: FederatedConfig) -> TaskData:
    """Load the task, subsample (seeded), tokenise, split the training part over the clients.

    Args:
        config (FederatedConfig): task, model (for its tokenizer), sizes, ``clients``, ``alpha``, ``seed``.

    Returns:
        TaskData: the same for every party that holds the same :data:`DATA_FIELDS` (cached per process).

    Raises:
        UserError: more clients than the data allows (see :func:`dirichlet_split`), an unknown task.
    """
    return _task_data(**{name: getattr(config, name) for name in DATA_FIELDS})


@functools.lru_cache(maxsize=2)
def _task_data(**fields) -> TaskData:
    from asymlora.models import load_tokenizer
    from asymlora.tasks import get_task, limit

    config = FederatedConfig(**fields)
    task = get_task(config.task)
    splits = limit(task.load(None, config.seed), config.train_examples, config.eval_examples, config.seed)
    field = task.text_fields[0]
    test_split = "test" if "test" in splits else "validation"
    tokenizer = load_tokenizer(config.model)
    train = _encode(tokenizer, splits["train"][field], splits["train"]["label"], config.max_length)
    test = _encode(tokenizer, splits[test_split][field], splits[test_split]["label"], config.max_length)
    parts = dirichlet_split(train.labels.tolist(), config.clients, config.alpha, config.seed, config.batch_size)
    return TaskData(train, test, tuple(parts), task.num_labels)


def build_model(config: FederatedConfig, train: str):
    """The task's model with an adapter (rank, alpha, seed from ``config``; ``train`` = ``"B"`` or
    ``"AB"``; A orthonormal, B zero, classifier head trained). Same seed -> same A and head everywhere.
    """
    import asymlora as al
    from asymlora.models import heads

    model = al.load_for_sequence_classification(config.model, num_labels=task_data(config).num_labels,
                                                seed=config.seed)
    head, targets = heads.classifier_head(model), heads.guess_targets(model)
    cfg = al.AdapterConfig(rank=config.rank, alpha=config.lora_alpha, train=train, init_A="orthonormal",
                           init_B="zero", targets=targets, seed=config.seed, modules_to_save=[head])
    return al.inject(model, cfg)


def trainable_arrays(model) -> dict[str, torch.Tensor]:
    """``{name: detached copy}`` of what a client trains and sends: the trained factors and the head."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def frozen_factors(model) -> dict[str, torch.Tensor]:
    """``{"<layer>.A": A}`` for every frozen factor (B-only's shared A), keyed like :func:`trainable_arrays`."""
    return {n: b.detach() for n, b in model.named_buffers() if n.endswith((".A", ".B"))}


def load_arrays(model, arrays) -> None:
    """Copy ``arrays`` (names as :func:`trainable_arrays`) into the model's trainable parameters.

    Raises:
        KeyError: an array the model does not train, or a trained parameter missing from ``arrays``.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(arrays):
        raise KeyError(f"arrays do not match the trained parameters: {sorted(set(params) ^ set(arrays))[:4]}")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(torch.as_tensor(arrays[name]))


def train_steps(model, shard: Shard, steps: int, config: FederatedConfig, seed: int) -> float:
    """``steps`` AdamW steps (fresh optimiser, ``config.learning_rate``) on batches of ``shard``.

    Batches are consecutive slices of a permutation drawn from ``seed``, re-drawn when exhausted.

    Returns:
        float: the mean training loss over the steps.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    model.train()
    order, cursor, losses = torch.randperm(len(shard), generator=generator), 0, []
    size = min(config.batch_size, len(shard))
    for _ in range(steps):
        if cursor + size > len(shard):
            order, cursor = torch.randperm(len(shard), generator=generator), 0
        batch = shard.take(order[cursor:cursor + size])
        cursor += size
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels)
        out.loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach()))
    return float(np.mean(losses))


@torch.no_grad()
def accuracy(model, shard: Shard, batch_size: int = 64) -> float:
    """Share of ``shard`` whose arg-max logit is the label."""
    model.eval()
    correct = 0
    for start in range(0, len(shard), batch_size):
        batch = shard.take(range(start, min(start + batch_size, len(shard))))
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        correct += int((logits.argmax(-1) == batch.labels).sum())
    return correct / len(shard)
