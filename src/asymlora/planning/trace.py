"""Saved activations of one training step, traced on the meta device (shapes only, no weights).

The model is built from its config by :func:`asymlora.models.empty_model` (every parameter and
buffer on the ``meta`` device: nothing is allocated, nothing downloaded), the method is applied by
the same builders the benchmark uses (:mod:`asymlora.bench.configs`; ``full`` trains every
parameter), and one forward + backward runs on meta token ids while
:func:`asymlora.bench.saved.count_saved` records every tensor autograd saves — the same count the
benchmark makes on real data, so a prediction and a measurement differ only where an operation
saves something different on the meta device than on the real one.

One such operation is attention. PyTorch's ``scaled_dot_product_attention`` picks a kernel by
device: with no dropout, the CPU and CUDA pick a flash kernel that saves ``q, k, v``, the output
and a float32 log-sum-exp (``B × H × T``), while on the meta device it falls back to the math
path, which saves the ``B × H × T × T`` attention weights. :func:`flash_attention_rule` makes the
trace save what the flash kernel saves (measured on the CPU: tests/test_memory_planner.py). With
attention dropout (BERT in training) every device takes the math path, and the trace needs no rule.

Inputs: ``input_ids`` (B × T) and, for a causal LM, ``labels`` = the ids; for classification
(B,) class ids. No attention mask (an all-ones or absent mask; a padded batch saves at most one
extra ``B × T × T`` mask shared by all layers).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from asymlora.bench.configs import ASYMLORA_PREFIX, Built, Settings, build
from asymlora.bench.saved import SavedBytes, count_saved
from asymlora.methods import PEFT_BASELINES
from asymlora.models import empty_model
from asymlora.planning.quantized_saves import int8_input_rule

#: The asymlora methods the meta trace reproduces exactly (tests/test_memory_planner.py); a_only and
#: lora save differently on the meta device, so the planner does not offer them.
PLANNED_ASYMLORA = ("b_only",)
#: Planner method -> benchmark configuration (``full`` is built here): one vocabulary with ``train``
#: and ``bench`` (asymlora's methods by their registry names, PEFT's baselines ``peft_*``).
METHODS = {**{m: ASYMLORA_PREFIX + m for m in PLANNED_ASYMLORA}, **{p: p for p in PEFT_BASELINES}, "full": None}


class _FlashSaves(torch.autograd.Function):
    """Shapes-only stand-in for a flash attention kernel: output ``q``-shaped (value width, laid out
    as the CPU kernel lays it out), saves
    ``q, k, v`` as given (grouped-query k and v keep their fewer heads), the output and a float32
    ``B × H × T`` log-sum-exp."""

    @staticmethod
    def forward(ctx, q, k, v):
        # the CPU kernel writes its output as B x T x H x D and returns the B x H x T x D view: the
        # caller's transpose(1, 2).reshape is then a view of the saved output, not a copy
        batch, heads, length = q.shape[:-1]
        out = q.new_empty(batch, length, heads, v.shape[-1]).transpose(1, 2)
        lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


@contextlib.contextmanager
def flash_attention_rule():
    """Inside the block, ``F.scaled_dot_product_attention`` on meta tensors without dropout and
    without a mask saves what a flash kernel saves (see the module docstring)."""
    original = F.scaled_dot_product_attention

    def patched(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if query.device.type == "meta" and dropout_p == 0.0 and attn_mask is None:
            return _FlashSaves.apply(query, key, value)      # with enable_gqa, k and v keep their fewer heads
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)

    F.scaled_dot_product_attention = patched
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


@dataclass
class Traced:
    """One meta trace: the built model (meta tensors) and what one step saved."""

    built: Built
    saved: SavedBytes


def build_method(method: str, model: nn.Module, settings: Settings) -> Built:
    """Apply ``method`` (a key of :data:`METHODS`) to ``model``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if METHODS[method] is not None:
        built = build(METHODS[method], model, settings)
        # PEFT moves AdaLoRA's ``ranknum`` (a frozen Parameter) to the meta device as a new
        # Parameter that requires grad; on a real device it does not, and a division by it then
        # saves no numerator. Restore the real flag.
        for name, parameter in built.model.named_parameters():
            if name.rsplit(".", 2)[-2:-1] == ["ranknum"] or ".ranknum." in name:
                parameter.requires_grad_(False)
        built.trainable = [p for p in built.trainable if p.requires_grad]
        return built
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    trainable = list(model.parameters())
    return Built(model, trainable, [], [], save=lambda folder: folder)


def trace(config, task: str, method: str, settings: Settings, batch: int, length: int,
          dtype: torch.dtype, bits: int | None = None) -> Traced:
    """Build and trace one training step of ``config`` (its own number of layers) on the meta device;
    with ``bits``, the base linears keep for backward what bitsandbytes' layers of that width keep
    (:func:`asymlora.planning.quantized_saves.int8_input_rule`)."""
    model = empty_model(config, task, dtype)
    built = build_method(method, model, settings)
    built.model.train()
    ids = torch.zeros(batch, length, dtype=torch.long, device="meta")
    labels = ids if task == "causal_lm" else torch.zeros(batch, dtype=torch.long, device="meta")

    def step():
        built.model(input_ids=ids, labels=labels).loss.backward()

    with flash_attention_rule(), int8_input_rule(built.model, bits):
        saved = count_saved(built.model, step, built.adapter_modules, built.excluded)
    return Traced(built, saved)
