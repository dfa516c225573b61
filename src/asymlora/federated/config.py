"""What a federated comparison is: one frozen record that the server, every client and the results share.

The same :class:`FederatedConfig` travels to the clients inside every training message (a Flower
``ConfigRecord`` of its fields: strings, ints, floats), so a client holds no state of its own beyond a
cache: it rebuilds its data shard and model from the record and its partition id.

:class:`FederatedMethod` names a way to train and aggregate adapters (:data:`METHODS`).
"""

from __future__ import annotations

import math

from dataclasses import asdict, dataclass, fields

from asymlora.errors import UserError


@dataclass(frozen=True)
class FederatedMethod:
    """``train``: which factors the clients train (``"B"`` or ``"AB"``); ``aggregator``: a name in
    :data:`asymlora.federated.aggregation.AGGREGATORS`."""

    name: str
    train: str
    aggregator: str
    description: str


#: Method name -> what clients train and how the server aggregates it.
METHODS: dict[str, FederatedMethod] = {m.name: m for m in (
    FederatedMethod("b_only", "B", "average", "A frozen and shared (same seed), FedAvg of B: exact (FFA-LoRA)"),
    FederatedMethod("lora_separate", "AB", "average", "LoRA, A and B averaged separately: avg(B)avg(A) != avg(BA)"),
    FederatedMethod("lora_product", "AB", "refactor",
                    "LoRA, exact average of BA re-factored by truncated SVD each round (costly baseline)"),
)}


@dataclass(frozen=True)
class FederatedConfig:
    """Every number of a run. Budget per method: ``rounds × clients × local_steps`` optimiser steps of
    ``batch_size`` examples; the centralised baseline takes the same number of steps on the pooled data.

    Attributes: ``task`` / ``model`` (registry names), ``clients`` (N), ``alpha`` (Dirichlet
    concentration of the label split), ``rounds``, ``local_steps``, ``batch_size``, ``max_length``
    (tokens), ``learning_rate`` (AdamW, fresh each round), ``rank`` / ``lora_alpha`` (adapter on the
    model's default targets, classifier head trained and averaged), ``train_examples`` /
    ``eval_examples`` (seeded subsamples of the task's train / test split), ``seed`` (split, A, head,
    batch order, DP noise), ``threads`` (torch threads per client process); ``clipping_norm`` C > 0
    turns on client-level differential privacy (:mod:`asymlora.federated.privacy`: each client's update
    clipped to L2 norm C, Gaussian noise of std ``noise_multiplier · C / clients`` on the average).
    """

    task: str = "tweets"
    model: str = "minilm"
    clients: int = 4
    alpha: float = 0.5
    rounds: int = 5
    local_steps: int = 5
    batch_size: int = 8
    max_length: int = 32
    learning_rate: float = 1e-3
    rank: int = 8
    lora_alpha: float = 16.0
    train_examples: int = 1000
    eval_examples: int = 200
    seed: int = 0
    threads: int = 1
    noise_multiplier: float = 0.0
    clipping_norm: float = 0.0

    def validate(self) -> "FederatedConfig":
        """Check the numbers before anything is loaded.

        Returns:
            FederatedConfig: ``self``.

        Raises:
            UserError: a count below 1, ``alpha`` or the learning rate not positive, more clients
                than the training examples can give one batch each, or DP noise without a clipping norm.
        """
        for name in ("clients", "rounds", "local_steps", "batch_size", "max_length", "rank", "train_examples",
                     "eval_examples", "threads"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("alpha", "learning_rate", "lora_alpha"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if not (0 <= self.noise_multiplier < math.inf and 0 <= self.clipping_norm < math.inf):
            raise UserError(f"--dp-noise and --dp-clip must be finite and >= 0, got {self.noise_multiplier} and "
                            f"{self.clipping_norm}")
        if self.noise_multiplier > 0 and not self.clipping_norm > 0:
            raise UserError("--dp-noise needs a clipping norm: give --dp-clip C > 0 (noise is scaled by C)")
        if self.clients * self.batch_size > self.train_examples:
            raise UserError(f"--clients {self.clients} needs at least {self.clients * self.batch_size} training "
                            f"examples (one batch of {self.batch_size} per client) but --train-examples is "
                            f"{self.train_examples}; lower --clients or raise --train-examples")
        return self

    @property
    def private(self) -> bool:
        """Whether updates are clipped (and noised): ``clipping_norm > 0``."""
        return self.clipping_norm > 0

    def to_record(self) -> dict:
        """The fields as a flat dict of str / int / float (a Flower ``ConfigRecord``'s value types)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record) -> "FederatedConfig":
        """The inverse of :meth:`to_record` (extra keys, e.g. Flower's ``server-round``, are ignored)."""
        return cls(**{f.name: type(f.default)(record[f.name]) for f in fields(cls) if f.name in record})


def get_method(name: str) -> FederatedMethod:
    """The method called ``name``.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    if name not in METHODS:
        raise UserError(f"unknown federated method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]
