"""Bytes autograd saves for backward, counted with ``torch.autograd.graph.saved_tensors_hooks``.

Every tensor autograd packs is traced to its storage, and each storage is counted once with its
full size (``untyped_storage().nbytes()``): a view of a big buffer costs the buffer. Storages
are split three ways:

* **weights**: storages of the model's parameters and buffers (kept anyway, not activations);
* **activations**: everything else — what a training step adds to memory;
* **adapter activations**: the activation storages packed *only* while the forward pass was
  inside an adapter module and outside its wrapped base layer (``AdaptedLinear.base``,
  PEFT's ``base_layer``). A storage also packed outside adapter code (say the layer input ``x``,
  which the base layer saves as well) is not the adapter's: it would be saved without it.

The position in the forward pass is tracked with forward pre/post hooks on the adapter modules
and on the excluded base layers (a stack of labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

MIB = float(1 << 20)


@dataclass
class SavedBytes:
    """Bytes saved for backward by one call (each storage once)."""

    activation_bytes: int
    adapter_activation_bytes: int
    weight_bytes: int
    tensors: int      # number of pack events (a tensor saved twice counts twice here)

    def as_dict(self) -> dict:
        return {"saved_activation_bytes": self.activation_bytes,
                "adapter_activation_bytes": self.adapter_activation_bytes,
                "saved_weight_bytes": self.weight_bytes, "saved_tensor_count": self.tensors}


def _storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    """One key per storage. Meta tensors (shapes without data, traced by the memory planner) all
    have data pointer 0, so there the storage object's own address identifies it."""
    storage = tensor.untyped_storage()
    return (str(tensor.device), storage._cdata if tensor.device.type == "meta" else storage.data_ptr())


def count_saved(model: nn.Module, run: Callable[[], object], adapter_modules: Iterable[nn.Module] = (),
                excluded: Iterable[nn.Module] = ()) -> SavedBytes:
    """Run ``run()`` (a forward and backward of ``model``) and count what autograd saved.

    ``adapter_modules``: modules whose saves are the adapter's; ``excluded``: submodules inside
    them that are not (the wrapped base layer).
    """
    weights = {_storage_key(t) for t in list(model.parameters()) + list(model.buffers())}
    sizes: dict[tuple[str, int], int] = {}
    inside: set[tuple[str, int]] = set()
    outside: set[tuple[str, int]] = set()
    stack: list[str] = []
    events = 0

    def pack(tensor: torch.Tensor):
        nonlocal events
        events += 1
        key = _storage_key(tensor)
        sizes[key] = max(sizes.get(key, 0), tensor.untyped_storage().nbytes())
        (inside if stack and stack[-1] == "adapter" else outside).add(key)
        return tensor

    handles = []

    def push(label):
        def hook(module, args):
            stack.append(label)
        return hook

    def pop(module, args, output):
        stack.pop()

    for label, modules in (("adapter", adapter_modules), ("base", excluded)):
        for module in modules:
            handles.append(module.register_forward_pre_hook(push(label)))
            handles.append(module.register_forward_hook(pop))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            run()
    finally:
        for handle in handles:
            handle.remove()
    activations = {k: v for k, v in sizes.items() if k not in weights}
    adapter = sum(v for k, v in activations.items() if k in inside and k not in outside)
    return SavedBytes(sum(activations.values()), adapter,
                      sum(v for k, v in sizes.items() if k in weights), events)
