"""The linear-regression theory of docs/paper.md §5, as numbers one can check.

Model: ``y = W_t x + ε`` with ``E x = 0``, ``Cov x = Σ`` (d_in × d_in), ``Cov ε = σ² I`` (d_out),
``Δ = W_t − W0`` (d_out × d_in). An adapter predicts ``(W0 + B A) x`` and its population loss is

    L(A, B) = E‖y − (W0 + BA) x‖² = d_out σ² + Tr[(Δ − BA) Σ (Δ − BA)ᵀ].

Closed forms (all with ``c = d_out σ² + Tr[Δ Σ Δᵀ]``, the loss with no adapter):

* A frozen at ``Q`` (r × d_in, orthonormal rows), B trained::

      B* = Δ Σ Qᵀ (Q Σ Qᵀ)⁺,     L = c − III_A,   III_A = Tr[Q Σ Δᵀ Δ Σ Qᵀ (Q Σ Qᵀ)⁺]
                                                       = Tr[Δ Σ^{1/2} P_Q Σ^{1/2} Δᵀ],

  where ``P_Q = (QΣ^{1/2})⁺(QΣ^{1/2})`` is the orthogonal projection onto the row space of
  ``QΣ^{1/2}`` (a pseudo-inverse replaces the inverse when ``QΣQᵀ`` is singular).
* B frozen at ``U`` (d_out × r, orthonormal columns), A trained::

      A* = Uᵀ Δ  (independent of Σ),   L = c − III_B,   III_B = Tr[Uᵀ Δ Σ Δᵀ U].

* The best rank-r update (Eckart–Young on ``Δ Σ^{1/2}``, singular values ``s_i``):
  ``L = d_out σ² + Σ_{i>r} s_i²``; full fine-tuning reaches the noise floor ``d_out σ²``.

Expectations over Haar-random ``Q`` and ``U``: ``E[U Uᵀ] = (r/d_out) I`` gives exactly

    E[L | B frozen] = d_out σ² + Tr[Δ Σ Δᵀ] (1 − r/d_out),

and as ``d_in / r → ∞`` (with a spread-out spectrum) ``E[P_Q] → r Σ / Tr Σ``, hence
``E III_A → r ‖ΔΣ‖_F² / Tr Σ``. :func:`expected_losses` estimates both expectations by Monte Carlo;
:func:`limit_check` measures how close ``E[P_Q]`` is to ``r Σ / Tr Σ`` as d/r grows;
:func:`gradient_fit` trains B with the library's own adapter (A frozen at Q) and compares the
loss it reaches with the closed form.

Everything here is float64 numpy except :func:`gradient_fit` (torch, through
:func:`asymlora.inject`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from asymlora.analysis import single_blas_thread

# ---------------------------------------------------------------------------- spectra
SPECTRA: dict[str, Callable[..., np.ndarray]] = {}


def _spectrum(name: str):
    def wrap(fn):
        SPECTRA[name] = fn
        return fn
    return wrap


@_spectrum("isotropic")
def isotropic(d: int, **_) -> np.ndarray:
    """``λ_i = 1``: every input direction equally present."""
    return np.ones(d)


@_spectrum("power_law")
def power_law(d: int, alpha: float = 1.0, **_) -> np.ndarray:
    """``λ_i = i^{-alpha}`` (i = 1..d)."""
    return np.arange(1, d + 1, dtype=np.float64) ** (-float(alpha))


@_spectrum("low_rank")
def low_rank(d: int, effective_fraction: float = 1 / 16, tail: float = 1e-3, **_) -> np.ndarray:
    """``λ_i = 1`` for the first ``k = round(effective_fraction · d)`` directions (at least 1),
    ``tail`` for the rest: inputs that are low-dimensional in effect."""
    k = max(1, min(int(round(effective_fraction * d)), d))
    values = np.full(d, float(tail))
    values[:k] = 1.0
    return values


def spectrum(name: str, d: int, *, alpha: float = 1.0, effective_fraction: float = 1 / 16,
             tail: float = 1e-3) -> np.ndarray:
    """Eigenvalues (length d, descending) of a named input covariance, scaled to ``Tr Σ = d``."""
    if name not in SPECTRA:
        raise ValueError(f"unknown spectrum {name!r}; known: {', '.join(SPECTRA)}")
    if not 0.0 < effective_fraction <= 1.0:
        raise ValueError(f"effective_fraction must be in (0, 1], got {effective_fraction}")
    values = SPECTRA[name](d, alpha=alpha, effective_fraction=effective_fraction, tail=tail)
    return values * (d / values.sum())


def make_problem(d_in: int, d_out: int, spectrum_name: str, seed: int = 0, **spectrum_args) -> tuple[np.ndarray, np.ndarray]:
    """A regression problem: ``Σ = diag(λ)`` (d_in × d_in) and ``Δ`` with i.i.d. ``N(0, 1/d_in)``
    entries (d_out × d_in). Diagonal Σ loses nothing: Haar Q and a Gaussian Δ are rotation-invariant."""
    rng = np.random.default_rng(seed)
    sigma = np.diag(spectrum(spectrum_name, d_in, **spectrum_args))
    delta = rng.standard_normal((d_out, d_in)) / math.sqrt(d_in)
    return sigma, delta


# ---------------------------------------------------------------------------- random factors
def haar_columns(rng: np.random.Generator, n: int, r: int, draws: int) -> np.ndarray:
    """``draws`` independent Haar-random ``n × r`` matrices with orthonormal columns, shape
    (draws, n, r): QR of a Gaussian, sign-corrected by ``diag(R)`` (Mezzadri 2007)."""
    gaussian = rng.standard_normal((draws, n, r))
    q, upper = np.linalg.qr(gaussian)
    signs = np.sign(np.diagonal(upper, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    return q * signs[:, None, :]


def _check(sigma: np.ndarray, delta: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    sigma = np.asarray(sigma, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise ValueError(f"sigma must be a square matrix, got shape {sigma.shape}")
    if delta.ndim != 2 or delta.shape[1] != sigma.shape[0]:
        raise ValueError(f"delta must be d_out × d_in with d_in = {sigma.shape[0]}, got shape {delta.shape}")
    if not np.allclose(sigma, sigma.T, atol=1e-10 * max(1.0, np.abs(sigma).max())):
        raise ValueError("sigma must be symmetric")
    d_out, d_in = delta.shape
    if not 1 <= rank <= min(d_in, d_out):
        raise ValueError(f"rank must be in [1, min(d_in, d_out)] = [1, {min(d_in, d_out)}], got {rank}")
    return sigma, delta


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues clipped to 0)."""
    values, vectors = np.linalg.eigh(sigma)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


