"""Bytes of a quantized base's frozen linear weights, for the memory planner (``--bits``).

A 4- or 8-bit base (QLoRA-style: bitsandbytes through transformers' ``BitsAndBytesConfig``)
stores every linear weight of the transformer blocks packed; embeddings, norms, biases and the
output head stay in the compute dtype, and so do the adapters. Per weight matrix of
``d_out × d_in = n`` elements (:data:`PACKED_BYTES`):

* **4 bit** (NF4, blocks of 64, double quantisation, bitsandbytes' default in
  :mod:`asymlora.models.quantized`): ``n / 2`` bytes of codes, one 8-bit absmax per 64-block
  (``n / 64``) and one fp32 scale per 256 such blocks (``4 n / 16384``): about 4.13 bits per weight;
* **8 bit** (LLM.int8 row-wise): ``n`` bytes of int8 plus one fp32 absmax per output row (``4 d_out``);
* **16 / 32 bit**: ``2 n`` / ``4 n`` (no quantization: the base at that precision).

The planner swaps these bytes for the dense bytes of the same weights in its meta model
(:func:`quantized_saving`); activations are traced on the dense model (the packed layer saves the
same input for backward as a dense one).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

#: bits -> ``(numel, d_out) -> bytes`` of one packed weight matrix.
PACKED_BYTES: dict[int, Callable[[int, int], float]] = {
    4: lambda n, rows: n / 2 + n / 64 + 4 * n / (64 * 256),
    8: lambda n, rows: n + 4 * rows,
    16: lambda n, rows: 2 * n,
    32: lambda n, rows: 4 * n,
}

#: Module names that bitsandbytes keeps unquantized (the output heads).
HEADS = ("lm_head", "score", "classifier")


def check_bits(bits: int | None) -> None:
    """Raise ValueError unless ``bits`` is None (the base in the plan's dtype) or in :data:`PACKED_BYTES`."""
    if bits is not None and bits not in PACKED_BYTES:
        raise ValueError(f"--bits must be one of {', '.join(map(str, sorted(PACKED_BYTES)))}; got {bits}")


def base_linears(model: nn.Module) -> list[nn.Linear]:
    """The frozen base linear layers a quantizer packs: not heads, not adapter factors (PEFT's
    ``lora_A`` / ``lora_B`` are ``nn.Linear`` too), weight not trained."""
    found = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if not isinstance(module, nn.Linear) or set(parts) & set(HEADS) or any(p.startswith("lora_") for p in parts):
            continue
        if not module.weight.requires_grad:
            found.append(module)
    return found


def quantized_saving(model: nn.Module, bits: int | None) -> int:
    """Bytes saved by storing ``model``'s base linear weights in ``bits`` bits instead of their dtype.

    Args:
        model (nn.Module): a model (meta or real) with adapters built, weights in the planned dtype.
        bits (int | None): 4, 8, 16, 32, or None (no change).

    Returns:
        int: ``Σ (dense bytes − packed bytes)`` over :func:`base_linears` (0 when ``bits`` is None).
    """
    check_bits(bits)
    if bits is None:
        return 0
    saving = 0.0
    for module in base_linears(model):
        weight = module.weight
        saving += weight.numel() * weight.element_size() - PACKED_BYTES[bits](weight.numel(), weight.shape[0])
    return int(round(saving))


def checkpoint_linear_bytes(model: nn.Module, bits: int | None, element_size: int) -> int:
    """Bytes the dense checkpoint holds for the weights a quantizer packs (``--device cpu``).

    transformers loads a dense checkpoint through a memory map and quantizes each weight from it;
    the file is still mapped after loading (tests/test_memory_peak_terms.py), and every page the
    quantizer read stays resident. So on the CPU the packed weights come on top of the
    dense bytes they were made from (measured: docs/results/quantized/peak_anatomy/).

    Args:
        model (nn.Module): a model with adapters built.
        bits (int | None): 4 or 8 -> the dense bytes; anything else -> 0 (no quantizer ran).
        element_size (int): bytes per element in the checkpoint file (4 for a float32 checkpoint).

    Returns:
        int: ``Σ numel · element_size`` over :func:`base_linears`.
    """
    if bits not in (4, 8):
        return 0
    return sum(module.weight.numel() * element_size for module in base_linears(model))
