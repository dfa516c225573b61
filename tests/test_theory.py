"""docs/paper.md §5: closed forms against direct least squares, Monte Carlo against the formula."""

import math

import numpy as np
import pytest

from asymlora.analysis import theory as T


def _problem(d_in=6, d_out=5, name="power_law", seed=0):
    return T.make_problem(d_in, d_out, name, seed)


def test_optimal_B_matches_least_squares_on_samples():
    sigma, delta = _problem()
    rng = np.random.default_rng(1)
    Q = T.haar_columns(rng, 6, 2, 1)[0].T                                     # 2 × 6, orthonormal rows
    x, y = T.sample(sigma, delta, 0.04, 100_000, rng)
    b_hat = np.linalg.lstsq(x @ Q.T, y, rcond=None)[0].T                    # regress y on Q x
    b_star = T.optimal_B(sigma, delta, Q)
    assert np.linalg.norm(b_hat - b_star) / np.linalg.norm(b_star) < 0.02
    # the loss formula (c − III_A) is the population loss of B* Q, and the sample loss agrees with it
    formula = T.loss_frozen_A(sigma, delta, Q, 0.04)
    assert formula == pytest.approx(T.population_loss(sigma, delta, b_star @ Q, 0.04), rel=1e-10)
    empirical = np.mean(np.sum((y - x @ (b_star @ Q).T) ** 2, axis=1))
    assert empirical == pytest.approx(formula, rel=0.02)


def test_optimal_A_matches_least_squares_and_ignores_sigma():
    sigma, delta = _problem()
    rng = np.random.default_rng(2)
    U = T.haar_columns(rng, 5, 2, 1)[0]                                       # 5 × 2, orthonormal columns
    x, y = T.sample(sigma, delta, 0.04, 100_000, rng)
    # min_A ‖y − U A x‖² = ‖Uᵀy − A x‖² + const, since U has orthonormal columns
    a_hat = np.linalg.lstsq(x, y @ U, rcond=None)[0].T
    a_star = T.optimal_A(delta, U)
    assert np.linalg.norm(a_hat - a_star) / np.linalg.norm(a_star) < 0.02
    assert T.loss_frozen_B(sigma, delta, U, 0.04) == pytest.approx(
        T.population_loss(sigma, delta, U @ a_star, 0.04), rel=1e-10)


def test_best_rank_is_a_lower_bound_and_is_attained():
    sigma, delta = _problem(8, 7, "low_rank")
    rng = np.random.default_rng(3)
    r = 2
    best = T.loss_best_rank(sigma, delta, r, 0.01)
    root = T.sqrt_psd(sigma)
    left, values, right = np.linalg.svd(delta @ root)
    update = (left[:, :r] * values[:r]) @ right[:r] @ np.linalg.inv(root)   # attains Eckart–Young
    assert T.population_loss(sigma, delta, update, 0.01) == pytest.approx(best, rel=1e-8)
    for _ in range(5):
        Q = T.haar_columns(rng, 8, r, 1)[0].T
        U = T.haar_columns(rng, 7, r, 1)[0]
        assert T.loss_frozen_A(sigma, delta, Q, 0.01) >= best - 1e-9
        assert T.loss_frozen_B(sigma, delta, U, 0.01) >= best - 1e-9
    assert best >= 7 * 0.01


def test_monte_carlo_matches_expected_loss_formula():
    """E[loss | B frozen] = d_out σ² + Tr[ΔΣΔᵀ](1 − r/d_out): within 4 standard errors and 1%."""
    sigma, delta = T.make_problem(24, 20, "power_law", seed=0)
    for r in (1, 4, 10):
        out = T.expected_losses(sigma, delta, r, 0.01, n_draws=2000, seed=0)
        assert set(out) >= {"frozen_A", "frozen_B", "frozen_B_formula", "best_rank", "full", "no_adapter"}
        assert abs(out["frozen_B"] - out["frozen_B_formula"]) < 4 * out["frozen_B_se"]
        assert out["frozen_B"] == pytest.approx(out["frozen_B_formula"], rel=0.01)
        assert out["full"] <= out["best_rank"] <= out["frozen_A"] <= out["no_adapter"]
        assert out["frozen_A"] < out["frozen_B"]  # freezing A wins for a non-isotropic spectrum


