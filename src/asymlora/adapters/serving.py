"""Serve many B-only adapters over one shared frozen A: one forward, a different adapter per row.

All adapters trained from the same frozen ``A`` (same init and seed) differ only in ``B``. For a
batch whose row ``i`` uses adapter ``k_i``, each adapted module computes::

    u      = A · x                      once for the whole batch   (b, …, r)
    y_i    = W0 x_i + b + s_k · B_{k_i} u_i                        (b, …, d_out)

Cost model per adapted module, for ``b`` rows of ``T`` tokens, ``n`` adapters (fp32 numbers):

* compute: ``b T d_in d_out`` (the base) + ``b T r d_in`` (the shared ``A x``, paid once however
  many adapters are in the batch) + ``b T r d_out`` (each row's own ``B``), i.e. the same as a
  single adapter; serving the rows adapter by adapter instead costs ``n`` separate forwards
  (``n`` times the base cost when every adapter is present in the batch).
* memory: one copy of the model and of ``A`` (``r d_in``) plus the stacked ``B``
  (``n d_out r``), plus a per-batch gather of ``b d_out r`` for the rows' ``B``'s; a merged
  copy per adapter would cost ``n d_in d_out``.

Heads saved with ``modules_to_save`` (e.g. one classifier per adapter) are served per row the
same way when they are linear layers (stacked weights ``n × d_out × d_in``, gathered per row).

Usage::

    served = serve([adapter_0, adapter_1, adapter_2])          # models, or folders + base=...
    with adapter_rows(served, torch.tensor([2, 0, 0, 1])):     # one index per batch row
        logits = served(**batch).logits

The row index is read from the context manager (one per model, not thread-safe). Rows must be
the first dimension of every adapted module's input (true for transformers models). Serving is
for inference: adapter dropout is not applied.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from asymlora.adapters.combine import _result_model, adapter_state, check_shared_frozen
from asymlora.adapters.inject import adapted_modules

ROUTER_ATTRIBUTE = "asymlora_router"


class RowRouter:
    """Holds the current per-row adapter index, shared by every serving layer of one model."""

    def __init__(self, n_adapters: int):
        self.n_adapters = n_adapters
        self.index: torch.Tensor | None = None

    def rows(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if self.index is None:
            raise RuntimeError(f"{name}: no adapter index set; call the model inside "
                               f"`with asymlora.adapter_rows(model, index):`")
        if self.index.shape[0] != x.shape[0]:
            raise ValueError(f"{name}: the adapter index has {self.index.shape[0]} rows but the input has "
                             f"{x.shape[0]} (rows must be the first dimension)")
        return self.index.to(x.device)


class SharedABLinear(nn.Module):
    """An adapted linear layer serving ``n`` B-only adapters over one frozen ``A``.

    ``A``: (r, d_in) buffer, ``B``: (n, d_out, r) buffer, ``scaling``: (n,) buffer. Input x
    (b, …, d_in) with row index (b,) from the router -> (b, …, d_out).
    """

    def __init__(self, base: nn.Module, name: str, A: torch.Tensor, B: torch.Tensor, scaling: torch.Tensor,
                 router: RowRouter):
        super().__init__()
        self.base, self.name, self.router = base, name, router
        self.register_buffer("A", A)
        self.register_buffer("B", B)
        self.register_buffer("scaling", scaling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = self.router.rows(x, self.name)
        result = self.base(x)
        rows = x.shape[0]
        projected = F.linear(x.to(self.A.dtype), self.A).reshape(rows, -1, self.A.shape[0])  # A x once
        chosen = self.B.index_select(0, index)                                              # (b, d_out, r)
        delta = torch.bmm(projected, chosen.transpose(1, 2)) * self.scaling.index_select(0, index).view(rows, 1, 1)
        return result + delta.reshape(*result.shape).to(result.dtype)

    def extra_repr(self) -> str:
        n, d_out, r = self.B.shape
        return f"name={self.name!r}, adapters={n}, d_in={self.A.shape[1]}, d_out={d_out}, rank={r}"


class RowLinear(nn.Module):
    """A linear layer with one weight (and bias) per adapter, chosen per row.

    ``weight``: (n, d_out, d_in), ``bias``: (n, d_out) or None. x (b, …, d_in) -> (b, …, d_out).
    """

    def __init__(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None, router: RowRouter):
        super().__init__()
        self.name, self.router = name, router
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = self.router.rows(x, self.name)
        rows = x.shape[0]
        flat = x.reshape(rows, -1, x.shape[-1]).to(self.weight.dtype)
        out = torch.bmm(flat, self.weight.index_select(0, index).transpose(1, 2))
        if self.bias is not None:
            out = out + self.bias.index_select(0, index).unsqueeze(1)
        return out.reshape(*x.shape[:-1], self.weight.shape[1])

    def extra_repr(self) -> str:
        n, d_out, d_in = self.weight.shape
        return f"name={self.name!r}, adapters={n}, d_in={d_in}, d_out={d_out}, bias={self.bias is not None}"


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _per_row_heads(model: nn.Module, states, router: RowRouter) -> None:
    """Replace every saved head whose tensors differ between adapters by a :class:`RowLinear`."""
    keys = states[0].meta.modules_to_save
    owners: dict[str, list[str]] = {}
    for key in keys:
        owner, _, pname = key.rpartition(".")
        owners.setdefault(owner, []).append(pname)
    for owner, pnames in owners.items():
        keys_here = [f"{owner}.{p}" for p in pnames]
        if all(torch.equal(s.tensors[k], states[0].tensors[k]) for s in states[1:] for k in keys_here):
            continue
        module = model.get_submodule(owner)
        if not isinstance(module, nn.Linear) or set(pnames) - {"weight", "bias"}:
            raise ValueError(f"cannot serve per-row {type(module).__name__} {owner!r} (modules_to_save differ between "
                             f"adapters); only linear heads are served per row")
        device = module.weight.device
        weight = torch.stack([s.tensors[f"{owner}.weight"] for s in states]).to(device)
        bias = torch.stack([s.tensors[f"{owner}.bias"] for s in states]).to(device) if "bias" in pnames else None
        _replace(model, owner, RowLinear(owner, weight, bias, router))


def serve(adapters: Sequence, base: nn.Module | None = None) -> nn.Module:
    """A model that runs ``len(adapters)`` B-only adapters in one batch (see the module docstring).

    Args:
        adapters (Sequence[nn.Module | str | os.PathLike]): models with asymlora adapters, or adapter
            folders (then the first one is loaded into ``base``). All must train B only and share
            every frozen A (same recipe).
        base (nn.Module | None): a fresh base model, when ``adapters`` are folders.

    Returns:
        nn.Module: a copy of the first model (or ``base``), in eval mode, whose adapted layers are
        replaced by :class:`SharedABLinear`; call it inside :func:`adapter_rows`.

    Raises:
        ValueError: no adapters, or adapters that do not train B only or do not share their frozen A.
        TypeError: an adapter that is neither a model nor a folder.
    """
    adapters = list(adapters)
    if not adapters:
        raise ValueError("serve needs at least one adapter")
    states = [adapter_state(a) for a in adapters]
    check_shared_frozen(states, allowed_train="B")
    model = _result_model(adapters[0], base).eval()
    router = RowRouter(len(states))
    for name, module in adapted_modules(model).items():
        device = module.B.device
        stacked = torch.stack([s.tensors[f"{name}.B"] for s in states]).to(device, module.A.dtype)
        scaling = torch.tensor([s.meta.modules[name].scaling for s in states], dtype=module.A.dtype,
                               device=device)
        _replace(model, name, SharedABLinear(module.base, name, module.A.detach(), stacked, scaling, router))
    _per_row_heads(model, states, router)
    setattr(model, ROUTER_ATTRIBUTE, router)
    return model


@contextlib.contextmanager
def adapter_rows(model: nn.Module, index) -> Iterator[nn.Module]:
    """Within the block, row ``i`` of every batch fed to ``model`` uses adapter ``index[i]``.

    Args:
        model (nn.Module): a serving model built by :func:`serve`.
        index (Sequence[int] | torch.Tensor): one adapter number per batch row, each in
            ``[0, len(adapters))``.

    Yields:
        nn.Module: ``model`` itself, routed by ``index`` until the block ends.

    Raises:
        ValueError: ``model`` is not a serving model, or an index is out of range.
    """
    router = getattr(model, ROUTER_ATTRIBUTE, None)
    if router is None:
        raise ValueError("the model is not a serving model (build it with asymlora.serve(adapters))")
    index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
    if index.numel() and (index.min() < 0 or index.max() >= router.n_adapters):
        raise ValueError(f"adapter index out of range: values must be in [0, {router.n_adapters - 1}], "
                         f"got {index.tolist()}")
    previous, router.index = router.index, index
    try:
        yield model
    finally:
        router.index = previous
