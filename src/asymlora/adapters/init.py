"""Factor initialisers: a registry ``name -> function(FactorRequest) -> tensor``.

A factor is either ``A`` (shape ``r × d_in``, reads the input) or ``B`` (shape ``d_out × r``,
writes the output). Every random draw comes from a CPU ``torch.Generator`` seeded from
``(config seed, module name, factor)`` (:func:`factor_seed`), so a frozen factor drawn by a
random initialiser is a pure function of its recipe and need not be stored in an adapter file
(:mod:`asymlora.adapters.recipe` says which initialisers are kept as recipes and why).

Names:

========================  =======================================================================
``orthonormal``           Haar-random: QR of a seeded Gaussian ``G`` (``n × r``), sign-corrected by
                          ``diag(R)`` so the law is exactly Haar. A gets orthonormal rows
                          (``A Aᵀ = I_r``), B orthonormal columns (``Bᵀ B = I_r``).
``gaussian``              i.i.d. ``N(0, 1/r²)`` (PEFT's ``init_lora_weights="gaussian"``).
``kaiming``               PEFT's default for ``lora_A``: ``kaiming_uniform_(a=√5)``, i.e.
                          ``U(-1/√fan_in, 1/√fan_in)`` with ``fan_in`` = the factor's column count.
``zero``                  all zeros (the trained factor of LoRA's ``B_0``).
``banded``                nonzero only on a band of width r: ``A[i, j] ~ N(0, 1/r)`` for
                          ``i <= j < i + r`` (rebuttal Table 1.e); B is the transpose construction.
``dependent_rows``        rank one, every row a random multiple of ONE random unit direction:
                          the factor reads one random direction of its input.
``dependent_cols``        rank one, every column equal to one random vector: the factor reads only
                          the sum of its input's coordinates (the all-ones direction).
``svd``                   top-r singular vectors of the PRETRAINED weight ``W0 = U S Vᵀ``:
                          ``A = V[:, :r]ᵀ`` (right), ``B = U[:, :r]`` (left), each pair's sign
                          fixed so that the largest-magnitude entry of ``u_i`` is positive (the
                          same flip applied to ``v_i``, so ``U S Vᵀ`` is unchanged).
========================  =======================================================================

The two rank-one initialisers are deliberately ill-conditioned (the paper's ablation shows
orthonormality of the frozen factor is what matters); both are scaled to Frobenius norm √r, the
norm of an orthonormal factor.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import torch

from asymlora.errors import UserError


@dataclass(frozen=True)
class FactorRequest:
    """What an initialiser needs.

    factor       "A" or "B".
    shape        (r, d_in) for A, (d_out, r) for B.
    generator    a seeded CPU generator: the only source of randomness allowed.
    weight       the pretrained weight in (d_out, d_in) layout, fp32 on the CPU (for ``svd``).
    module_name  for error messages.
    """

    factor: str
    shape: tuple[int, int]
    generator: torch.Generator
    weight: torch.Tensor | None
    module_name: str

    @property
    def rank(self) -> int:
        return self.shape[0] if self.factor == "A" else self.shape[1]

    @property
    def dim(self) -> int:
        """The long side: d_in for A, d_out for B."""
        return self.shape[1] if self.factor == "A" else self.shape[0]


Initialiser = Callable[[FactorRequest], torch.Tensor]
INITIALISERS: dict[str, Initialiser] = {}


def register(name: str) -> Callable[[Initialiser], Initialiser]:
    def wrap(fn: Initialiser) -> Initialiser:
        INITIALISERS[name] = fn
        return fn
    return wrap


def factor_seed(seed: int, module_name: str, factor: str) -> int:
    """A 63-bit seed from ``(seed, module name, factor)``; stable across machines and runs."""
    digest = hashlib.sha256(f"{seed}|{module_name}|{factor}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int, module_name: str, factor: str) -> torch.Generator:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(factor_seed(seed, module_name, factor))
    return generator


def _tall(request: FactorRequest, tall: torch.Tensor) -> torch.Tensor:
    """Lay a (long side × r) tensor out in the factor's own shape."""
    return tall.t().contiguous() if request.factor == "A" else tall.contiguous()


def haar_orthonormal(n: int, r: int, generator: torch.Generator) -> torch.Tensor:
    """An ``n × r`` matrix with orthonormal columns, exactly Haar-distributed.

    QR of a Gaussian ``G = Q R``; multiplying each column of Q by ``sign(R_ii)`` makes the
    factorisation unique, which is what makes Q Haar (Mezzadri 2007). Cost O(n r²), no SVD.
    """
    gaussian = torch.randn(n, r, generator=generator, dtype=torch.float64)
    q, upper = torch.linalg.qr(gaussian, mode="reduced")
    signs = torch.sign(torch.diagonal(upper))
    signs[signs == 0] = 1.0
    return (q * signs).to(torch.float32)