# ---------------------------------------------------------------------------- closed forms
def population_loss(sigma, delta, update, noise_var: float) -> float:
    """``d_out σ² + Tr[(Δ − M) Σ (Δ − M)ᵀ]`` for an update ``M`` (d_out × d_in)."""
    residual = np.asarray(delta) - np.asarray(update)
    return float(delta.shape[0] * noise_var + np.trace(residual @ sigma @ residual.T))


def optimal_B(sigma, delta, Q) -> np.ndarray:
    """``B* = Δ Σ Qᵀ (Q Σ Qᵀ)⁺`` (d_out × r) for a frozen A = Q (r × d_in)."""
    return delta @ sigma @ Q.T @ np.linalg.pinv(Q @ sigma @ Q.T)


def optimal_A(delta, U) -> np.ndarray:
    """``A* = Uᵀ Δ`` (r × d_in) for a frozen B = U (d_out × r, orthonormal columns)."""
    return U.T @ delta


def loss_frozen_A(sigma, delta, Q, noise_var: float) -> float:
    """``d_out σ² + Tr[ΔΣΔᵀ] − III_A`` for A frozen at Q and B = B*."""
    base = delta.shape[0] * noise_var + np.trace(delta @ sigma @ delta.T)
    middle = Q @ sigma @ Q.T
    iii_a = np.trace(Q @ sigma @ delta.T @ delta @ sigma @ Q.T @ np.linalg.pinv(middle))
    return float(base - iii_a)


def loss_frozen_B(sigma, delta, U, noise_var: float) -> float:
    """``d_out σ² + Tr[ΔΣΔᵀ] − III_B`` for B frozen at U and A = A*."""
    base = delta.shape[0] * noise_var + np.trace(delta @ sigma @ delta.T)
    return float(base - np.trace(U.T @ delta @ sigma @ delta.T @ U))


