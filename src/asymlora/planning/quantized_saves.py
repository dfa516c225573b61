"""What a quantized base's linear layers keep for backward and hold for a moment, for the meta trace.

The planner traces a dense model (:mod:`asymlora.planning.trace`); a frozen dense ``nn.Linear``
saves nothing for backward (its weight needs no gradient, so autograd keeps neither its input nor
its weight). bitsandbytes' layers differ (read from bitsandbytes 0.50.2, ``autograd/_functions.py``):

* **8 bit** (``Linear8bitLt`` in training): on the CPU / XPU ``MatMul8bitFp`` stores its input as
  ``ctx.A = A``; on CUDA ``MatMul8bitLt`` stores it in ``ctx.tensors = (CAt, subA, A)``. Either way the
  layer's input ``x`` (``N × d_in`` in the compute dtype) stays alive until backward, and neither
  goes through ``save_for_backward``, so a real step's saved-tensor count misses it too.
  :func:`int8_input_rule` makes the meta trace save each base linear's input, counted once per
  storage like every other saved tensor (``q``, ``k`` and ``v`` share one input).
* **4 bit** (``MatMul4Bit``) keeps only its packed weight (``ctx.tensors = (None, B)``): no rule.

Both dequantise the whole weight for each matmul (``gemm_4bit``'s default kernel and
``dequantize_4bit`` in backward; ``state.CB.to(A.dtype).mul_(SCB)`` for 8 bit): a dense
``d_out × d_in`` copy in the compute dtype exists while one layer runs (:func:`dequantised_transient`).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from asymlora.planning.bits import base_linears

#: bits whose base layers keep their input for backward (see the module docstring)
KEEPS_INPUT = frozenset({8})
#: bits whose base layers dequantise their weight for each matmul
DEQUANTISES = frozenset({4, 8})


class _KeepsInput(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` that saves ``x`` for backward, as bitsandbytes' int8 path keeps it."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x)
        ctx.weight = weight
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad @ ctx.weight.to(grad.dtype), None, None


@contextlib.contextmanager
def int8_input_rule(model: nn.Module, bits: int | None):
    """Inside the block, every frozen base linear of ``model`` saves its input when ``bits`` is in
    :data:`KEEPS_INPUT` (no change otherwise)."""
    patched = base_linears(model) if bits in KEEPS_INPUT else []

    def forward(module):
        return lambda x: _KeepsInput.apply(x, module.weight, module.bias)

    for module in patched:
        module.forward = forward(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def dequantised_transient(model: nn.Module, bits: int | None, dtype: torch.dtype) -> int:
    """Bytes of the largest dense weight a quantized base layer materialises for one matmul.

    Args:
        model (nn.Module): the planned (meta) model with its adapters built.
        bits (int | None): the base's bit width; None or 16 / 32 -> 0.
        dtype (torch.dtype): the compute dtype the weight is dequantised to.

    Returns:
        int: ``max(d_out · d_in) · element size`` over the base linears, 0 for a dense base.
    """
    if bits not in DEQUANTISES:
        return 0
    element = torch.empty((), dtype=dtype).element_size()
    return max((m.weight.numel() * element for m in base_linears(model)), default=0)
