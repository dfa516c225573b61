"""The adapted linear layer: a frozen weight plus an asymmetric low-rank update.

Data flow (``s = alpha / r``)::

            x (…, d_in) ───────────────► base: W0 x + b ──────────────┐
             │                                                        (+) ──► y (…, d_out)
             └─► drop(x) ──► A (r × d_in) ──► B (d_out × r) ──► × s ──┘
                             "reads"          "writes"

    y = W0 x + b + s · B (A · drop(x))

Exactly one of three trainings (``AdapterConfig.train``):

* ``"B"``  — A is a frozen buffer (random orthonormal rows by default), B a parameter
  initialised at zero. Half of LoRA's parameters for square layers.
* ``"A"``  — B is frozen (orthonormal columns), A trained from zero.
* ``"AB"`` — LoRA: both trained.

A frozen factor is a registered **buffer**, never a ``Parameter``: no optimiser, ``requires_grad``
toggle or adapter switch can make it trainable. Every factor is drawn from its
:class:`~asymlora.adapters.recipe.Recipe` ``(init, seed, module name, factor, shape)``; the
frozen factors' recipes are kept in ``recipes``.

Memory-lean backward with A frozen (:class:`FrozenAProjection`). With ``z = s · B u``,
``u = A · drop(x)`` (r values per token) and upstream gradient ``g = ∂L/∂z``::

    ∂L/∂B = s · gᵀ u                       (d_out × r: needs only u)
    ∂L/∂x = drop'( s · (g B) A )           (needs the dropout mask, not x)

so the function saves ``u`` and an integer seed that regenerates the mask
(:mod:`asymlora.adapters.dropout`), never a ``d_in``-wide tensor — except on small CPU inputs
(at most ``MASK_POLICY.saved_max_elements`` elements), where regenerating costs more than it
saves and the mask is kept bit-packed instead (``numel / 8`` bytes; the same mask either way).
PEFT's layer saves the dropped input (``d_in`` wide) and, on the CPU, the dropout noise
(``d_in`` wide, fp32) for every call.
With mask stream ``"v2"`` (the default, :class:`HashedFrozenAProjection`) the mask is
:func:`~asymlora.adapters.dropout.hashed_drop_mask` of two int64 keys (applied by
:func:`~asymlora.adapters.dropout.hashed_zero`: in eager CPU code one C loop), regenerated in
backward (small eager CPU inputs keep it bit-packed instead where that loop is unavailable:
:func:`~asymlora.adapters.dropout.v2_keeps_mask`), and the
whole layer (counter update included) is plain tensor code that ``torch.compile`` traces without
a graph break; ``"v1"`` is the path below, kept for runs and adapters made with it.
The seeds come from the layer's own :class:`~asymlora.adapters.mask_stream.MaskStream`, never
from torch's global generator; every training path with dropout uses them (so a forward run
without grad and its recomputation under activation checkpointing draw the same mask).

Merging is exact and reversible: the delta ``s · B A`` is computed in fp32 and cast once; the few
entries where ``(merged - delta)`` would not round back to the original weight are remembered
(int32 positions and their values, or a copy of the whole weight when that is smaller), so
:meth:`AdaptedLinear.unmerge` restores ``W0`` bit for bit. ``merge`` records the version counters
of the trained factors and of the base weight; ``unmerge`` refuses when either changed since,
and a backward through a merged layer whose factors require grad raises (the merged layer
computes without the factors, so they would silently get no gradient).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.dropout import (drop_mask, hashed_drop_mask, hashed_zero, keep_scale, mask_path_for,
                                       pack_mask, project_dropped, unpack_mask, v2_keeps_mask, zero_dropped)
from asymlora.adapters.init import factor_seed
from asymlora.adapters.mask_stream import CounterMaskStream, MaskStream, split_base
from asymlora.adapters.quantized import quantized_kind, refuse_quantized_merge
from asymlora.adapters.recipe import Recipe


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
    """The base weight as a (d_out × d_in) view, whatever the layout; for a quantized layer
    (:mod:`asymlora.adapters.quantized`) a dequantised fp32 copy."""
    kind = quantized_kind(module)
    if kind is not None:
        return kind.dequantize(module)
    return module.weight if weight_layout(module) == "out_in" else module.weight.t()


# ---------------------------------------------------------------------------- autograd function
def b_gradient(grad_out: torch.Tensor, projected: torch.Tensor, scaling: float) -> torch.Tensor:
    """``∂L/∂B = s · gᵀ u``: g (…, d_out), u (…, r) -> (d_out, r)."""
    grad_B = grad_out.reshape(-1, grad_out.shape[-1]).t() @ projected.reshape(-1, projected.shape[-1])
    return grad_B * scaling


def in_factor_dtype(factor: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tensors`` cast to the trained factor's dtype for backward (no copy when they match).

    Under autocast (bf16 on the CPU, fp16 on a GPU) the forward's ``u`` and the upstream gradient
    arrive in the low precision while B stays fp32: the backward's products then run in B's dtype,
    ∂L/∂B comes out in B's dtype and ∂L/∂x is cast back to x's.
    """
    return tuple(t.to(factor.dtype) for t in tensors)


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

    Every scale is applied to an r-wide tensor or to a factor, never to a d-wide one. On the
    ``"regenerated"`` path (:func:`~asymlora.adapters.dropout.mask_path_for`) no d_in-wide copy of
    x is made in forward (:func:`~asymlora.adapters.dropout.project_dropped`) and the mask is
    regenerated in backward; on the ``"saved"`` path (small CPU inputs) x is masked densely and
    the mask kept as bits (:func:`~asymlora.adapters.dropout.pack_mask`).
    """

    @staticmethod
    def forward(ctx, x, A, B, scaling: float, p: float, seed: int):
        packed = None
        if p > 0:
            flat = x.reshape(-1, x.shape[-1])
            if mask_path_for(flat.numel(), flat.device) == "saved":
                mask = drop_mask(seed, flat.shape, p, flat.device)
                projected = F.linear(flat.masked_fill(mask, 0), A).mul_(keep_scale(p))
                packed = pack_mask(mask)
            else:
                projected = project_dropped(flat, A, seed, p).mul_(keep_scale(p))
            projected = projected.view(*x.shape[:-1], A.shape[0])
        else:
            projected = F.linear(x, A)
        ctx.save_for_backward(projected, A, B, packed)
        ctx.scaling, ctx.p, ctx.seed, ctx.x_dtype = scaling, p, seed, x.dtype
        return F.linear(projected, B * scaling)

    @staticmethod
    def backward(ctx, grad_out):
        projected, A, B, packed = ctx.saved_tensors
        grad_out, projected = in_factor_dtype(B, grad_out, projected)
        grad_x = grad_B = None
        if ctx.needs_input_grad[2]:
            grad_B = b_gradient(grad_out, projected, ctx.scaling)
        if ctx.needs_input_grad[0]:
            factor = ctx.scaling * (keep_scale(ctx.p) if ctx.p > 0 else 1.0)
            grad_x = F.linear(grad_out, B.t() * factor) @ A
            if packed is not None:
                grad_x.masked_fill_(unpack_mask(packed, grad_x.shape), 0)
            elif ctx.p > 0:
                grad_x = zero_dropped(grad_x, ctx.seed, ctx.p, inplace=True)
            grad_x = grad_x.to(ctx.x_dtype)
        return grad_x, None, grad_B, None, None, None


def scaled_b_gradient(grad_out: torch.Tensor, scaled: torch.Tensor) -> torch.Tensor:
    """``∂L/∂B = gᵀ u_s`` with the scale already in ``u_s``: g (…, d_out), u_s (…, r) -> (d_out, r),
    computed as ``(u_sᵀ g)ᵀ`` (the faster product on the CPU; a transposed view)."""
    return torch.mm(scaled.reshape(-1, scaled.shape[-1]).t(), grad_out.reshape(-1, grad_out.shape[-1])).t()


class HashedFrozenAProjection(torch.autograd.Function):
    """:class:`FrozenAProjection` with a v2 mask: ``m = hashed_drop_mask(keys, x.shape, p)``.

    Shapes: x (…, d_in), A (r, d_in), B (d_out, r), keys ``(k0, k1)`` ints or an int64 tensor (2,)
    -> (…, d_out); ``p > 0``. With ``c = 1 / (1 − p)``, both scales folded into the r-wide
    projection (no factor-sized temporary)::

        forward:   u_s = s c · A (x with m zeroed)     saved: u_s (r per token), A, B, keys
                   y   = B u_s
        backward:  ∂L/∂B = gᵀ u_s
                   ∂L/∂x = (s c · (g B)) A with m zeroed (m regenerated from keys)

    The zeroing is :func:`~asymlora.adapters.dropout.hashed_zero` (eager CPU: the native C loop, or
    the uint32 numpy hash / a compiled loop where no C compiler builds it; traced: the int64 tensor
    ops; the same bits). Eager CPU inputs without the native loop and small enough
    (:func:`~asymlora.adapters.dropout.v2_keeps_mask`) keep ``m`` bit-packed (``numel / 8`` bytes,
    :func:`~asymlora.adapters.dropout.pack_mask`) instead of regenerating it.

    Traced (``torch.compile``), only tensor ops: forward and backward compile without a break.
    """

    @staticmethod
    def forward(ctx, x, A, B, scaling: float, p: float, keys):
        mask = hashed_drop_mask(keys, x.shape, p, x.device) if v2_keeps_mask(x) else None
        dropped = hashed_zero(x, keys, p) if mask is None else x.masked_fill(mask, 0)
        ctx.scale, ctx.p, ctx.x_dtype = scaling * keep_scale(p), p, x.dtype
        scaled = F.linear(dropped, A).mul_(ctx.scale)
        traced_keys = keys if isinstance(keys, torch.Tensor) else None
        ctx.save_for_backward(scaled, A, B, traced_keys, None if mask is None else pack_mask(mask))
        ctx.keys = keys if traced_keys is None else None
        return F.linear(scaled, B)

    @staticmethod
    def backward(ctx, grad_out):
        scaled, A, B, traced_keys, packed = ctx.saved_tensors
        grad_out, scaled = in_factor_dtype(B, grad_out, scaled)
        grad_x = grad_B = None
        if ctx.needs_input_grad[2]:
            grad_B = scaled_b_gradient(grad_out, scaled)
        if ctx.needs_input_grad[0]:
            grad_x = F.linear(grad_out, B.t()).mul_(ctx.scale) @ A
            if packed is None:
                keys = ctx.keys if traced_keys is None else traced_keys
                grad_x = hashed_zero(grad_x, keys, ctx.p, may_overwrite=True)
            else:
                grad_x.masked_fill_(unpack_mask(packed, grad_x.shape), 0)
            grad_x = grad_x.to(ctx.x_dtype)
        return grad_x, None, grad_B, None, None, None


class MergedGuard(torch.autograd.Function):
    """Identity on the merged layer's output whose backward raises: training through a merged
    layer would give its factors no gradient (they are folded into the base weight)."""

    @staticmethod
    def forward(ctx, result, name: str, *factors):
        ctx.name = name
        return result.clone()

    @staticmethod
    def backward(ctx, grad_out):
        raise RuntimeError(f"module {ctx.name!r} is merged: backward through a merged adapter cannot train its "
                           f"factors; call unmerge() before training")


class UnmergeRecord:
    """What :meth:`AdaptedLinear.unmerge` needs beyond the factors to restore ``W0`` bit for bit.

    Either the flat positions (int32 when the weight has fewer than 2³¹ entries) and original
    values of the entries where ``(W0 + Δ) − Δ`` does not round back to ``W0``, or, when that
    would take more bytes, a copy of ``W0`` itself. ``watched`` are the trained factors and the
    base weight, ``versions`` their version counters right after the merge (every in-place change,
    an optimiser step included, bumps a tensor's counter).
    """

    def __init__(self, index: torch.Tensor | None, value: torch.Tensor | None, original: torch.Tensor | None):
        self.index, self.value, self.original = index, value, original
        self.watched: tuple[torch.Tensor, ...] = ()
        self.versions: tuple[int, ...] = ()
        self.stale = False

    def watch(self, tensors) -> None:
        self.watched = tuple(tensors)
        self.versions = tuple(t._version for t in self.watched)

    def changed(self) -> bool:
        return self.stale or tuple(t._version for t in self.watched) != self.versions

    def __deepcopy__(self, memo) -> "UnmergeRecord":
        """A copied module's record watches the copied tensors (whose counters start afresh)."""
        new = UnmergeRecord(*(copy.deepcopy(t, memo) for t in (self.index, self.value, self.original)))
        new.watch(copy.deepcopy(t, memo) for t in self.watched)
        new.stale = self.changed()
        return new

    @classmethod
    def of(cls, weight: torch.Tensor, wrong: torch.Tensor) -> "UnmergeRecord":
        index_dtype = torch.int32 if weight.numel() < 2**31 else torch.int64
        index_bytes = torch.empty((), dtype=index_dtype).element_size()
        if wrong.numel() * (index_bytes + weight.element_size()) >= weight.numel() * weight.element_size():
            return cls(None, None, weight.detach().clone())
        return cls(wrong.to(index_dtype), weight.reshape(-1)[wrong].clone(), None)

    def restore(self, restored: torch.Tensor) -> torch.Tensor:
        """``restored`` (the weight minus the delta) with the remembered entries put back."""
        if self.original is not None:
            return self.original.to(restored.device, copy=True)
        restored.reshape(-1)[self.index.to(restored.device, torch.long)] = self.value.to(restored.device)
        return restored

    def nbytes(self) -> int:
        tensors = [t for t in (self.index, self.value, self.original) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)


# ---------------------------------------------------------------------------- the layer
class AdaptedLinear(nn.Module):
    """A linear layer (``nn.Linear`` or ``Conv1D``) with an asymmetric low-rank adapter.

    Attributes: ``base`` (the wrapped layer, frozen), ``A`` (r × d_in), ``B`` (d_out × r) — each a
    Parameter if trained, else a buffer — ``rank``, ``scaling``, ``dropout``, ``train_mode``,
    ``merged``, ``active``, ``name``, ``recipes`` (``{factor: Recipe}`` for frozen factors with a
    recipe; an imported frozen factor has none), ``mask_stream`` (the mask version, ``"v1"`` or
    ``"v2"``) and ``masks`` (the dropout-mask stream; with ``"v2"`` and dropout its counter is the
    int64 buffer ``mask_calls`` and its base seed ``mask_base``, neither saved in a state dict).
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
        shapes = {"A": (self.rank, d_in), "B": (d_out, self.rank)}
        inits = {"A": config.init_A, "B": config.init_B}
        built = {f: Recipe.build(inits[f], config.seed, name, f, shapes[f]) for f in "AB"}
        cpu_weight = weight.detach().to("cpu", torch.float32) if any(r.needs_weight for r in built.values()) else None
        self.recipes: dict[str, Recipe] = {}
        for factor, recipe in built.items():
            tensor = recipe.regenerate(cpu_weight).to(weight.device)
            if factor in config.train:
                self.register_parameter(factor, nn.Parameter(tensor))
            else:
                self.register_buffer(factor, tensor)
                self.recipes[factor] = recipe
        self.mask_stream = config.mask_stream
        base_seed = factor_seed(config.seed, name, "mask")
        if self.mask_stream == "v2" and self.dropout > 0:
            self.masks = CounterMaskStream(base_seed)
            self.register_buffer("mask_calls", torch.zeros((), dtype=torch.int64, device=weight.device),
                                 persistent=False)
            self.register_buffer("mask_base", torch.tensor(split_base(base_seed), dtype=torch.int64,
                                                           device=weight.device), persistent=False)
        else:
            self.masks = MaskStream(base_seed)
        self._unmerge: UnmergeRecord | None = None

    # -------------------------------------------------------------- protocol
    @property
    def frozen_factors(self) -> tuple[str, ...]:
        """The factors that are buffers, e.g. ``("A",)`` (with or without a recipe)."""
        return tuple(f for f in "AB" if f not in self.train_mode)

    def adapter_params(self) -> list[str]:
        """The names of this module's trainable adapter parameters, as torchtune's adapter
        protocol has them (``torchtune.modules.peft.AdapterModule``).

        Returns:
            list[str]: the trained factors' names, a fresh list (``["B"]`` for B-only, ``["A"]``,
            ``["A", "B"]`` for LoRA); the base layer's parameters are never among them. The model-level
            :func:`asymlora.get_adapter_params` (and torchtune's own ``get_adapter_params``)
            turns them into ``{dotted name: Parameter}``.
        """
        return list(self.train_mode)

    def trained_factor_params(self) -> dict[str, nn.Parameter]:
        """The trained factors themselves.

        Returns:
            dict[str, nn.Parameter]: ``{"A" | "B": factor}`` for each factor in :attr:`train_mode`
            (``A: r × d_in``, ``B: d_out × r``); the frozen ones are buffers and not here.
        """
        return {f: getattr(self, f) for f in self.train_mode}

    @property
    def in_features(self) -> int:
        return self.A.shape[1]

    @property
    def out_features(self) -> int:
        return self.B.shape[0]

    # -------------------------------------------------------------- forward
    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The adapter's contribution ``s · B (A · drop(x))``, computed in the factors' dtype.

        Args:
            x (torch.Tensor): input of shape (…, d_in).

        Returns:
            torch.Tensor: shape (…, d_out); dropout (a mask from the layer's own stream) only in training.
        """
        x = x.to(self.A.dtype)
        if not (self.training and self.dropout > 0):
            return F.linear(F.linear(x, self.A), self.B) * self.scaling
        if isinstance(self.masks, CounterMaskStream):
            return self._hashed_dropout_delta(x)
        seed = self.masks.next_seed()
        if self.train_mode == "B" and torch.is_grad_enabled():
            return FrozenAProjection.apply(x, self.A, self.B, self.scaling, self.dropout, seed)
        dropped = zero_dropped(x, seed, self.dropout) * keep_scale(self.dropout)
        return F.linear(F.linear(dropped, self.A), self.B) * self.scaling

    def _hashed_dropout_delta(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`delta` in training with a v2 mask (tensor ops only: compilable)."""
        keys = self.masks.next_keys(self.mask_calls, self.mask_base)
        if self.train_mode == "B" and torch.is_grad_enabled():
            return HashedFrozenAProjection.apply(x, self.A, self.B, self.scaling, self.dropout, keys)
        dropped = hashed_zero(x, keys, self.dropout) * keep_scale(self.dropout)
        return F.linear(F.linear(dropped, self.A), self.B) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = W0 x + b + s · B (A · drop(x))`` (only the base when merged or inactive).

        Args:
            x (torch.Tensor): input of shape (…, d_in).

        Returns:
            torch.Tensor: shape (…, d_out), in the base layer's output dtype.

        Raises:
            RuntimeError: (in backward) the layer is merged and its factors require grad.
        """
        result = self.base(x)
        if self.merged:
            trained = [p for p in self.trained_factor_params().values() if p.requires_grad]
            if trained and torch.is_grad_enabled():
                return MergedGuard.apply(result, self.name, *trained)
            return result
        if not self.active:
            return result
        return result + self.delta(x).to(result.dtype)

    # -------------------------------------------------------------- mask stream
    def mask_state(self) -> dict:
        """The dropout-mask stream's state.

        Returns:
            dict: ``{"base": int, "calls": int}`` (JSON-serialisable), for :meth:`load_mask_state`.
        """
        if isinstance(self.masks, CounterMaskStream):
            return self.masks.state(self.mask_calls)
        return self.masks.state()

    def load_mask_state(self, state: dict) -> None:
        """Continue the dropout-mask stream from :meth:`mask_state` (e.g. when resuming a run).

        Args:
            state (dict): what :meth:`mask_state` returned.

        Raises:
            ValueError: the state's base seed is not this layer's.
        """
        if isinstance(self.masks, CounterMaskStream):
            self.masks.load_state(state, self.mask_calls)
        else:
            self.masks.load_state(state)

    # -------------------------------------------------------------- merging
    def delta_weight(self) -> torch.Tensor:
        """The weight delta of the adapter.

        Returns:
            torch.Tensor: ``s · B A`` in fp32, shape (d_out, d_in), detached.
        """
        return (self.B.detach().float() @ self.A.detach().float()) * self.scaling

    def _delta_in_layout(self) -> torch.Tensor:
        delta = self.delta_weight()
        return delta if weight_layout(self.base) == "out_in" else delta.t()

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the adapter into the base weight, ``W0 ← W0 + s · B A`` (exactly reversible by
        :meth:`unmerge`; a no-op when merged)."""
        if self.merged:
            return
        refuse_quantized_merge(self.base, self.name)
        weight = self.base.weight
        delta = self._delta_in_layout().to(weight.device)
        merged = (weight.float() + delta).to(weight.dtype)
        restored = (merged.float() - delta).to(weight.dtype)
        record = UnmergeRecord.of(weight, (restored != weight).reshape(-1).nonzero().squeeze(1))
        weight.copy_(merged)
        record.watch([*self.trained_factor_params().values(), weight])
        self._unmerge = record
        self.merged = True

    def _check_unchanged(self, action: str) -> None:
        if self._unmerge.changed():
            raise RuntimeError(
                f"module {self.name!r}: the trained factors or the base weight changed in place since merge() "
                f"(an optimiser step or an edit on a merged model), so {action} cannot restore the pretrained "
                f"weight; unmerge before changing the adapter, or reload the base model")

    @torch.no_grad()
    def pretrained_weight(self) -> torch.Tensor:
        """``W0`` as a (d_out × d_in) tensor in the base weight's dtype and device.

        When merged, ``W0`` is rebuilt exactly as :meth:`unmerge` would, without changing the
        module (a new tensor); otherwise the base weight itself (a view, detached).

        Returns:
            torch.Tensor: ``W0``, shape (d_out, d_in).

        Raises:
            RuntimeError: merged, and a trained factor or the base weight changed in place since.
        """
        if quantized_kind(self.base) is not None:   # never merged (merge refuses): W0 is the dequantised weight
            return dense_weight(self.base)
        weight = self.base.weight.detach()
        if self.merged:
            self._check_unchanged("pretrained_weight()")
            weight = self._unmerge.restore((weight.float() - self._delta_in_layout().to(weight.device))
                                           .to(weight.dtype))
        return weight if weight_layout(self.base) == "out_in" else weight.t()

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the pretrained weight bit for bit from the factors and the stored corrections.

        Raises RuntimeError if a trained factor or the base weight was changed in place since
        :meth:`merge` (the restored weight would be wrong).
        """
        if not self.merged:
            return
        self._check_unchanged("unmerge()")
        weight = self.base.weight
        restored = (weight.float() - self._delta_in_layout().to(weight.device)).to(weight.dtype)
        weight.copy_(self._unmerge.restore(restored))
        self._unmerge = None
        self.merged = False

    def unmerge_bytes(self) -> int:
        """Bytes held to make :meth:`unmerge` exact (0 when not merged)."""
        return self._unmerge.nbytes() if self._unmerge is not None else 0

    def extra_repr(self) -> str:
        frozen = ",".join(self.frozen_factors) or "none"
        return (f"name={self.name!r}, d_in={self.in_features}, d_out={self.out_features}, rank={self.rank}, "
                f"scaling={self.scaling:g}, dropout={self.dropout:g}, trained={self.train_mode}, frozen={frozen}")
