"""The paper's methods by name: a registry ``name -> MethodSpec`` and :func:`prepare`.

Notation (docs/paper.md §2): a hat marks a TRAINED factor, no hat a FROZEN one; the subscript
is the initialisation (``0`` zero, ``rand`` random orthonormal, ``km`` Kaiming-uniform,
``V``/``U`` top-r right/left singular vectors of the pretrained weight ``W0``). The adapter is
``W = W0 + s · B A`` with ``A: r × d_in`` and ``B: d_out × r``.

=================  ================================  =====  =====================================
name               paper label                       train  init A / init B
=================  ================================  =====  =====================================
lora               \\hat B_0 \\hat A_km                AB     kaiming / zero   (PEFT's LoRA)
b_only             \\hat B_0 A_rand   (THE method)     B      orthonormal / zero
a_only             B_rand \\hat A_0                   A      zero / orthonormal
b_only_km          \\hat B_0 A_km     (LoRA-FA)        B      kaiming / zero
b_only_svd         \\hat B_0 A_V                      B      svd / zero
a_only_svd         B_U \\hat A_0                      A      zero / svd
lora_svd_A         \\hat B_0 \\hat A_V                 AB     svd / zero
lora_rand_A        \\hat B_0 \\hat A_rand              AB     orthonormal / zero
lora_svd_B         \\hat B_U \\hat A_0                 AB     zero / svd
lora_rand_B        \\hat B_rand \\hat A_0              AB     zero / orthonormal
a_only_km          B_km \\hat A_0                     A      zero / kaiming   (Kaiming-B, frozen)
lora_km_B          \\hat B_km \\hat A_0                AB     zero / kaiming   (Kaiming-B, trained)
b_only_banded      \\hat B_0 A_band                   B      banded / zero    (rebuttal Table 1.e)
b_only_dep_rows    \\hat B_0 A_dep-rows               B      dependent_rows / zero
b_only_dep_cols    \\hat B_0 A_dep-cols               B      dependent_cols / zero
swapped            \\hat B_rand \\hat A_0              AB     zero / orthonormal  (Fig. 1 analysis)
adalora            AdaLoRA                           -      PEFT's AdaLoRA, target_r = rank
full               Full FT                           -      every parameter trained
linear_probe       Linear probe                      -      only the classification head
=================  ================================  =====  =====================================

Names are one vocabulary across ``train``, ``bench`` and ``memory``: asymlora's methods by the names
above (``lora`` is always asymlora's LoRA), PEFT's baselines prefixed ``peft_`` (``peft_lora``,
``peft_lora_fa``, ``peft_adalora``: the benchmark and the memory planner build all three; ``train``
runs AdaLoRA, whose registry name stays ``adalora`` because it is part of run ids and fingerprints;
``peft_adalora`` is an alias of it, :data:`ALIASES`).

``swapped`` and ``lora_rand_B`` are the same recipe (A zero, B random orthonormal, both trained);
both names exist because the paper uses the first in its Figure 1 analysis and the second in its
initialisation ablation.

Every adapter method also trains the model's classification head (``head_modules``), as the
paper does for GLUE; the head's parameters count as trainable.

AdaLoRA (``kind="adalora"``) is PEFT's implementation with the paper's "r=8" read as
``target_r = rank`` and ``init_r = ceil(1.5 · rank)`` (12 for r=8, the AdaLoRA paper's GLUE
setting); ``tinit = 10%``, ``tfinal = 30%`` of the total steps, ``deltaT = max(1, 1% of total)``.
Its rank budget only adapts if ``update_and_allocate(step)`` is called after every optimiser
step — :class:`asymlora.training.callbacks.AdaLoRACallback` does that (the authors' code never
did, so their AdaLoRA ranks never changed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from torch import nn

from asymlora.adapters.config import AdapterConfig, closest, is_rank
from asymlora.adapters.inject import inject


@dataclass(frozen=True)
class MethodSpec:
    """One method of the paper.

    name        registry key (CLI ``--method``).
    label       the paper's notation (LaTeX, for tables), e.g. ``r"$\\hat B_0 A_{rand}$"``.
    kind        ``"adapter"`` (asymlora's AdaptedLinear), ``"adalora"`` (PEFT), ``"full"`` or
                ``"linear_probe"``.
    train       the trained factor(s) for ``kind="adapter"``: "A", "B" or "AB".
    init_A      initialiser of A (:data:`asymlora.adapters.init.INITIALISERS`).
    init_B      initialiser of B.
    uses_rank   whether ``rank`` means anything (not for full fine-tuning or linear probing).
    description one line for ``--help`` and docs.
    """

    name: str
    label: str
    kind: str
    train: str | None = None
    init_A: str | None = None
    init_B: str | None = None
    uses_rank: bool = True
    description: str = ""

    @property
    def trained_factors(self) -> str:
        return self.train or ""

    @property
    def frozen_factors(self) -> str:
        return "".join(f for f in "AB" if self.train and f not in self.train)

    def check_rank(self, rank, option: str = "rank") -> None:
        """Refuse a rank this method cannot use (the one rank rule, :func:`asymlora.adapters.config.is_rank`).

        Args:
            rank: the requested adapter rank r; ignored by rankless methods (``uses_rank`` False).
            option: how the message names it (``"--rank"`` for the command line).

        Raises:
            ValueError: ``rank`` is not an integer >= 1 and the method uses a rank.
        """
        if self.uses_rank and not is_rank(rank):
            raise ValueError(f"{option} must be an integer >= 1 for method {self.name!r} (got {rank!r})")

    def adapter_config(self, rank: int, alpha: float = 16.0, dropout: float = 0.0, targets=("query", "value"),
                       seed: int = 0, head_modules: Iterable[str] = (), mask_stream: str | None = None) -> AdapterConfig:
        """The :class:`AdapterConfig` of an adapter method (``kind == "adapter"`` only; ``mask_stream``
        None: the default dropout-mask version)."""
        if self.kind != "adapter":
            raise ValueError(f"method {self.name!r} is not an asymlora adapter method")
        stream = {} if mask_stream is None else {"mask_stream": mask_stream}
        return AdapterConfig(rank=int(rank), alpha=float(alpha), dropout=float(dropout), train=self.train,
                             init_A=self.init_A, init_B=self.init_B,
                             targets=list(targets) if not isinstance(targets, str) else targets,
                             seed=int(seed), modules_to_save=list(head_modules), **stream)


METHODS: dict[str, MethodSpec] = {}


def _adapter(name: str, label: str, train: str, init_A: str, init_B: str, description: str) -> None:
    METHODS[name] = MethodSpec(name, label, "adapter", train, init_A, init_B, True, description)


_adapter("lora", r"LoRA $\hat B_0 \hat A_{km}$", "AB", "kaiming", "zero",
         "LoRA: A Kaiming-uniform, B zero, both trained")
_adapter("b_only", r"$\hat B_0 A_{rand}$", "B", "orthonormal", "zero",
         "the paper's method: A frozen random orthonormal, B trained from zero")
_adapter("a_only", r"$B_{rand} \hat A_0$", "A", "zero", "orthonormal",
         "B frozen random orthonormal (columns), A trained from zero")
_adapter("b_only_km", r"$\hat B_0 A_{km}$", "B", "kaiming", "zero",
         "LoRA-FA: A frozen Kaiming-uniform, B trained from zero")
_adapter("b_only_svd", r"$\hat B_0 A_V$", "B", "svd", "zero",
         "A frozen at the top-r right singular vectors of W0, B trained")
_adapter("a_only_svd", r"$B_U \hat A_0$", "A", "zero", "svd",
         "B frozen at the top-r left singular vectors of W0, A trained")
_adapter("lora_svd_A", r"$\hat B_0 \hat A_V$", "AB", "svd", "zero",
         "both trained; A starts at W0's top-r right singular vectors, B at zero")
_adapter("lora_rand_A", r"$\hat B_0 \hat A_{rand}$", "AB", "orthonormal", "zero",
         "both trained; A starts random orthonormal, B at zero")
_adapter("lora_svd_B", r"$\hat B_U \hat A_0$", "AB", "zero", "svd",
         "both trained; B starts at W0's top-r left singular vectors, A at zero")
_adapter("lora_rand_B", r"$\hat B_{rand} \hat A_0$", "AB", "zero", "orthonormal",
         "both trained; B starts random orthonormal, A at zero")
_adapter("a_only_km", r"$B_{km} \hat A_0$", "A", "zero", "kaiming",
         "Kaiming-B ablation: B frozen Kaiming-uniform, A trained from zero")
_adapter("lora_km_B", r"$\hat B_{km} \hat A_0$", "AB", "zero", "kaiming",
         "Kaiming-B ablation: B starts Kaiming-uniform, A at zero, both trained")
_adapter("b_only_banded", r"$\hat B_0 A_{band}$", "B", "banded", "zero",
         "rebuttal Table 1.e: A frozen banded (bandwidth r), B trained")
_adapter("b_only_dep_rows", r"$\hat B_0 A_{dep-rows}$", "B", "dependent_rows", "zero",
         "rebuttal Table 1.e: A frozen with linearly dependent rows (rank one), B trained")
_adapter("b_only_dep_cols", r"$\hat B_0 A_{dep-cols}$", "B", "dependent_cols", "zero",
         "rebuttal Table 1.e: A frozen with linearly dependent columns (rank one), B trained")
_adapter("swapped", r"swapped $\hat B_{rand} \hat A_0$", "AB", "zero", "orthonormal",
         "Figure 1 analysis: A zero, B random orthonormal, both trained")
METHODS["adalora"] = MethodSpec("adalora", "AdaLoRA", "adalora", None, None, None, True,
                                "PEFT's AdaLoRA (target_r = rank, init_r = 1.5·rank), ranks reallocated every step")
METHODS["full"] = MethodSpec("full", "Full FT", "full", None, None, None, False,
                             "full fine-tuning: every parameter trained")
METHODS["linear_probe"] = MethodSpec("linear_probe", "Linear probe", "linear_probe", None, None, None, False,
                                     "linear probing: only the classification head is trained")


#: Other names of registered methods (the PEFT vocabulary shared with bench and memory).
ALIASES: dict[str, str] = {"peft_adalora": "adalora"}

#: PEFT's baselines by their shared names (bench configurations, memory planner methods).
PEFT_BASELINES = ("peft_lora", "peft_lora_fa", "peft_adalora")
#: The PEFT baselines ``train`` does not run, and the registered method with their recipe.
PEFT_TWINS = {"peft_lora": "lora", "peft_lora_fa": "b_only_km"}


def canonical_name(name: str) -> str:
    """The registry name behind an alias (``peft_adalora`` -> ``adalora``); any other name unchanged.

    Args:
        name: a ``--method`` value as typed.

    Returns:
        The name a run records (its run id and fingerprint use it).
    """
    return ALIASES.get(str(name).strip().replace("-", "_").lower(), name)


def plain_label(label: str) -> str:
    """A paper label in plain Unicode text for terminals and markdown: ``$\\hat B_0 A_{rand}$`` ->
    ``B̂₀ A_rand`` (a hat becomes a combining circumflex, ``_0`` a subscript zero, braces and ``$`` go)."""
    import re

    text = label.replace("$", "")
    text = re.sub(r"\\hat\s*\{?([A-Za-z])\}?", "\\1\u0302", text)
    text = re.sub(r"_\{([^}]*)\}", r"_\1", text)
    return text.replace("_0", "\u2080")


def get_method(name: str) -> MethodSpec:
    """The registered method called ``name`` (the paper's methods: see the module docstring).

    Args:
        name (str): a registry name, e.g. ``"b_only"``, ``"lora"``, ``"a_only"``; dashes for
            underscores and any letter case are accepted (``"B-only"`` is ``"b_only"``).

    Returns:
        MethodSpec: the method's label, kind, trained factor(s) and initialisers.

    Raises:
        ValueError: an unknown name (the message suggests the closest known one and lists them all).
    """
    key = canonical_name(str(name).strip().replace("-", "_"))
    if key in METHODS:
        return METHODS[key]
    folded = {k.lower(): k for k in METHODS}
    if key.lower() in folded:
        return METHODS[folded[key.lower()]]
    if key in PEFT_TWINS:
        raise ValueError(f"method {name!r} is PEFT's, built by bench and memory; train its asymlora twin "
                         f"{PEFT_TWINS[key]!r} (the same recipe)")
    raise ValueError(f"unknown method {name!r}{closest(key, [*METHODS, *ALIASES])}; known methods: "
                     f"{', '.join(METHODS)}")


def _suffix_match(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def head_parameters(model: nn.Module, head_modules: Iterable[str]) -> list[nn.Parameter]:
    """The parameters of every module whose dotted name ends with one of ``head_modules``."""
    heads = list(head_modules)
    found = {}
    for name, module in model.named_modules():
        if name and any(_suffix_match(name, h) for h in heads):
            for p in module.parameters():
                found[id(p)] = p
    return list(found.values())


def adalora_schedule(rank: int, total_steps: int) -> dict:
    """PEFT AdaLoraConfig rank-schedule fields for ``target_r = rank`` over ``total_steps``.

    ``init_r = ceil(1.5 r)``; the budget stays at ``init_r`` for the first ``tinit`` steps, shrinks
    cubically to ``target_r`` until ``total - tfinal``, then stays; masks are updated every
    ``deltaT`` steps. PEFT requires ``tinit < total_step - tfinal``.
    """
    if total_steps is None or total_steps < 3:
        raise ValueError(f"AdaLoRA needs total_steps >= 3 (got {total_steps}); its rank schedule depends on it")
    tinit = max(0, int(0.1 * total_steps))
    tfinal = max(1, int(0.3 * total_steps))
    if tinit >= total_steps - tfinal:
        tinit = 0
    return {"init_r": int(math.ceil(1.5 * rank)), "target_r": int(rank), "tinit": tinit, "tfinal": tfinal,
            "deltaT": max(1, total_steps // 100), "total_step": int(total_steps)}


def _prepare_adapter(spec, model, rank, alpha, dropout, targets, seed, head_modules, total_steps, mask_stream=None):
    return inject(model, spec.adapter_config(rank, alpha, dropout, targets, seed, head_modules, mask_stream))


def _prepare_adalora(spec, model, rank, alpha, dropout, targets, seed, head_modules, total_steps):
    import torch
    from peft import AdaLoraConfig, get_peft_model

    config = AdaLoraConfig(lora_alpha=float(alpha), lora_dropout=float(dropout),
                           target_modules=list(targets) if not isinstance(targets, str) else targets,
                           modules_to_save=list(head_modules) or None, **adalora_schedule(rank, total_steps))
    with torch.random.fork_rng():  # PEFT draws its factors from the global RNG: seed it locally
        torch.manual_seed(int(seed))
        return get_peft_model(model, config)


def _prepare_full(spec, model, rank, alpha, dropout, targets, seed, head_modules, total_steps):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _prepare_linear_probe(spec, model, rank, alpha, dropout, targets, seed, head_modules, total_steps):
    head = head_parameters(model, head_modules)
    if not head:
        raise ValueError(f"linear_probe: no module named {list(head_modules)} in the model (the classification head)")
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head:
        p.requires_grad_(True)
    return model


PREPARERS = {"adapter": _prepare_adapter, "adalora": _prepare_adalora, "full": _prepare_full,
             "linear_probe": _prepare_linear_probe}


def prepare(model: nn.Module, method: str | MethodSpec, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
            targets=("query", "value"), seed: int = 0, head_modules: Iterable[str] = ("classifier",),
            total_steps: int | None = None, mask_stream: str | None = None) -> nn.Module:
    """Make ``model`` ready to train with ``method``; returns the model to train.

    An adapter method injects ``W0 + s · B A`` (``A: r × d_in``, ``B: d_out × r``, ``s = alpha / r``)
    into every target with the method's trained factor(s) and initialisers (:func:`asymlora.inject`);
    ``adalora`` wraps the model in PEFT's AdaLoRA; ``full`` trains every parameter; ``linear_probe``
    only the head.

    Args:
        model (nn.Module): a freshly loaded base model (e.g. ``AutoModelForSequenceClassification``).
        method (str | MethodSpec): a registry name (:func:`get_method`) or a spec.
        rank (int): adapter rank r (>= 1); ignored by full / linear_probe.
        alpha (float): scaling numerator (s = alpha / r); ignored by full / linear_probe.
        dropout (float): adapter input dropout.
        targets (Sequence[str] | str): module-name suffixes to adapt (``["query", "value"]`` for
            RoBERTa), a ``"re:<regex>"`` or ``"all-linear"``.
        seed (int): adapter seed: draws every frozen / initial factor.
        head_modules (Iterable[str]): suffixes of the task head, kept trainable by every method.
        total_steps (int | None): optimiser steps of the run; required by AdaLoRA's rank schedule.
        mask_stream (str | None): an asymlora adapter's dropout-mask version (None: the default).

    Returns:
        nn.Module: the same object for asymlora methods, full and linear_probe, and a PEFT
        ``PeftModel`` wrapping it for adalora.

    Raises:
        ValueError: an unknown method, a rank that is not an integer >= 1 for a method that uses
            one, AdaLoRA without ``total_steps >= 3``, linear_probe without a head module, or any
            error of :func:`asymlora.inject` (targets that match nothing, …).
    """
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    spec.check_rank(rank)
    extra = {"mask_stream": mask_stream} if mask_stream is not None and spec.kind == "adapter" else {}
    return PREPARERS[spec.kind](spec, model, rank, alpha, dropout, targets, seed, list(head_modules), total_steps,
                                **extra)
