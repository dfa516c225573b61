"""B-only inside stock PEFT: a ``PeftModel`` whose ``lora_A`` is asymlora's seeded frozen recipe.

:func:`b_only` builds (or extends) an ordinary :class:`peft.PeftModel` with a LoRA adapter and then
sets, in every LoRA layer of that adapter::

    lora_A.weight  (r × d_in)   = Recipe("orthonormal", seed, module name, "A", (r, d_in)).regenerate()
                                  (Haar-random orthonormal rows, A Aᵀ = I_r), requires_grad = False
    lora_B.weight  (d_out × r)  = 0, trained

so PEFT computes ``y = W0 x + (alpha / r) · B (A · drop(x))`` with exactly the frozen A that
:func:`asymlora.inject` draws for the same seed and module name (the module names are those of the
base model, e.g. ``model.layers.0.self_attn.q_proj``). Everything else is PEFT's own: the model
trains in any loop, ``Trainer`` or TRL ``SFTTrainer`` that takes a ``PeftModel``, and
``save_pretrained`` writes a normal PEFT folder (``adapter_config.json`` +
``adapter_model.safetensors``, A materialised) that ``PeftModel.from_pretrained`` or
:func:`asymlora.import_peft` (``freeze="A"``) reads back.

What this path lacks against asymlora's own layer (:class:`asymlora.AdaptedLinear`):

* **the lean backward.** With dropout, PEFT's layer runs ``lora_A(dropout(x))`` through autograd,
  which keeps a ``d_in``-wide dropped copy of ``x`` (and on the CPU the fp32 dropout noise) for every
  adapted module and call; asymlora's ``FrozenAProjection`` keeps only ``u = A · drop(x)`` (r values
  per token) and an integer seed that regenerates the mask in backward.
* **a frozen factor that stays frozen.** Here A is a ``Parameter`` with ``requires_grad = False``;
  PEFT's ``set_adapter`` / ``enable_adapter_layers`` set ``requires_grad = True`` on every LoRA factor
  of the active adapters, which silently makes A trainable again. Call :func:`freeze_lora_A` after
  them. asymlora's A is a buffer that no switch can train.
* **A as a recipe.** The PEFT folder stores A as data (``r × d_in`` numbers per module); asymlora's
  adapter file stores only B and A's recipe with its SHA-256 (half of LoRA's bytes on square layers).
* the dropout masks come from torch's global generator, not from a per-layer seed stream, so a run
  with dropout is not replayable mask for mask; exact merging with bit-for-bit unmerge, and
  combining adapters that share an A by summing their B's, are asymlora's.

Without dropout the two compute the same function and the same gradient of B
(``tests/test_trl_sft.py`` checks B after one step of TRL's ``SFTTrainer`` both ways).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from asymlora.adapters.recipe import Recipe

#: The initialiser of the frozen factor (asymlora's default ``init_A``).
FROZEN_INIT = "orthonormal"


def _lora_layers(peft_model: nn.Module, adapter_name: str) -> dict[str, nn.Module]:
    """``{module name in the base model: PEFT LoraLayer}`` for the layers that hold ``adapter_name``."""
    from peft.tuners.lora import LoraLayer

    base = peft_model.base_model.model
    return {name: module for name, module in base.named_modules()
            if isinstance(module, LoraLayer) and adapter_name in module.lora_A}


def _linear_factor(module: nn.Module, factor: str, adapter_name: str) -> nn.Linear:
    layer = getattr(module, f"lora_{factor}")[adapter_name]
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"PEFT LoRA layer {type(module).__name__} holds a {type(layer).__name__} as lora_{factor}; "
                        f"b_only supports linear (and Conv1D) target modules only")
    return layer


@torch.no_grad()
def apply_frozen_recipe(peft_model: nn.Module, seed: int, adapter_name: str = "default") -> list[str]:
    """Give every LoRA layer of ``adapter_name`` the seeded orthonormal A (frozen) and a zero B.

    Args:
        peft_model (peft.PeftModel): a model with a PEFT LoRA adapter named ``adapter_name``.
        seed (int): the adapter seed; with each module's name it seeds A's draw (as in
            :class:`asymlora.AdapterConfig`).
        adapter_name (str): which PEFT adapter to set.

    Returns:
        list[str]: the module names set (base-model names, sorted as PEFT walks them).

    Raises:
        ValueError: the model has no LoRA layer holding ``adapter_name``.
        TypeError: a LoRA layer's factor is not linear (embedding or convolution targets).
        asymlora.errors.UserError: a module's rank exceeds its input width (an orthonormal A needs
            r <= d_in).
    """
    layers = _lora_layers(peft_model, adapter_name)
    if not layers:
        raise ValueError(f"the model has no PEFT LoRA layer with an adapter named {adapter_name!r}")
    for name, module in layers.items():
        lora_A, lora_B = (_linear_factor(module, f, adapter_name) for f in "AB")
        recipe = Recipe.build(FROZEN_INIT, seed, name, "A", tuple(lora_A.weight.shape))
        lora_A.weight.copy_(recipe.regenerate().to(lora_A.weight.dtype))
        lora_B.weight.zero_()
        lora_A.weight.requires_grad_(False)
        lora_B.weight.requires_grad_(True)
    return list(layers)


def freeze_lora_A(peft_model: nn.Module, adapter_name: str = "default") -> int:
    """Set ``requires_grad = False`` on every ``lora_A`` of ``adapter_name`` again (after PEFT's
    ``set_adapter`` or ``enable_adapter_layers`` turned it on).

    Args:
        peft_model (peft.PeftModel): the model.
        adapter_name (str): the PEFT adapter whose ``lora_A`` to freeze.

    Returns:
        int: how many ``lora_A`` weights were frozen.
    """
    layers = _lora_layers(peft_model, adapter_name)
    for module in layers.values():
        _linear_factor(module, "A", adapter_name).weight.requires_grad_(False)
    return len(layers)


def b_only_config(rank: int = 8, alpha: float = 16.0, target_modules: Any = None, dropout: float = 0.0,
                  **lora_options: Any):
    """The ``peft.LoraConfig`` that :func:`b_only` uses (B starts at zero; A is set afterwards).

    Args:
        rank (int): r.
        alpha (float): ``lora_alpha`` (scaling ``alpha / r``).
        target_modules: PEFT's ``target_modules`` (names, a regex string, ``"all-linear"``, or
            None for PEFT's defaults of the architecture).
        dropout (float): ``lora_dropout``.
        **lora_options: any other ``LoraConfig`` field (``task_type``, ``use_rslora``,
            ``modules_to_save``, ...).

    Returns:
        peft.LoraConfig: the configuration.
    """
    from peft import LoraConfig

    return LoraConfig(r=int(rank), lora_alpha=float(alpha), target_modules=target_modules, lora_dropout=float(dropout),
                      bias="none", init_lora_weights=True, **lora_options)


def b_only(model_or_peft_model: nn.Module, rank: int = 8, seed: int = 0, target_modules: Any = None,
           alpha: float = 16.0, dropout: float = 0.0, adapter_name: str = "default", **lora_options: Any):
    """A stock ``peft.PeftModel`` training only ``lora_B``, with ``lora_A`` asymlora's frozen recipe.

    Args:
        model_or_peft_model (nn.Module): a base model (wrapped with ``peft.get_peft_model``) or a
            ``PeftModel`` (the adapter is added to it under ``adapter_name`` and made active).
        rank (int): r.
        seed (int): the adapter seed: the same seed and module name give the same A as
            ``asymlora.inject(model, AdapterConfig(seed=seed, ...))``.
        target_modules: PEFT's ``target_modules`` (see :func:`b_only_config`).
        alpha (float): ``lora_alpha``; PEFT scales by ``alpha / r``.
        dropout (float): ``lora_dropout`` (PEFT's dropout; see the module docstring for its cost).
        adapter_name (str): the PEFT adapter name.
        **lora_options: other ``LoraConfig`` fields.

    Returns:
        peft.PeftModel: the model; ``lora_A`` weights frozen, ``lora_B`` zero and trainable.

    Raises:
        ValueError: ``adapter_name`` already exists on the ``PeftModel``, or nothing was targeted.
        asymlora.errors.UserError: the rank exceeds a targeted module's input width.
    """
    from peft import PeftModel, get_peft_model

    config = b_only_config(rank, alpha, target_modules, dropout, **lora_options)
    if isinstance(model_or_peft_model, PeftModel):
        if adapter_name in model_or_peft_model.peft_config:
            raise ValueError(f"the PeftModel already has an adapter named {adapter_name!r}; pass another "
                             f"adapter_name")
        model = model_or_peft_model
        model.add_adapter(adapter_name, config)
        model.set_adapter(adapter_name)
    else:
        model = get_peft_model(model_or_peft_model, config, adapter_name=adapter_name)
    apply_frozen_recipe(model, seed, adapter_name)
    return model
