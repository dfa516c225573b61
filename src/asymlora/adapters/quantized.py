"""Quantized base layers that an adapter can wrap: a registry of the supported layer types.

A quantized linear layer keeps ``W0`` packed (4 or 8 bits per weight plus scales) and computes
``y = dequant(W0) x + b`` itself. The adapter leaves it as it is and adds ``s · B (A x)`` beside
it, so nothing here changes the frozen weight; what the adapter needs from the layer is only

* ``in_features`` / ``out_features``: the logical shape ``d_out × d_in`` (a bitsandbytes 4-bit
  weight is stored as a ``(d_out · d_in / 2) × 1`` byte tensor, so the stored shape is no guide);
* ``bits``: bits per stored weight (4 or 8), for the memory planner and the summary;
* ``dequantize``: ``W0`` as a dense fp32 ``d_out × d_in`` tensor, for merging (only on request:
  :func:`asymlora.adapters.inject.merge` with ``dequantize=True``) and for shape checks.

==========================  ===========================================================  ====
kind                        layer                                                          bits
==========================  ===========================================================  ====
``bnb-4bit``                bitsandbytes ``Linear4bit`` (NF4 or FP4, blockwise absmax)      4
``bnb-8bit``                bitsandbytes ``Linear8bitLt`` (row-wise absmax int8, LLM.int8)  8
``torchao-int8``            ``nn.Linear`` whose weight is torchao's ``Int8Tensor``          8
``torchao-intx``            ``nn.Linear`` whose weight is torchao's ``IntxUnpackedToInt8Tensor`` 2–8 (one byte stored)
==========================  ===========================================================  ====

Any other layer that looks quantized (its class comes from a quantization package, or its weight
is an integer tensor or a tensor subclass) is refused with one line naming the supported kinds:
:func:`check_supported`. Torch only: the quantization packages are imported lazily, inside the
dequantisers, and only ever for a layer that already came from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from asymlora.errors import UserError

#: Top-level packages whose linear layers are quantized (supported ones or not).
QUANTIZATION_PACKAGES = ("bitsandbytes", "torchao", "auto_gptq", "gptqmodel", "awq", "hqq", "optimum", "quanto",
                         "compressed_tensors", "eetq", "aqlm", "fbgemm_gpu", "vptq", "higgs")


@dataclass(frozen=True)
class QuantizedKind:
    """One supported quantized layer type.

    ``matches(module) -> bool``; ``bits(module) -> int`` (bits per stored weight);
    ``dequantize(module) -> Tensor`` (fp32, ``d_out × d_in``, a new tensor).
    """

    name: str
    package: str
    description: str
    matches: Callable[[nn.Module], bool]
    bits: Callable[[nn.Module], int]
    dequantize: Callable[[nn.Module], torch.Tensor]

    def shape(self, module: nn.Module) -> tuple[int, int]:
        """``(d_out, d_in)``, the logical shape (``out_features``, ``in_features``)."""
        return int(module.out_features), int(module.in_features)


QUANTIZED_KINDS: dict[str, QuantizedKind] = {}


def register_kind(kind: QuantizedKind) -> QuantizedKind:
    """Add ``kind`` to :data:`QUANTIZED_KINDS` (a new backend is one call)."""
    QUANTIZED_KINDS[kind.name] = kind
    return kind


def _root_package(obj) -> str:
    return type(obj).__module__.split(".")[0]


def _class_named(module: nn.Module, package: str, *names: str) -> bool:
    return _root_package(module) == package and type(module).__name__ in names


def _weight_class_named(module: nn.Module, package: str, *names: str) -> bool:
    weight = getattr(module, "weight", None)
    return isinstance(module, nn.Linear) and weight is not None and _root_package(weight) == package \
        and type(weight).__name__ in names


# ---------------------------------------------------------------------------- bitsandbytes
def _bnb_4bit_dequantize(module: nn.Module) -> torch.Tensor:
    import bitsandbytes.functional as bnb_functional

    weight = module.weight
    return bnb_functional.dequantize_4bit(weight.data, weight.quant_state).float().reshape(
        module.out_features, module.in_features)


def _bnb_8bit_dequantize(module: nn.Module) -> torch.Tensor:
    """``W0 = CB · SCB / 127`` row by row (``CB`` int8 ``d_out × d_in``, ``SCB`` the row absmax)."""
    weight = module.weight
    scales = getattr(weight, "SCB", None)
    if scales is None:   # an int8 layer that keeps fp16 weights (has_fp16_weights=True) is not quantized yet
        return weight.data.float()
    return weight.data.float() * (scales.float().unsqueeze(1) / 127.0)


register_kind(QuantizedKind(
    "bnb-4bit", "bitsandbytes", "bitsandbytes Linear4bit (NF4 / FP4)",
    matches=lambda m: _class_named(m, "bitsandbytes", "Linear4bit", "LinearNF4", "LinearFP4"),
    bits=lambda m: 4, dequantize=_bnb_4bit_dequantize))
register_kind(QuantizedKind(
    "bnb-8bit", "bitsandbytes", "bitsandbytes Linear8bitLt (LLM.int8)",
    matches=lambda m: _class_named(m, "bitsandbytes", "Linear8bitLt"),
    bits=lambda m: 8, dequantize=_bnb_8bit_dequantize))


# ---------------------------------------------------------------------------- torchao
def _torchao_dequantize(module: nn.Module) -> torch.Tensor:
    return module.weight.dequantize().float()


_INT_BITS = {getattr(torch, f"int{b}"): b for b in range(1, 9) if hasattr(torch, f"int{b}")}

register_kind(QuantizedKind(
    "torchao-int8", "torchao", "nn.Linear with a torchao Int8Tensor weight (Int8WeightOnlyConfig)",
    matches=lambda m: _weight_class_named(m, "torchao", "Int8Tensor"),
    bits=lambda m: 8, dequantize=_torchao_dequantize))
register_kind(QuantizedKind(
    "torchao-intx", "torchao", "nn.Linear with a torchao IntxUnpackedToInt8Tensor weight (IntxWeightOnlyConfig)",
    matches=lambda m: _weight_class_named(m, "torchao", "IntxUnpackedToInt8Tensor"),
    bits=lambda m: _INT_BITS.get(m.weight.target_dtype, 8), dequantize=_torchao_dequantize))


# ---------------------------------------------------------------------------- queries
def quantized_kind(module: nn.Module) -> QuantizedKind | None:
    """The registered kind of ``module``, or None (a plain layer, or an unsupported quantized one).

    Args:
        module (nn.Module): any module.

    Returns:
        QuantizedKind | None: the first kind of :data:`QUANTIZED_KINDS` that matches.
    """
    return next((kind for kind in QUANTIZED_KINDS.values() if kind.matches(module)), None)


def looks_quantized(module: nn.Module) -> bool:
    """True for a linear-like layer that stores its weight quantized, supported or not: its class
    comes from a quantization package (and is named ``…Linear…``), or its ``weight`` is an integer
    tensor or a tensor subclass."""
    if quantized_kind(module) is not None:
        return True
    if _root_package(module) in QUANTIZATION_PACKAGES and "linear" in type(module).__name__.lower():
        return True
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or isinstance(module, nn.Embedding) or weight.dim() != 2:
        return False
    subclass = type(weight) not in (torch.Tensor, nn.Parameter) and _root_package(weight) != "torch"  # not DTensor
    return not weight.dtype.is_floating_point or subclass


def supported_kinds_text() -> str:
    """The supported kinds in words, for error messages."""
    return "; ".join(kind.description for kind in QUANTIZED_KINDS.values())


def check_supported(module: nn.Module, name: str) -> None:
    """Raise if ``module`` is quantized in a way no registered kind handles.

    Args:
        module (nn.Module): a layer about to be adapted.
        name (str): its dotted name, for the message.

    Raises:
        UserError: ``module`` looks quantized (:func:`looks_quantized`) but matches no kind; the
            line names the layer type and the supported kinds.
    """
    if looks_quantized(module) and quantized_kind(module) is None:
        weight = getattr(module, "weight", None)
        stored = f" with a {type(weight).__name__} {getattr(weight, 'dtype', '')} weight" if weight is not None else ""
        raise UserError(f"layer {name!r} is a {type(module).__module__}.{type(module).__name__}{stored}, a quantized "
                        f"layer type asymlora cannot adapt; load the base unquantized or with one of the supported "
                        f"kinds ({supported_kinds_text()})")


def bits_of(module: nn.Module) -> int | None:
    """Bits per stored weight of a registered quantized layer, None for a plain one."""
    kind = quantized_kind(module)
    return kind.bits(module) if kind is not None else None


def refuse_quantized_merge(module: nn.Module, name: str) -> None:
    """Raise when ``module`` is quantized: folding ``s · B A`` into a packed weight is not possible.

    Raises:
        UserError: ``module`` is a registered quantized kind; the line says to dequantise first
            (``merge(model, dequantize=True)`` / ``save_merged(model, folder, dequantize=True)``).
    """
    kind = quantized_kind(module)
    if kind is not None:
        raise UserError(f"module {name!r} has a quantized base weight ({kind.description}): merging into it would "
                        f"need re-quantisation; pass dequantize=True to merge/save_merged to merge into a dense fp32 "
                        f"copy of the weight instead")


def dense_linear(module: nn.Module) -> nn.Linear:
    """A plain fp32 ``nn.Linear`` holding ``dequantize(module)`` and the layer's bias (frozen).

    Args:
        module (nn.Module): a layer of a registered quantized kind.

    Returns:
        nn.Linear: ``d_in → d_out``, weight ``d_out × d_in`` fp32 on the layer's device, no grad.

    Raises:
        ValueError: ``module`` is not of a registered quantized kind.
    """
    kind = quantized_kind(module)
    if kind is None:
        raise ValueError(f"{type(module).__name__} is not a registered quantized layer")
    weight = kind.dequantize(module)
    bias = getattr(module, "bias", None)
    dense = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device)
    with torch.no_grad():
        dense.weight.copy_(weight)
        if bias is not None:
            dense.bias.copy_(bias.detach().float())
    dense.requires_grad_(False)
    return dense
