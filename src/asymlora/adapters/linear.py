"""The adapted linear layer: a frozen weight plus an asymmetric low-rank update.

Data flow (PAPER.md section 1; ``s = alpha / r``)::

            x (…, d_in) ───────────────► base: W0 x + b ──────────────┐
             │                                                        (+) ──► y (…, d_out)
             └─► drop(x) ──► A (r × d_in) ──► B (d_out × r) ──► × s ──┘
                             "reads"          "writes"

    y = W0 x + b + s · B (A · drop(x))

Exactly one of three trainings (``AdapterConfig.train``):

* ``"B"``  — the paper's method ``\\hat B_0 A_rand``: A is a frozen buffer (random orthonormal
  rows by default), B a parameter initialised at zero. Half of LoRA's parameters for square layers.
* ``"A"``  — ``B_rand \\hat A_0``: B is frozen (orthonormal columns), A trained from zero.
* ``"AB"`` — LoRA, ``\\hat B_0 \\hat A_km``: both trained.

A frozen factor is a registered **buffer**, never a ``Parameter``: no optimiser, ``requires_grad``
toggle or adapter switch can make it trainable. It is regenerated from
``(seed, module name, init, shape)`` (:mod:`asymlora.adapters.init`).

Memory-lean backward with A frozen (:class:`FrozenAProjection`). With ``z = s · B u``,
``u = A · drop(x)`` (r values per token) and upstream gradient ``g = ∂L/∂z``::

    ∂L/∂B = s · gᵀ u                       (d_out × r: needs only u)
    ∂L/∂x = drop'( s · (g B) A )           (needs the dropout mask, not x)

so the function saves ``u`` and an integer seed that regenerates the mask
(:mod:`asymlora.adapters.dropout`), never a ``d_in``-wide tensor. PEFT's layer saves the dropped
input (``d_in`` wide) and, on the CPU, the dropout noise (``d_in`` wide, fp32) for every call.

Merging is exact and reversible: the delta ``s · B A`` is computed in fp32 and cast once; the few
entries where ``(merged - delta)`` would not round back to the original weight are remembered, so
:meth:`AdaptedLinear.unmerge` restores ``W0`` bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.dropout import draw_seed, keep_scale, project_dropped, zero_dropped
from asymlora.adapters.init import FactorRequest, initialise, make_generator


# ---------------------------------------------------------------------------- linear layouts
def weight_layout(module: nn.Module) -> str | None:
    """``"out_in"`` for ``nn.Linear`` (weight d_out × d_in), ``"in_out"`` for transformers'
    ``Conv1D`` (GPT-2 style, weight d_in × d_out, ``y = x W + b``), None for anything else."""
    if isinstance(module, nn.Linear):
        return "out_in"
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf") and getattr(module, "weight", None) is not None \
            and module.weight.dim() == 2:
        return "in_out"
    return None


def dense_weight(module: nn.Module) -> torch.Tensor:
    """The base weight as a (d_out × d_in) view, whatever the layout."""
    return module.weight if weight_layout(module) == "out_in" else module.weight.t()


# ---------------------------------------------------------------------------- autograd function
class FrozenAProjection(torch.autograd.Function):
    """``s · B (A · drop(x))`` with A frozen, saving only ``u = A · drop(x)`` and a mask seed.

    Shapes: x (…, d_in), A (r, d_in), B (d_out, r) -> (…, d_out). ``p`` is the dropout
    probability, ``seed`` selects the mask (:func:`asymlora.adapters.dropout.drop_mask`).
    A receives no gradient (it is frozen by construction). With ``c = 1 / (1 - p)`` and ``m``
    the drop mask::

        forward:   u = c · A (x with m zeroed)       (on the CPU: c · (A x − A x_m), x_m sparse)
                   y = (s · B) u                     (s folded into the small factor)
        backward:  ∂L/∂B = s · gᵀ u
                   ∂L/∂x = ((g (s · B)) · c) A with m zeroed (in place)

    Every scale is applied to an r-wide tensor or to a factor, never to a d-wide one, and no
    d_in-wide copy of x is made in forward (:func:`~asymlora.adapters.dropout.project_dropped`).
    """

    @staticmethod
    def forward(ctx, x, A, B, scaling: float, p: float, seed: int):
        if p > 0:
            flat = x.reshape(-1, x.shape[-1])
            projected = project_dropped(flat, A, seed, p).mul_(keep_scale(p))
            projected = projected.view(*x.shape[:-1], A.shape[0])
        else:
            projected = F.linear(x, A)
        ctx.save_for_backward(projected, A, B)
        ctx.scaling, ctx.p, ctx.seed = scaling, p, seed
        return F.linear(projected, B * scaling)

    @staticmethod
    def backward(ctx, grad_out):
        projected, A, B = ctx.saved_tensors
        grad_x = grad_B = None
        if ctx.needs_input_grad[2]:
            grad_B = grad_out.reshape(-1, grad_out.shape[-1]).t() @ projected.reshape(-1, projected.shape[-1])
            grad_B = grad_B * ctx.scaling
        if ctx.needs_input_grad[0]:
            factor = ctx.scaling * (keep_scale(ctx.p) if ctx.p > 0 else 1.0)
            grad_x = F.linear(grad_out, B.t() * factor) @ A
            if ctx.p > 0:
                grad_x = zero_dropped(grad_x, ctx.seed, ctx.p, inplace=True)
        return grad_x, None, grad_B, None, None, None


# ---------------------------------------------------------------------------- the layer
class AdaptedLinear(nn.Module):
    """A linear layer (``nn.Linear`` or ``Conv1D``) with an asymmetric low-rank adapter.

    Attributes: ``base`` (the wrapped layer, frozen), ``A`` (r × d_in), ``B`` (d_out × r) — each a
    Parameter if trained, else a buffer — ``rank``, ``scaling``, ``dropout``, ``train``,
    ``merged``, ``active``, ``name``, ``recipes`` (``{factor: recipe}`` for frozen factors).
    """

    def __init__(self, base: nn.Module, name: str, config: AdapterConfig):
        super().__init__()
        if weight_layout(base) is None:
            raise TypeError(f"module {name!r} is a {type(base).__name__}, not a linear layer")
        self.base = base
        self.name = name
        weight = dense_weight(base)
        d_out, d_in = weight.shape
        self.rank = config.rank_for(name)
        self.scaling = config.scaling(self.rank)
        self.dropout = config.dropout
        self.train_mode = config.train
        self.merged = False
        self.active = True
        needs_weight = "svd" in (config.init_A, config.init_B)
        cpu_weight = weight.detach().to("cpu", torch.float32) if needs_weight else None
        shapes = {"A": (self.rank, d_in), "B": (d_out, self.rank)}
        inits = {"A": config.init_A, "B": config.init_B}
        self.recipes: dict[str, dict] = {}
        for factor in "AB":
            request = FactorRequest(factor, shapes[factor], make_generator(config.seed, name, factor),
                                    cpu_weight, name)
            tensor = initialise(inits[factor], request).to(weight.device)
            if factor in config.train:
                self.register_parameter(factor, nn.Parameter(tensor))
            else:
                self.register_buffer(factor, tensor)
                self.recipes[factor] = {"init": inits[factor], "seed": config.seed, "module": name,
                                        "factor": factor, "shape": list(shapes[factor]), "dtype": "float32"}
        self.register_buffer("_unmerge_index", None, persistent=False)
        self.register_buffer("_unmerge_value", None, persistent=False)

    # -------------------------------------------------------------- protocol
    @property
    def frozen_factors(self) -> tuple[str, ...]:
        """The factors that are buffers, e.g. ``("A",)`` (with or without a recipe)."""
        return tuple(f for f in "AB" if f not in self.train_mode)

    def adapter_params(self) -> dict[str, nn.Parameter]:
        """The trainable factors, keyed "A" / "B"."""
        return {f: getattr(self, f) for f in self.train_mode}

    @property
    def in_features(self) -> int:
        return self.A.shape[1]

    @property
    def out_features(self) -> int:
        return self.B.shape[0]

    # -------------------------------------------------------------- forward
    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """``s · B (A · drop(x))`` for x (…, d_in), computed in the factors' dtype."""
        x = x.to(self.A.dtype)
        dropping = self.training and self.dropout > 0
        if self.train_mode == "B" and dropping and torch.is_grad_enabled():
            return FrozenAProjection.apply(x, self.A, self.B, self.scaling, self.dropout, draw_seed())
        if dropping:
            x = F.dropout(x, self.dropout, training=True)
        return F.linear(F.linear(x, self.A), self.B) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base(x)
        if self.merged or not self.active:
            return result
        return result + self.delta(x).to(result.dtype)

    # -------------------------------------------------------------- merging
    def delta_weight(self) -> torch.Tensor:
        """``s · B A`` in fp32, shape (d_out, d_in)."""
        return (self.B.detach().float() @ self.A.detach().float()) * self.scaling

    def _delta_in_layout(self) -> torch.Tensor:
        delta = self.delta_weight()
        return delta if weight_layout(self.base) == "out_in" else delta.t()

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the adapter into the base weight (exactly reversible by :meth:`unmerge`)."""
        if self.merged:
            return
        weight = self.base.weight
        delta = self._delta_in_layout().to(weight.device)
        merged = (weight.float() + delta).to(weight.dtype)
        restored = (merged.float() - delta).to(weight.dtype)
        wrong = (restored != weight).reshape(-1).nonzero().squeeze(1)
        self._unmerge_index = wrong
        self._unmerge_value = weight.reshape(-1)[wrong].clone()
        weight.copy_(merged)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the pretrained weight bit for bit from the factors and the stored corrections."""
        if not self.merged:
            return
        weight = self.base.weight
        restored = (weight.float() - self._delta_in_layout().to(weight.device)).to(weight.dtype)
        restored.reshape(-1)[self._unmerge_index] = self._unmerge_value
        weight.copy_(restored)
        self._unmerge_index = self._unmerge_value = None
        self.merged = False

    def extra_repr(self) -> str:
        frozen = ",".join(self.frozen_factors) or "none"
        return (f"name={self.name!r}, d_in={self.in_features}, d_out={self.out_features}, rank={self.rank}, "
                f"scaling={self.scaling:g}, dropout={self.dropout:g}, trained={self.train_mode}, frozen={frozen}")