def loss_best_rank(sigma, delta, rank: int, noise_var: float) -> float:
    """Eckart–Young: ``d_out σ² + Σ_{i>r} s_i(ΔΣ^{1/2})²``."""
    values = np.linalg.svd(delta @ sqrt_psd(sigma), compute_uv=False)
    return float(delta.shape[0] * noise_var + np.sum(values[rank:] ** 2))


# ---------------------------------------------------------------------------- expectations
def expected_losses(sigma, delta, rank: int, noise_var: float, n_draws: int = 200, seed: int = 0) -> dict:
    """Expected population losses of the four adapters (and two references) for one rank.

    Args:
        sigma: input covariance Σ, (d_in × d_in), symmetric PSD.
        delta: ``Δ = W_t − W0``, (d_out × d_in).
        rank: r, 1 <= r <= min(d_in, d_out).
        noise_var: σ², the variance of each output noise coordinate.
        n_draws: Monte Carlo draws of Haar-random Q (r × d_in) and U (d_out × r).
        seed: seeds the draws (numpy ``default_rng``).

    Returns a dict of floats:
        ``frozen_A``          Monte Carlo E over Q of the loss with A = Q frozen, B = B*.
        ``frozen_B``          Monte Carlo E over U of the loss with B = U frozen, A = A*.
        ``frozen_B_formula``  the exact expectation ``d_out σ² + Tr[ΔΣΔᵀ](1 − r/d_out)``.
        ``best_rank``         the best rank-r update (Eckart–Young on ΔΣ^{1/2}).
        ``full``              full fine-tuning: the noise floor ``d_out σ²``.
        ``no_adapter``        ``d_out σ² + Tr[ΔΣΔᵀ]``.
      and, beyond the required keys: ``frozen_A_se`` / ``frozen_B_se`` (standard errors of the
      Monte Carlo means) and ``frozen_A_limit`` (``no_adapter − r‖ΔΣ‖_F²/TrΣ``, the large-d/r
      limit of ``frozen_A``; only meaningful for r ≪ d_in — it drops below the floor for larger r).
    """
    sigma, delta = _check(sigma, delta, rank)
    if n_draws < 2:
        raise ValueError("n_draws must be >= 2 (a standard error needs two draws)")
    d_out, d_in = delta.shape
    rng = np.random.default_rng(seed)
    noise = d_out * noise_var
    signal = float(np.trace(delta @ sigma @ delta.T))
    # III_A = ‖Δ Σ^{1/2} V‖_F² with V an orthonormal basis of the columns of Σ^{1/2} Qᵀ (the range
    # of P_Q), batched over draws; an SVD basis keeps only the numerical rank, so a singular Σ is fine.
    root = sqrt_psd(sigma)
    tall = root @ haar_columns(rng, d_in, rank, n_draws)              # (draws, d_in, r) = Σ^{1/2} Qᵀ
    basis, values, _ = np.linalg.svd(tall, full_matrices=False)
    keep = values > values[:, :1] * max(d_in, rank) * np.finfo(np.float64).eps
    iii_a = np.sum(((delta @ root) @ basis) ** 2 * keep[:, None, :], axis=(1, 2))
    U = haar_columns(rng, d_out, rank, n_draws)                      # (draws, d_out, r)
    output_cov = delta @ sigma @ delta.T                               # Δ Σ Δᵀ, d_out × d_out
    iii_b = np.einsum("nir,nir->n", output_cov @ U, U)
    loss_a = noise + signal - iii_a
    loss_b = noise + signal - iii_b
    return {
        "frozen_A": float(loss_a.mean()),
        "frozen_B": float(loss_b.mean()),
        "frozen_B_formula": noise + signal * (1.0 - rank / d_out),
        "best_rank": loss_best_rank(sigma, delta, rank, noise_var),
        "full": float(noise),
        "no_adapter": noise + signal,
        "frozen_A_se": float(loss_a.std(ddof=1) / math.sqrt(n_draws)),
        "frozen_B_se": float(loss_b.std(ddof=1) / math.sqrt(n_draws)),
        "frozen_A_limit": noise + signal - rank * float(np.sum((delta @ sigma) ** 2)) / float(np.trace(sigma)),
    }


