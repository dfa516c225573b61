"""The base-model fingerprint an adapter file records, and the check against a base model.

``BaseFingerprint``: the class and name of the base model, every target module's weight shape
``[d_out, d_in]``, and the SHA-256 and dtype of the PRETRAINED weight ``W0`` of the first,
middle and last target (from a merged model ``W0`` is rebuilt exactly, the model untouched).
Hashes are SHA-256 of a tensor's raw bytes, row-major, native dtype, on the CPU.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from asymlora.adapters.inject import adapted_modules
from asymlora.adapters.linear import AdaptedLinear, dense_weight, weight_layout
from asymlora.adapters.recipe import dtype_name
from asymlora.adapters.sharded import full, model_class_name

#: How many pretrained weights the base fingerprint hashes (first, middle and last target).
FINGERPRINT_WEIGHTS = 3
#: The fix every base-model mismatch names.
ONTO = "load it onto the model it was trained on"


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 (hex) of a tensor's raw bytes in row-major order (CPU, native dtype, little endian).

    Shape and dtype are not part of the digest; the file records them beside it.
    """
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def pretrained_weight(module: nn.Module) -> torch.Tensor:
    """``W0`` (d_out × d_in) of a linear layer or of an :class:`AdaptedLinear` (merged or not)."""
    if isinstance(module, AdaptedLinear):
        return module.pretrained_weight()
    return dense_weight(module).detach()


@dataclass(frozen=True)
class WeightHash:
    sha256: str
    dtype: str


@dataclass
class BaseFingerprint:
    """What an adapter knows of its base model (see the module docstring)."""

    modules: dict[str, tuple[int, int]]
    weights: dict[str, WeightHash]
    class_name: str | None = None
    name_or_path: str | None = None

    def to_dict(self) -> dict:
        return {"class": self.class_name, "name_or_path": self.name_or_path,
                "modules": {n: list(s) for n, s in self.modules.items()},
                "weights": {n: {"sha256": w.sha256, "dtype": w.dtype} for n, w in self.weights.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "BaseFingerprint":
        return cls(modules={str(n): (int(s[0]), int(s[1])) for n, s in data["modules"].items()},
                   weights={str(n): WeightHash(str(w["sha256"]), str(w["dtype"])) for n, w in data["weights"].items()},
                   class_name=data.get("class"), name_or_path=data.get("name_or_path"))

    def check(self, base_model: nn.Module, check_weights: bool = True) -> None:
        """Raise ValueError naming the first module where ``base_model`` differs from this base."""
        modules = dict(base_model.named_modules())
        for name, shape in self.modules.items():
            module = modules.get(name)
            if module is None:
                raise ValueError(f"the base model has no module {name!r} that the adapter was trained on "
                                 f"(base model class {type(base_model).__name__}, adapter's {self.class_name}); {ONTO}")
            if weight_layout(module) is None:
                raise ValueError(f"module {name!r} of the base model is a {type(module).__name__}, not a linear layer; {ONTO}")
            actual = tuple(dense_weight(module).shape)
            if actual != tuple(shape):
                raise ValueError(f"base model mismatch at module {name!r}: weight is {actual[0]}×{actual[1]} "
                                 f"(d_out×d_in) but the adapter was trained on {shape[0]}×{shape[1]}; {ONTO}")
        if not check_weights:
            return
        for name, recorded in self.weights.items():
            weight = pretrained_weight(modules[name])
            if dtype_name(weight.dtype) != recorded.dtype:
                raise ValueError(f"base model mismatch at module {name!r}: weights are {dtype_name(weight.dtype)} "
                                 f"but the adapter was trained on {recorded.dtype} weights; {ONTO}")
            if tensor_sha256(weight) != recorded.sha256:
                raise ValueError(f"base model mismatch at module {name!r}: its pretrained weights differ from the "
                                 f"ones the adapter was trained on (fingerprint SHA-256 differs); {ONTO}")


def _hashed_names(names: list[str]) -> list[str]:
    if not names:
        return []
    picks = [names[0], names[len(names) // 2], names[-1]][:FINGERPRINT_WEIGHTS]
    return list(dict.fromkeys(picks))


def base_fingerprint(model: nn.Module, names: list[str] | None = None) -> BaseFingerprint:
    """The fingerprint of ``model`` over the target modules ``names`` (default: its adapted modules)."""
    if names is None:
        names = list(adapted_modules(model))
    shapes, weights = {}, {}
    for name in names:
        module = model.get_submodule(name)
        shapes[name] = tuple(dense_weight(module.base if isinstance(module, AdaptedLinear) else module).shape)
    for name in _hashed_names(names):
        weight = full(pretrained_weight(model.get_submodule(name)))
        weights[name] = WeightHash(tensor_sha256(weight), dtype_name(weight.dtype))
    config = getattr(model, "config", None)
    return BaseFingerprint(shapes, weights, model_class_name(model), getattr(config, "_name_or_path", None))


def fingerprint(model: nn.Module, names: list[str] | None = None) -> dict:
    """:func:`base_fingerprint` as the JSON mapping the file holds, without class and name.

    Args:
        model (nn.Module): a model, with or without adapters (an adapted layer is hashed at its
            pretrained weight ``W0``, rebuilt exactly when merged).
        names (list[str] | None): the target module names; default: the model's adapted modules.

    Returns:
        dict: ``{"modules": {name: [d_out, d_in]}, "weights": {name: {"sha256": str, "dtype": str}}}``.

    Raises:
        AttributeError: a name is not a module of ``model``.
    """
    data = base_fingerprint(model, names).to_dict()
    return {"modules": data["modules"], "weights": data["weights"]}
