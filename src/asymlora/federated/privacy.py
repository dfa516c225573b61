"""Client-level differential privacy for the federated runs: Flower's own DP strategy, and its ε.

The mechanism is Flower's ``DifferentialPrivacyServerSideFixedClipping`` (DP-FedAvg, McMahan et al.
2018; Andrew et al. 2021), wrapped around our :class:`~asymlora.federated.apps.AdapterFedAvg`. Each
round, with the global trained arrays ``θ`` sent to the N clients:

1. every client's update ``u_i = θ_i − θ`` (all the arrays it sends: B's, for LoRA also A's, and
   the head) is clipped to L2 norm ``C``: ``u_i ← u_i · min(1, C / ‖u_i‖)``;
2. the method's own rule aggregates the clipped updates (FedAvg of B for B-only: still exact);
3. Gaussian noise of std ``σ = z · C / N`` (``z`` the noise multiplier) is added to every element of
   the aggregate. Flower draws it from numpy's global generator; :func:`private_strategy` seeds that
   generator from the run's seed, so a run is repeatable.

With A frozen and shared, the noise lands on B only (and the head); with LoRA it lands on both factors
and enters the update through the product ``(B + N_B)(A + N_A)``, a quadratic noise term B-only does
not have (FFA-LoRA's argument for B-only under DP).

**Accounting** (:func:`gaussian_epsilon`). Neighbouring datasets differ by one client's whole data
(add or remove one client); every client takes part in every round (no sampling amplification).
One release is then the Gaussian mechanism on a sum of sensitivity ``C`` with noise ``z · C``:
``(1/z)``-GDP (Dong, Roth & Su 2019); ``T`` rounds compose to ``μ``-GDP with ``μ = √T / z``, and
the tight ``(ε, δ)`` of ``μ``-GDP is the ``ε`` solving (Balle & Wang 2018, analytic Gaussian)::

    δ = Φ(−ε/μ + μ/2) − e^ε · Φ(−ε/μ − μ/2)

This accounts for the released model updates only (not the clients' reported losses or the server's
test accuracy). ``z = 0`` gives ``ε = ∞``: clipping alone protects nothing.
"""

from __future__ import annotations

import math

import numpy as np

from asymlora.federated.config import FederatedConfig

#: The δ at which ε is reported.
DEFAULT_DELTA = 1e-5


def run_label(method: str, noise_multiplier: float, clipping_norm: float) -> str:
    """``method``, or ``method z=Z C=C`` for a differentially private run (the report's row names)."""
    return f"{method} z={noise_multiplier:g} C={clipping_norm:g}" if clipping_norm > 0 else method


def noise_std(config: FederatedConfig) -> float:
    """``σ = z · C / N``: the std of the noise Flower adds to each element of the averaged arrays."""
    from flwr.supercore.differential_privacy import compute_stdv

    return compute_stdv(config.noise_multiplier, config.clipping_norm, config.clients) if config.private else 0.0


def private_strategy(strategy, config: FederatedConfig):
    """``strategy`` wrapped in Flower's server-side fixed-clipping DP when ``config.private``, else as is.

    Seeds numpy's global generator (Flower's noise source) from ``config.seed``.
    """
    if not config.private:
        return strategy
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

    np.random.seed(config.seed)
    return DifferentialPrivacyServerSideFixedClipping(strategy, config.noise_multiplier, config.clipping_norm,
                                                      config.clients)


def _log_phi(x: float) -> float:
    """``log Φ(x)`` of the standard normal CDF (−inf where Φ underflows)."""
    value = 0.5 * math.erfc(-x / math.sqrt(2.0))
    return math.log(value) if value > 0 else -math.inf


def gdp_delta(epsilon: float, mu: float) -> float:
    """The smallest ``δ`` with which ``μ``-GDP is ``(ε, δ)``-DP: ``Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)``."""
    first = math.exp(_log_phi(-epsilon / mu + mu / 2))
    second = math.exp(epsilon + _log_phi(-epsilon / mu - mu / 2)) if epsilon < 700 else 0.0
    return max(first - second, 0.0)


def gaussian_epsilon(noise_multiplier: float, releases: int, delta: float = DEFAULT_DELTA) -> float:
    """``ε`` at ``δ`` after ``releases`` Gaussian releases with noise multiplier ``z`` (module docstring).

    Args:
        noise_multiplier (float): ``z`` (noise std / sensitivity); 0 means no noise.
        releases (int): ``T``, the rounds.
        delta (float): in (0, 1).

    Returns:
        float: the tight ``ε`` (``inf`` for ``z = 0``; 0 for no release), found by bisection to 1e-9.

    Raises:
        ValueError: ``δ`` outside (0, 1), a negative ``z`` or ``T``.
    """
    if not 0 < delta < 1 or noise_multiplier < 0 or releases < 0:
        raise ValueError(f"need 0 < delta < 1, noise_multiplier >= 0, releases >= 0; got {delta}, "
                         f"{noise_multiplier}, {releases}")
    if releases == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    mu = math.sqrt(releases) / noise_multiplier
    if gdp_delta(0.0, mu) <= delta:
        return 0.0
    low, high = 0.0, 1.0
    while gdp_delta(high, mu) > delta:
        low, high = high, 2 * high
    while high - low > 1e-9 * max(1.0, high):
        middle = (low + high) / 2
        low, high = (middle, high) if gdp_delta(middle, mu) > delta else (low, middle)
    return high
