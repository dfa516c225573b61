"""Client-level DP on Flower: the ε accounting against the hockey-stick divergence computed numerically,
and Flower's clipping + noise wrapper around our server strategy on real client replies (tiny BERT)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from asymlora.federated.apps import AdapterFedAvg, _torch_arrays, client_app  # noqa: E402
from asymlora.federated.config import FederatedConfig, get_method  # noqa: E402
from asymlora.federated.local import build_model, trainable_arrays  # noqa: E402
from asymlora.federated.privacy import gaussian_epsilon, gdp_delta, noise_std, private_strategy  # noqa: E402
from asymlora.federated.report import privacy_table  # noqa: E402

CONFIG = FederatedConfig(model="tiny-bert", clients=2, rounds=1, local_steps=2, batch_size=8, train_examples=120,
                         eval_examples=32, max_length=16, alpha=0.5)


def hockey_stick(epsilon: float, mu: float) -> float:
    """``∫ max(0, p(x) − e^ε q(x)) dx`` for ``p = N(μ, 1)``, ``q = N(0, 1)``, by the trapezoid rule."""
    x = np.linspace(-40.0, 40.0 + mu, 400_001)
    p = np.exp(-0.5 * (x - mu) ** 2) / math.sqrt(2 * math.pi)
    q = np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
    return float(np.trapezoid(np.maximum(p - math.exp(epsilon) * q, 0.0), x))


@pytest.mark.parametrize("mu, epsilon", [(0.5, 0.3), (1.0, 1.0), (2.0, 3.0), (4.0, 9.0)])
def test_delta_formula_is_the_hockey_stick_divergence_of_two_gaussians(mu, epsilon):
    assert gdp_delta(epsilon, mu) == pytest.approx(hockey_stick(epsilon, mu), rel=1e-6, abs=1e-12)


def test_epsilon_inverts_delta_and_composes_like_gdp():
    epsilon = gaussian_epsilon(1.0, 10, 1e-5)
    assert gdp_delta(epsilon, math.sqrt(10) / 1.0) == pytest.approx(1e-5, rel=1e-6)
    # T releases at z are one release at z / sqrt(T) (mu-GDP composes as sqrt of the sum of squares)
    assert gaussian_epsilon(2.0, 16, 1e-5) == pytest.approx(gaussian_epsilon(0.5, 1, 1e-5), rel=1e-8)
    # tighter than the classic calibration sqrt(2 ln(1.25/δ)) / z, valid for ε < 1
    assert gaussian_epsilon(8.0, 1, 1e-5) < math.sqrt(2 * math.log(1.25 / 1e-5)) / 8.0 < 1
    assert gaussian_epsilon(1.0, 20) > gaussian_epsilon(1.0, 10) > gaussian_epsilon(2.0, 10)
    assert gaussian_epsilon(0.0, 3) == math.inf and gaussian_epsilon(1.0, 0) == 0.0
    with pytest.raises(ValueError):
        gaussian_epsilon(1.0, 3, delta=0.0)


def _replies(config: FederatedConfig, method: str):
    """One round of every client of ``config`` for ``method``: (server model, global arrays, replies)."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    torch.manual_seed(0)                                # the model's own dropout draws from torch's RNG
    model = build_model(config, get_method(method).train)
    start = trainable_arrays(model)
    content = RecordDict({"arrays": ArrayRecord(start),
                          "config": ConfigRecord({**config.to_record(), "method": method, "server-round": 1})})
    replies = []
    for partition in range(config.clients):
        msg = Message(content, dst_node_id=10 + partition, message_type=MessageType.TRAIN)
        ctx = Context(run_id=1, node_id=10 + partition, state=RecordDict(), run_config={},
                      node_config={"partition-id": partition, "num-partitions": config.clients})
        replies.append(client_app(msg, ctx))
    return model, start, replies


def _norm(a: dict, b: dict) -> float:
    return float(torch.sqrt(sum(((a[n] - b[n]) ** 2).sum() for n in a)))


def _aggregate(config: FederatedConfig, method: str):
    """Flower's DP wrapper around our strategy, one round: (global arrays, replies' updates, aggregate)."""
    model, start, replies = _replies(config, method)
    updates = [_torch_arrays(m.content["arrays"]) for m in replies]
    strategy = private_strategy(AdapterFedAvg(get_method(method), config, model, []), config)
    strategy.current_arrays = ArrayRecord(start)        # what its configure_train stores
    arrays, _ = strategy.aggregate_train(1, replies)
    return start, updates, replies, _torch_arrays(arrays), strategy.strategy


def test_clients_report_their_update_norm_and_clipping_bounds_the_round():
    clip = 1e-3
    config = FederatedConfig(**{**CONFIG.to_record(), "clipping_norm": clip})
    start, updates, replies, aggregated, inner = _aggregate(config, "b_only")
    norms = [float(m.content["metrics"]["update-norm"]) for m in replies]
    assert norms == pytest.approx([_norm(u, start) for u in updates], rel=1e-5)
    assert min(norms) > 10 * clip                       # clipping is active at this C
    assert _norm(aggregated, start) <= clip * (1 + 1e-5)
    assert inner.pending["agg_error_rel"] < 1e-6        # FedAvg of clipped B's is still exact
    sizes = [float(m.content["metrics"]["num-examples"]) for m in replies]
    assert inner.pending["update_norm"] == pytest.approx(np.average(norms, weights=sizes), rel=1e-6)


def test_noise_has_the_stated_std_and_is_repeatable():
    clean = FederatedConfig(**{**CONFIG.to_record(), "clipping_norm": 1e-3})
    noisy = FederatedConfig(**{**clean.to_record(), "noise_multiplier": 2.0})
    assert noise_std(noisy) == pytest.approx(2.0 * 1e-3 / CONFIG.clients) and noise_std(CONFIG) == 0.0
    base = _aggregate(clean, "b_only")[3]
    first, second = _aggregate(noisy, "b_only")[3], _aggregate(noisy, "b_only")[3]
    noise = torch.cat([(first[n] - base[n]).flatten() for n in base])
    assert noise.numel() > 1000 and float(noise.mean()).__abs__() < 0.1 * noise_std(noisy)
    assert float(noise.std()) == pytest.approx(noise_std(noisy), rel=0.05)
    assert all(torch.equal(first[n], second[n]) for n in first)   # seeded from the run's seed


def test_privacy_table_lists_private_runs_with_their_epsilon():
    row = dict(method="b_only", accuracy=0.5, noise_multiplier=1.0, clipping_norm=0.1, noise_std=0.025,
               update_norm=0.3)
    rounds = [{**row, "round": r} for r in range(4)] + [{"method": "centralised", "round": 0, "accuracy": 0.4}]
    table = privacy_table({"rounds": rounds})
    assert "| b_only z=1 C=0.1 | 1 | 0.1 | 0.025 |" in table
    assert f"{gaussian_epsilon(1.0, 3):.3g}" in table and "centralised" not in table
    assert privacy_table({"rounds": rounds[-1:]}) == ""