def test_isotropic_inputs_make_the_two_factors_equivalent():
    """With Σ = I, E III_A = (r/d_in) Tr[ΔΔᵀ]: both frozen-factor expectations equal the formula."""
    sigma, delta = T.make_problem(16, 16, "isotropic", seed=1)
    out = T.expected_losses(sigma, delta, 4, 0.0, n_draws=1500, seed=1)
    assert abs(out["frozen_A"] - out["frozen_B_formula"]) < 4 * out["frozen_A_se"]
    assert out["frozen_A_limit"] == pytest.approx(out["frozen_B_formula"], rel=1e-10)


def test_low_effective_rank_lets_frozen_A_reach_full_fine_tuning():
    sigma = np.diag([5.0, 3.0, 0, 0, 0, 0, 0, 0, 0, 0])                    # rank Σ = 2 <= r
    delta = np.random.default_rng(4).standard_normal((6, 10))
    out = T.expected_losses(sigma, delta, 2, 0.1, n_draws=50, seed=0)
    assert out["frozen_A"] == pytest.approx(out["full"], rel=1e-8)
    assert out["frozen_B"] > out["full"] + 1.0


def test_limit_check_isotropic_is_exact_up_to_sampling_noise():
    rows = T.limit_check("isotropic", 2, [8, 64], n_draws=300, seed=0)
    assert [r["d"] for r in rows] == [8, 64]
    for row in rows:
        assert row["rel_error"] < 3 * row["mc_noise"] + 1e-12
    spread = T.limit_check("low_rank", 2, [16, 256], n_draws=300, seed=0)
    assert spread[1]["rel_error"] < spread[0]["rel_error"]  # approaches rΣ/TrΣ as d/r grows


def test_gradient_descent_through_the_adapter_reaches_the_closed_form():
    sigma, delta = T.make_problem(16, 12, "power_law", seed=0)
    fit = T.gradient_fit(sigma, delta, 3, 0.01, samples=3000, steps=150, seed=0)
    assert abs(fit.gradient_descent - fit.least_squares) / fit.least_squares < 1e-3   # optimisation converged
    assert 0 <= fit.rel_gap < 0.03                                                     # finite-sample gap only
    assert fit.gradient_descent < T.expected_losses(sigma, delta, 3, 0.01, 50)["no_adapter"]


def test_bad_inputs_are_refused():
    sigma, delta = _problem()
    with pytest.raises(ValueError, match="rank"):
        T.expected_losses(sigma, delta, 6, 0.1, 10)
    with pytest.raises(ValueError, match="d_out × d_in"):
        T.expected_losses(sigma, delta.T, 2, 0.1, 10)
    with pytest.raises(ValueError, match="unknown spectrum"):
        T.spectrum("flat", 4)


def test_theory_command_writes_table_json_and_plots(tmp_path, capsys):
    import json

    from asymlora.cli import main

    main(["theory", "--quick", "--ranks", "1,4,16", "--limit-dims", "8,16", "--draws", "20",
          "--gd-steps", "20", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "theory.json").read_text())
    assert {r["spectrum"] for r in data["curves"]} == {"isotropic", "power_law", "low_rank"}
    assert len(data["curves"]) == 9 and len(data["gradient_fit"]) == 3
    assert (tmp_path / "theory.png").stat().st_size > 10_000
    assert (tmp_path / "theory_limit.png").is_file()
    assert "| spectrum |" in (tmp_path / "theory.md").read_text()
    with pytest.raises(SystemExit) as stop:
        main(["theory", "--spectra", "flat", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2
    assert "unknown spectrum" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "theory.json").exists()
    assert math.isfinite(data["curves"][0]["frozen_A"])
