"""The aggregation maths on tiny fixtures: B-only FedAvg is exact, separate A/B averaging is not,
SVD re-factoring gives the best rank-r approximation; and the Dirichlet split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asymlora.errors import UserError
from asymlora.federated.aggregation import (AGGREGATORS, aggregation_error, best_rank_r, payload_bytes,
                                            refactor_product, weighted_average)
from asymlora.federated.splits import dirichlet_split, label_counts

D_OUT, D_IN, R, N = 12, 10, 3, 4


def _clients(train_a: bool, seed: int = 0):
    """N clients' updates of two layers; with ``train_a`` False they share one frozen A per layer."""
    g = torch.Generator().manual_seed(seed)
    shared = {f"l{k}.A": torch.linalg.qr(torch.randn(D_IN, R, generator=g))[0].T.contiguous() for k in range(2)}
    updates = []
    for _ in range(N):
        u = {f"l{k}.B": torch.randn(D_OUT, R, generator=g) for k in range(2)}
        if train_a:
            u.update({f"l{k}.A": shared[f"l{k}.A"] + 0.3 * torch.randn(R, D_IN, generator=g) for k in range(2)})
        u["head.weight"] = torch.randn(3, D_OUT, generator=g)
        updates.append(u)
    return updates, ({} if train_a else shared)


WEIGHTS = [10.0, 30.0, 25.0, 35.0]


def test_b_only_fedavg_is_exact_to_fp32_rounding():
    updates, shared = _clients(train_a=False)
    agg = AGGREGATORS["average"](updates, WEIGHTS, shared)
    err = aggregation_error(updates, WEIGHTS, agg, shared, scaling=2.0)
    assert err.relative < 1e-6                      # fp32 rounding of the averaged B only
    # the same identity written out for one layer: (Σ w_i B_i) A == Σ w_i (B_i A)
    w = torch.tensor(WEIGHTS) / sum(WEIGHTS)
    direct = sum(wi * (u["l0.B"] @ shared["l0.A"]) for wi, u in zip(w, updates))
    torch.testing.assert_close(agg["l0.B"] @ shared["l0.A"], direct, rtol=1e-5, atol=1e-6)


def test_separate_averaging_of_a_and_b_is_not_exact():
    updates, _ = _clients(train_a=True)
    agg = AGGREGATORS["average"](updates, WEIGHTS)
    err = aggregation_error(updates, WEIGHTS, agg)
    assert err.relative > 1e-2
    # avg(B) avg(A) != avg(BA), computed by hand for one layer
    w = torch.tensor(WEIGHTS) / sum(WEIGHTS)
    by_hand = sum(wi * u["l1.B"] for wi, u in zip(w, updates)) @ sum(wi * u["l1.A"] for wi, u in zip(w, updates))
    torch.testing.assert_close(agg["l1.B"] @ agg["l1.A"], by_hand, rtol=1e-5, atol=1e-5)


def test_refactor_equals_the_best_rank_r_approximation():
    updates, _ = _clients(train_a=True, seed=1)
    agg = refactor_product(updates, WEIGHTS)
    w = torch.tensor(WEIGHTS, dtype=torch.float64) / sum(WEIGHTS)
    target = sum(wi * (u["l0.B"].double() @ u["l0.A"].double()) for wi, u in zip(w, updates))
    s = torch.linalg.svdvals(target)
    got = (agg["l0.B"].double() @ agg["l0.A"].double())
    # Eckart–Young: the error of the best rank-r approximation is the norm of the tail singular values
    assert float(torch.linalg.norm(target - got)) == pytest.approx(float(s[R:].norm()), rel=1e-4)
    assert agg["l0.B"].shape == (D_OUT, R) and agg["l0.A"].shape == (R, D_IN)
    assert torch.linalg.matrix_rank(got) == R
    # and it beats separate averaging on the same clients
    separate = aggregation_error(updates, WEIGHTS, AGGREGATORS["average"](updates, WEIGHTS)).absolute
    assert aggregation_error(updates, WEIGHTS, agg).absolute < separate


def test_refactor_is_exact_when_the_average_has_rank_r():
    updates, shared = _clients(train_a=False, seed=2)    # a shared A: Σ w_i B_i A has rank <= r
    full = [{**u, **shared} for u in updates]
    agg = refactor_product(full, WEIGHTS)
    assert aggregation_error(full, WEIGHTS, agg).relative < 1e-5


def test_best_rank_r_splits_the_singular_values_evenly():
    m = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    b, a = best_rank_r(m, 2)
    torch.testing.assert_close(torch.linalg.norm(b, dim=0), torch.linalg.norm(a, dim=1))


def test_non_factor_arrays_are_plainly_averaged_and_bytes_counted():
    updates, _ = _clients(train_a=True)
    for rule in AGGREGATORS.values():
        agg = rule(updates, WEIGHTS)
        torch.testing.assert_close(agg["head.weight"], weighted_average(updates, WEIGHTS)["head.weight"])
    b_only, shared = _clients(train_a=False)
    assert payload_bytes(b_only[0]) == 4 * (2 * D_OUT * R + 3 * D_OUT)
    with pytest.raises(ValueError, match="needs both factors"):
        refactor_product(b_only, WEIGHTS, shared)


def test_mismatched_clients_and_bad_weights_are_refused():
    updates, _ = _clients(train_a=False)
    with pytest.raises(ValueError, match="different arrays"):
        weighted_average([updates[0], {"l0.B": updates[1]["l0.B"]}], [1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        weighted_average(updates, [1, -1, 1, 1])


def test_dirichlet_split_is_seeded_disjoint_and_skewed():
    labels = np.repeat([0, 1, 2], 200)
    parts = dirichlet_split(labels, 4, 0.3, seed=5, min_size=8)
    again = dirichlet_split(labels, 4, 0.3, seed=5, min_size=8)
    assert all((p == q).all() for p, q in zip(parts, again))
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))
    counts = np.array(label_counts(labels, parts, 3))
    assert counts.min() >= 0 and counts.sum() == len(labels) and min(len(p) for p in parts) >= 8
    # small alpha: the dominant label of a client holds most of its data; large alpha: near-uniform
    share = (counts.max(1) / counts.sum(1)).mean()
    iid = np.array(label_counts(labels, dirichlet_split(labels, 4, 1000.0, seed=5), 3))
    assert share > 0.5 > (iid.max(1) / iid.sum(1)).mean() - 0.05


def test_more_clients_than_the_data_allows_is_a_user_error():
    labels = np.repeat([0, 1], 20)
    with pytest.raises(UserError, match="--clients 10 needs at least 80"):
        dirichlet_split(labels, 10, 0.5, seed=0, min_size=8)
    with pytest.raises(UserError, match="no Dirichlet draw"):
        dirichlet_split(labels, 4, 0.01, seed=0, min_size=9, attempts=5)