def _check_rank(request: FactorRequest, what: str) -> None:
    if request.rank > request.dim:
        side = "d_in" if request.factor == "A" else "d_out"
        raise UserError(
            f"module {request.module_name!r}: a {what} factor {request.factor} needs rank <= {side}, but rank is "
            f"{request.rank} and {side} is {request.dim}; use rank <= {request.dim} (--rank), or leave that layer "
            f"out of the targets")


@register("orthonormal")
def orthonormal(request: FactorRequest) -> torch.Tensor:
    _check_rank(request, "orthonormal")
    return _tall(request, haar_orthonormal(request.dim, request.rank, request.generator))


@register("gaussian")
def gaussian(request: FactorRequest) -> torch.Tensor:
    return torch.randn(request.shape, generator=request.generator) / request.rank


@register("kaiming")
def kaiming(request: FactorRequest) -> torch.Tensor:
    fan_in = request.shape[1]
    bound = 1.0 / math.sqrt(fan_in)  # gain sqrt(2 / (1 + 5)) * sqrt(3 / fan_in)
    return torch.empty(request.shape).uniform_(-bound, bound, generator=request.generator)


@register("zero")
def zero(request: FactorRequest) -> torch.Tensor:
    return torch.zeros(request.shape)


@register("banded")
def banded(request: FactorRequest) -> torch.Tensor:
    _check_rank(request, "banded")
    r, n = request.rank, request.dim
    values = torch.randn(r, n, generator=request.generator) / math.sqrt(r)
    rows = torch.arange(r).unsqueeze(1)
    cols = torch.arange(n).unsqueeze(0)
    band = (cols >= rows) & (cols < rows + r)
    return _tall(request, (values * band).t())


@register("dependent_rows")
def dependent_rows(request: FactorRequest) -> torch.Tensor:
    r, n = request.rank, request.dim
    direction = torch.randn(n, generator=request.generator)
    direction = direction / direction.norm()
    coefficients = torch.randn(r, generator=request.generator)
    coefficients = coefficients * (math.sqrt(r) / coefficients.norm())
    return _tall(request, torch.outer(direction, coefficients))


@register("dependent_cols")
def dependent_cols(request: FactorRequest) -> torch.Tensor:
    r, n = request.rank, request.dim
    column = torch.randn(r, generator=request.generator)
    column = column * (math.sqrt(r) / (column.norm() * math.sqrt(n)))
    return _tall(request, torch.outer(torch.ones(n), column))


@register("svd")
def svd(request: FactorRequest) -> torch.Tensor:
    if request.weight is None:
        raise ValueError(f"module {request.module_name!r}: the svd initialiser needs the pretrained weight")
    _check_rank(request, "svd")
    left, right_t = signed_svd(request.weight)
    if request.factor == "A":
        return right_t[: request.rank].to(torch.float32).contiguous()
    return left[:, : request.rank].to(torch.float32).contiguous()


def signed_svd(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, Vᵀ)`` of ``W = U S Vᵀ`` (float64, reduced), each singular pair's sign made unique.

    LAPACK returns ``(u_i, v_i)`` or ``(−u_i, −v_i)`` depending on the library and the machine;
    flipping both so that the largest-magnitude entry of ``u_i`` is positive removes that freedom
    (ties between entries of equal magnitude aside).
    """
    left, _, right_t = torch.linalg.svd(weight.to(torch.float64), full_matrices=False)
    pivot = left.abs().argmax(dim=0)
    signs = torch.sign(left.gather(0, pivot.unsqueeze(0)).squeeze(0))
    signs[signs == 0] = 1.0
    return left * signs, right_t * signs.unsqueeze(1)


def _legacy_svd(request: FactorRequest) -> torch.Tensor:
    """The ``svd`` initialiser of adapter-file format 1: LAPACK's signs, not normalised."""
    if request.weight is None:
        raise ValueError(f"module {request.module_name!r}: the svd initialiser needs the pretrained weight")
    _check_rank(request, "svd")
    left, _, right_t = torch.linalg.svd(request.weight.to(torch.float64), full_matrices=False)
    if request.factor == "A":
        return right_t[: request.rank].to(torch.float32).contiguous()
    return left[:, : request.rank].to(torch.float32).contiguous()


#: Initialisers a configuration may no longer choose but an older adapter file may name.
LEGACY_INITIALISERS: dict[str, Initialiser] = {"svd_format1": _legacy_svd}
#: Initialisers that read the pretrained weight.
NEEDS_WEIGHT = frozenset({"svd", "svd_format1"})


def initialise(name: str, request: FactorRequest) -> torch.Tensor:
    """Run one registered (or legacy) initialiser and check the shape it returns."""
    if name not in INITIALISERS and name not in LEGACY_INITIALISERS:
        raise ValueError(f"unknown initialiser {name!r}; known: {', '.join(sorted(INITIALISERS))}")
    tensor = (INITIALISERS.get(name) or LEGACY_INITIALISERS[name])(request)
    if tuple(tensor.shape) != tuple(request.shape):
        raise AssertionError(f"initialiser {name!r} returned {tuple(tensor.shape)}, expected {request.shape}")
    return tensor.to(torch.float32)
