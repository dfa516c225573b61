"""The Flower app pair on a tiny BERT, called in-process (no Ray): what clients send, how the server
aggregates, the bytes, and the command's bad input. The full simulation runtime runs in
``asymlora federated`` (docs/results/federated/)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from asymlora.cli import main  # noqa: E402
from asymlora.federated import aggregation  # noqa: E402
from asymlora.federated.apps import AdapterFedAvg, _torch_arrays, client_app  # noqa: E402
from asymlora.federated.config import FederatedConfig, get_method  # noqa: E402
from asymlora.federated.local import build_model, task_data, trainable_arrays  # noqa: E402

CONFIG = FederatedConfig(model="tiny-bert", clients=2, rounds=1, local_steps=2, batch_size=8, train_examples=120,
                         eval_examples=32, max_length=16, alpha=0.5)


@pytest.fixture(scope="module")
def replies():
    """One round of both clients for b_only and lora_separate: ``{method: (server model, replies)}``."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0  # what the runtime sets
    out = {}
    for name in ("b_only", "lora_separate"):
        model = build_model(CONFIG, get_method(name).train)
        content = RecordDict({"arrays": ArrayRecord(trainable_arrays(model)),
                              "config": ConfigRecord({**CONFIG.to_record(), "method": name, "server-round": 1})})
        got = []
        for partition in range(CONFIG.clients):
            msg = Message(content, dst_node_id=10 + partition, message_type=MessageType.TRAIN)
            ctx = Context(run_id=1, node_id=10 + partition, node_config={"partition-id": partition,
                                                                       "num-partitions": CONFIG.clients},
                          state=RecordDict(), run_config={})
            got.append(client_app(msg, ctx))
        out[name] = (model, got)
    return out


def test_clients_send_only_what_they_train(replies):
    model, got = replies["b_only"]
    parts = task_data(CONFIG).parts
    for partition, reply in enumerate(got):
        assert not reply.has_error()
        arrays = _torch_arrays(reply.content["arrays"])
        assert arrays and all(n.endswith(".B") or n.startswith("classifier.") for n in arrays)
        assert any(float(t.abs().sum()) > 0 for n, t in arrays.items() if n.endswith(".B"))  # B moved from zero
        assert reply.content["metrics"]["num-examples"] == len(parts[partition])
    lora = _torch_arrays(replies["lora_separate"][1][0].content["arrays"])
    assert {n[:-2] for n in lora if n.endswith(".A")} == {n[:-2] for n in lora if n.endswith(".B")}


def test_server_b_only_is_exact_and_matches_flower_fedavg(replies):
    records = []
    model, got = replies["b_only"]
    strategy = AdapterFedAvg(get_method("b_only"), CONFIG, model, records)
    arrays, _ = strategy.aggregate_train(1, got)
    updates = [_torch_arrays(r.content["arrays"]) for r in got]
    weights = [r.content["metrics"]["num-examples"] for r in got]
    ours = aggregation.weighted_average(updates, weights)
    flower, _ = FedAvg().aggregate_train(1, got)  # the engine's own FedAvg on the same replies
    for name, tensor in _torch_arrays(arrays).items():
        torch.testing.assert_close(tensor, ours[name], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(tensor, _torch_arrays(flower)[name], rtol=0, atol=0)
    assert strategy.pending["agg_error_rel"] < 1e-6
    strategy.evaluate_global(1, arrays)
    assert records[-1].round == 1 and 0 <= records[-1].accuracy <= 1 and records[-1].agg_error_rel < 1e-6


def test_lora_rules_are_inexact_or_costlier_and_send_twice_the_factors(replies):
    b_model, b_got = replies["b_only"]
    b_strategy = AdapterFedAvg(get_method("b_only"), CONFIG, b_model, [])
    b_strategy.aggregate_train(1, b_got)
    model, got = replies["lora_separate"]
    separate = AdapterFedAvg(get_method("lora_separate"), CONFIG, model, [])
    separate.aggregate_train(1, got)
    product = AdapterFedAvg(get_method("lora_product"), CONFIG, model, [])
    product.aggregate_train(1, got)
    assert separate.pending["agg_error"] > 1e3 * max(b_strategy.pending["agg_error"], 1e-12)
    assert product.pending["agg_error"] < separate.pending["agg_error"]
    # A (r × d_in) and B (d_out × r) have equal sizes on square attention projections: B-only sends half
    assert 2 * b_strategy.pending["adapter_upload_bytes"] == separate.pending["adapter_upload_bytes"]


def test_config_travels_as_a_record():
    assert FederatedConfig.from_record({**CONFIG.to_record(), "server-round": 3}) == CONFIG


def _invoke(args, tmp_path, capsys):
    """``asymlora federated ARGS``: (exit status, stderr lines, the --out folder)."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["federated", *args, "--out", str(out)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return stop.value.code, lines, out


def test_missing_flower_is_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flwr" else real(name, *a))
    code, lines, out = _invoke(["--model", "tiny-bert"], tmp_path, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "needs the 'flwr' package" in lines[0] and "pip install" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--clients", "300", "--train-examples", "2000"], "--clients 300 needs at least 2400"),
    (["--clients", "3", "--alpha", "0.01", "--train-examples", "60", "--batch-size", "16"], "no Dirichlet draw"),
    (["--methods", "b_onyl"], "unknown federated method 'b_onyl'"),
    (["--alpha", "0"], "--alpha must be > 0"),
    (["--dp-noise", "1"], "--dp-noise needs a clipping norm"),
    (["--dp-noise", "0.5,x", "--dp-clip", "1"], "--dp-noise entry 'x' is not a finite number >= 0"),
    (["--dp-noise", "inf", "--dp-clip", "1"], "--dp-noise entry 'inf' is not a finite number >= 0"),
    (["--dp-noise", "nan", "--dp-clip", "1"], "--dp-noise entry 'nan' is not a finite number >= 0"),
    (["--dp-clip", "-1"], "--dp-noise and --dp-clip must be finite and >= 0"),
    (["--dp-clip", "inf"], "--dp-noise and --dp-clip must be finite and >= 0"),
])
def test_bad_input_is_refused_before_any_work(args, message, tmp_path, capsys):
    code, lines, out = _invoke(["--model", "tiny-bert", *args], tmp_path, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert message in lines[0]
    assert not out.exists()


def test_server_app_runs_rounds_over_the_in_process_grid():
    """The same ServerApp / ClientApp pair, delivered without Ray: every round recorded, B-only exact."""
    from asymlora.federated.experiment import simulate

    config = FederatedConfig(model="tiny-bert", clients=2, rounds=2, local_steps=1, batch_size=8, train_examples=64,
                             eval_examples=16, max_length=16)
    records = simulate(config, get_method("b_only"), cpus=1, backend="inprocess")
    assert [r.round for r in records] == [0, 1, 2]
    assert all(r.agg_error_rel < 1e-6 for r in records[1:])
    assert records[1].upload_bytes == records[1].download_bytes > records[1].adapter_upload_bytes > 0