def expected_projection_diagonal(eigenvalues, rank: int, n_draws: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo ``diag E[P_Q]`` for ``Σ = diag(λ)``, with its standard errors.

    ``P_Q = (QΣ^{1/2})⁺(QΣ^{1/2})`` projects onto the column space of ``Σ^{1/2}Qᵀ`` (d × r); with
    an orthonormal basis ``V`` of it, ``diag P_Q = rowwise ‖V_i‖²``. For diagonal Σ, ``E[P_Q]`` is
    diagonal (flipping the sign of one coordinate preserves both Haar Q and Σ), so its diagonal
    is all of it.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    rng = np.random.default_rng(seed)
    Qt = haar_columns(rng, lam.size, rank, n_draws)                   # (draws, d, r) = Qᵀ
    basis, _ = np.linalg.qr(np.sqrt(lam)[None, :, None] * Qt)
    diagonal = np.sum(basis ** 2, axis=2)                               # (draws, d)
    return diagonal.mean(axis=0), diagonal.std(axis=0, ddof=1) / math.sqrt(n_draws)


def limit_check(spectrum_name: str, rank: int, dims, n_draws: int = 400, seed: int = 0, **spectrum_args) -> list[dict]:
    """Relative error ``‖E[P_Q] − rΣ/TrΣ‖_F / ‖rΣ/TrΣ‖_F`` for growing ``d`` at fixed ``rank``.

    Each row: ``d``, ``d_over_r``, ``rel_error`` (Monte Carlo estimate), ``mc_noise`` (the same
    norm of the standard errors: differences below it are indistinguishable from sampling noise).
    """
    rows = []
    for d in dims:
        if d < rank:
            continue
        lam = spectrum(spectrum_name, int(d), **spectrum_args)
        mean, se = expected_projection_diagonal(lam, rank, n_draws, seed)
        target = rank * lam / lam.sum()
        scale = np.linalg.norm(target)
        rows.append({"spectrum": spectrum_name, "d": int(d), "r": int(rank), "d_over_r": d / rank,
                     "rel_error": float(np.linalg.norm(mean - target) / scale),
                     "mc_noise": float(np.linalg.norm(se) / scale)})
    return rows


# ---------------------------------------------------------------------------- gradient descent
@dataclass
class GradientFit:
    """Result of :func:`gradient_fit`: population losses (not sample losses)."""

    closed_form: float      # L(Q, B*) with the population B*
    least_squares: float    # L(Q, B̂) with B̂ the least-squares solution on the sample
    gradient_descent: float # L(Q, B_gd) with B trained by gradient descent through the adapter
    steps: int
    samples: int

    @property
    def rel_gap(self) -> float:
        """``(L_gd − L_closed) / L_closed``."""
        return (self.gradient_descent - self.closed_form) / self.closed_form

    def to_dict(self) -> dict:
        return {"closed_form": self.closed_form, "least_squares": self.least_squares,
                "gradient_descent": self.gradient_descent, "rel_gap": self.rel_gap,
                "steps": self.steps, "samples": self.samples}


def sample(sigma, delta, noise_var: float, n: int, rng: np.random.Generator, w0=None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws ``x ~ N(0, Σ)`` (n × d_in) and ``y = W_t x + ε`` (n × d_out), ``W_t = W0 + Δ``."""
    d_out, d_in = delta.shape
    w0 = np.zeros_like(delta) if w0 is None else w0
    x = rng.standard_normal((n, d_in)) @ sqrt_psd(sigma)
    y = x @ (w0 + delta).T + math.sqrt(noise_var) * rng.standard_normal((n, d_out))
    return x, y


def gradient_fit(sigma, delta, rank: int, noise_var: float, *, samples: int = 2000, steps: int = 150,
                 seed: int = 0) -> GradientFit:
    """Train B (A frozen at a Haar Q) with the library's adapter and compare with the closed form.

    A one-layer ``nn.Linear`` model holding a random ``W0`` gets :func:`asymlora.inject` with
    ``train="B"`` (alpha = rank, so the scaling is 1); its frozen buffer A is set to Q. B is
    trained by full-batch gradient descent on the mean squared error of ``samples`` draws, with
    the step ``1 / L`` from the largest eigenvalue of the sample Hessian. The population loss of
    the result is compared with ``L(Q, B*)``; the sample's own least-squares B̂ shows how much of
    the gap is finite-sample error rather than optimisation error.
    """
    import torch
    from torch import nn

    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import adapted_modules, inject

    sigma, delta = _check(sigma, delta, rank)
    d_out, d_in = delta.shape
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((d_out, d_in)) / math.sqrt(d_in)
    Q = haar_columns(rng, d_in, rank, 1)[0].T                          # r × d_in
    x, y = sample(sigma, delta, noise_var, samples, rng, w0)
    closed = loss_frozen_A(sigma, delta, Q, noise_var)
    # The sample's least squares: regress y − W0 x on Q x.
    features = x @ Q.T
    b_hat = np.linalg.lstsq(features, y - x @ w0.T, rcond=None)[0].T
    least = population_loss(sigma, delta, b_hat @ Q, noise_var)

    model = nn.Sequential(nn.Linear(d_in, d_out, bias=False))
    inject(model, AdapterConfig(rank=rank, alpha=float(rank), train="B", init_A="orthonormal",
                                init_B="zero", targets=["0"], seed=seed))
    model.double()
    with torch.no_grad():
        model[0].base.weight.copy_(torch.from_numpy(w0))
    layer = adapted_modules(model)["0"]
    with torch.no_grad():
        layer.A = torch.from_numpy(Q).to(layer.B.dtype)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    hessian_top = float(np.linalg.eigvalsh(features.T @ features / samples)[-1]) * 2.0 / d_out
    optimiser = torch.optim.SGD([layer.B], lr=1.0 / hessian_top)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster than two fighting
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            loss = ((model(tx) - ty) ** 2).sum(dim=1).mean() / d_out
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    update = layer.delta_weight().double().numpy()
    gd = population_loss(sigma, delta, update, noise_var)
    return GradientFit(closed, least, gd, steps, samples)


# ---------------------------------------------------------------------------- the whole study
CURVES = ("frozen_A", "frozen_B", "best_rank", "full")


def default_ranks(d: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, … up to d (inclusive): a geometric grid of r/d."""
    ranks = sorted({r for base in (1, 3) for r in (base * 2 ** k for k in range(0, 20)) if r <= d} | {d})
    return ranks


def run_study(**settings) -> dict:
    """Everything ``asymlora theory`` reports (see :func:`_run_study` for the settings), computed
    with one BLAS thread (:func:`asymlora.analysis.single_blas_thread`)."""
    with single_blas_thread():
        return _run_study(**settings)


def _run_study(*, d_in: int = 64, d_out: int = 64, noise_std: float = 0.1, spectra=("isotropic", "power_law", "low_rank"),
              ranks=None, alpha: float = 1.0, effective_fraction: float = 1 / 16, n_draws: int = 200,
              limit_rank: int = 4, limit_dims=(8, 16, 32, 64, 128, 256, 512, 1024), limit_draws: int = 400,
              gd_rank: int | None = None, gd_samples: int = 2000, gd_steps: int = 150, seed: int = 0,
              progress: Callable[[str], None] | None = None) -> dict:
    """Everything ``asymlora theory`` reports, as one JSON-ready dict.

    ``curves``: one row per (spectrum, rank) with :func:`expected_losses`' keys and ``r_over_d``
    (``d = min(d_in, d_out)``) and the formula check ``frozen_B_z`` (Monte Carlo minus formula,
    in standard errors). ``limit``: :func:`limit_check` rows per spectrum. ``gradient_fit``: one
    :class:`GradientFit` per spectrum at ``gd_rank`` (default ``min(d_in, d_out) // 8``).
    """
    d = min(d_in, d_out)
    ranks = [int(r) for r in (ranks or default_ranks(d))]
    for r in ranks:
        if not 1 <= r <= d:
            raise ValueError(f"rank {r} is outside [1, min(d_in, d_out)] = [1, {d}]")
    if noise_std < 0:
        raise ValueError(f"the noise standard deviation must be >= 0, got {noise_std}")
    gd_rank = gd_rank or max(1, d // 8)
    shape = {"alpha": alpha, "effective_fraction": effective_fraction}
    note = progress or (lambda _msg: None)
    result = {"settings": {"d_in": d_in, "d_out": d_out, "noise_std": noise_std, "spectra": list(spectra),
                           "ranks": ranks, "alpha": alpha, "effective_fraction": effective_fraction,
                           "n_draws": n_draws, "limit_rank": limit_rank, "limit_dims": list(limit_dims),
                           "limit_draws": limit_draws, "gd_rank": gd_rank, "gd_samples": gd_samples,
                           "gd_steps": gd_steps, "seed": seed},
              "curves": [], "limit": [], "gradient_fit": []}
    for name in spectra:
        sigma, delta = make_problem(d_in, d_out, name, seed, **shape)
        for r in ranks:
            note(f"{name}: expected losses, r={r}")
            row = expected_losses(sigma, delta, r, noise_std ** 2, n_draws, seed)
            se = row["frozen_B_se"]
            # at r = d_out every U spans everything: the spread is round-off, and so is the z-score
            exact = se <= 1e-9 * abs(row["frozen_B_formula"])
            row["frozen_B_z"] = 0.0 if exact else (row["frozen_B"] - row["frozen_B_formula"]) / se
            result["curves"].append({"spectrum": name, "rank": r, "r_over_d": r / d, **row})
        note(f"{name}: limit of E[P_Q] as d/r grows")
        result["limit"].extend(limit_check(name, limit_rank, limit_dims, limit_draws, seed, **shape))
        note(f"{name}: gradient descent on B through the adapter")
        fit = gradient_fit(sigma, delta, gd_rank, noise_std ** 2, samples=gd_samples, steps=gd_steps, seed=seed)
        result["gradient_fit"].append({"spectrum": name, "rank": gd_rank, **fit.to_dict()})
    return result


def markdown_report(result: dict) -> str:
    """Human-readable tables of :func:`run_study`'s result."""
    s = result["settings"]
    lines = ["# Linear-regression theory (docs/paper.md §5)", "",
             f"d_in={s['d_in']}, d_out={s['d_out']}, noise σ={s['noise_std']}, Monte Carlo draws={s['n_draws']}, "
             f"seed={s['seed']}; Tr Σ = d_in for every spectrum; Δ has i.i.d. N(0, 1/d_in) entries.", "",
             "## Expected population loss against r/d", "",
             "| spectrum | r | r/d | frozen A (MC) | frozen B (MC) | frozen B formula | z | best rank r | full | no adapter |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["curves"]:
        lines.append(f"| {row['spectrum']} | {row['rank']} | {row['r_over_d']:.3f} | {row['frozen_A']:.4f} ± "
                     f"{row['frozen_A_se']:.4f} | {row['frozen_B']:.4f} ± {row['frozen_B_se']:.4f} | "
                     f"{row['frozen_B_formula']:.4f} | {row['frozen_B_z']:+.2f} | {row['best_rank']:.4f} | "
                     f"{row['full']:.4f} | {row['no_adapter']:.4f} |")
    lines += ["", "z = (Monte Carlo − formula) / standard error for E[loss | B frozen].", "",
              f"## E[(QΣ^{{1/2}})⁺(QΣ^{{1/2}})] against r Σ / Tr Σ (r = {s['limit_rank']})", "",
              "| spectrum | d | d/r | relative error | Monte Carlo noise |", "|---|---|---|---|---|"]
    for row in result["limit"]:
        lines.append(f"| {row['spectrum']} | {row['d']} | {row['d_over_r']:.0f} | {row['rel_error']:.4f} | "
                     f"{row['mc_noise']:.4f} |")
    lines += ["", f"## Gradient descent on B through `asymlora.inject` (A frozen at Q, {s['gd_samples']} samples, "
              f"{s['gd_steps']} full-batch steps)", "",
              "| spectrum | r | closed form L(Q, B*) | sample least squares | gradient descent | relative gap |",
              "|---|---|---|---|---|---|"]
    for row in result["gradient_fit"]:
        lines.append(f"| {row['spectrum']} | {row['rank']} | {row['closed_form']:.4f} | {row['least_squares']:.4f} | "
                     f"{row['gradient_descent']:.4f} | {row['rel_gap']:+.2e} |")
    return "\n".join(lines) + "\n"
