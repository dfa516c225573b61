"""Whole tensors from sharded ones, for what reads a model's tensors as data (saving, hashing).

Under FSDP2 (``torch.distributed.fsdp.fully_shard``) a module's parameters are ``DTensor`` shards:
rank ``k`` holds rows ``k::world`` (or a contiguous block) of each. ``full(t)`` returns the whole
tensor (``DTensor.full_tensor()``, an all-gather: a collective, so every rank must call it in the
same order, e.g. ``save_adapter`` on every rank) and any other tensor unchanged. Frozen factors
are plain buffers and are never sharded.
"""

from __future__ import annotations

import torch


def full(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` whole: gathered if it is a ``DTensor`` shard, else itself."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch built without distributed support has no shards
        return tensor
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def model_class_name(model) -> str:
    """The model's class name, not FSDP2's wrapper (``fully_shard`` swaps ``Llama…`` for a
    generated ``FSDPLlama…`` subclass): an adapter saved sharded names the class it loads on."""
    cls = type(model)
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:
        return cls.__name__
    if issubclass(cls, FSDPModule):
        cls = next((c for c in cls.__mro__[1:] if not issubclass(c, FSDPModule)), cls)
    return cls.__name__
