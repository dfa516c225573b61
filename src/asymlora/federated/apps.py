"""The Flower app: a ``ClientApp`` that trains adapter factors locally, a ``ServerApp`` that aggregates them.

Data flow of one round (Flower's Message API, ``flwr`` 1.42)::

    ServerApp ── Message(arrays = global trained arrays, config = FederatedConfig + method) ──► N ClientApps
    ClientApp: load arrays -> ``local_steps`` AdamW steps on its Dirichlet shard -> reply
               Message(arrays = its trained arrays, metrics = {num-examples, train-loss})
    ServerApp (:class:`AdapterFedAvg`): Flower's FedAvg weighted average, or the method's own rule
               (:data:`~asymlora.federated.aggregation.AGGREGATORS`); measures ‖avg(ΔW) − ΔW_agg‖ and
               the bytes each way; evaluates the new global model on the held-out split.

A B-only client sends its B's and the head; a LoRA client sends A's, B's and the head. The same two
objects run in Flower's simulation runtime (:mod:`asymlora.federated.experiment`) and across machines:
``client_app`` and ``server_app`` below are the components a Flower project names (the server reads
the :class:`FederatedConfig` fields and ``method`` from its run config; each SuperNode is started with
``--node-config "partition-id=I num-partitions=N"``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from asymlora.atomic import atomic_write_text
from asymlora.federated import aggregation
from asymlora.federated.config import FederatedConfig, FederatedMethod, get_method
from asymlora.federated.local import (accuracy, build_model, frozen_factors, load_arrays, task_data,
                                      trainable_arrays, train_steps)
from asymlora.federated.privacy import noise_std, private_strategy


@dataclass(frozen=True)
class RoundRecord:
    """One round of one method. Bytes are fp32 array payloads summed over clients (headers aside):
    ``upload_bytes`` all clients -> server, ``adapter_upload_bytes`` the factor part of it,
    ``download_bytes`` server -> all clients. ``agg_error`` = ‖avg ΔW − ΔW_agg‖_F over the adapted
    layers, ``agg_error_rel`` divided by ‖avg ΔW‖_F (None for round 0 and the centralised run; under
    DP both are measured on the clipped updates, before the noise). ``update_norm``: the clients'
    weighted mean L2 norm of their update (all sent arrays, before clipping); ``noise_multiplier`` /
    ``clipping_norm`` / ``noise_std``: the DP settings (0 without DP, :mod:`asymlora.federated.privacy`)."""

    method: str
    round: int
    accuracy: float
    train_loss: float | None = None
    upload_bytes: int = 0
    adapter_upload_bytes: int = 0
    download_bytes: int = 0
    agg_error: float | None = None
    agg_error_rel: float | None = None
    update_norm: float | None = None
    noise_multiplier: float = 0.0
    clipping_norm: float = 0.0
    noise_std: float = 0.0
    seconds: float = 0.0


def _torch_arrays(record: ArrayRecord) -> dict[str, torch.Tensor]:
    return {k: v.to(torch.float32) for k, v in record.to_torch_state_dict().items()}


# ------------------------------------------------------------------------------------- client
client_app = ClientApp()
_MODELS: dict[tuple, torch.nn.Module] = {}


def _client_model(config: FederatedConfig, train: str) -> torch.nn.Module:
    """One adapted model per (config, train mode) per process, reused across rounds."""
    key = (config, train)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = build_model(config, train)
    return _MODELS[key]


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Local training on this node's shard (``partition-id`` from the node config)."""
    record = msg.content["config"]
    config, method = FederatedConfig.from_record(record), get_method(str(record["method"]))
    partition = int(context.node_config["partition-id"])
    if not 0 <= partition < config.clients:
        raise ValueError(f"partition-id {partition} is outside 0..{config.clients - 1} for {config.clients} clients")
    torch.set_num_threads(config.threads)
    model = _client_model(config, method.train)
    received = _torch_arrays(msg.content["arrays"])
    load_arrays(model, received)
    data = task_data(config)
    shard = data.train.take(data.parts[partition])
    server_round = int(record["server-round"])
    loss = train_steps(model, shard, config.local_steps, config, seed=config.seed * 1_000_003 + server_round * 1009
                       + partition)
    sent = trainable_arrays(model)
    norm = float(torch.sqrt(sum(((sent[n] - received[n]) ** 2).sum() for n in sent)))
    reply = RecordDict({"arrays": ArrayRecord(sent),
                        "metrics": MetricRecord({"num-examples": len(shard), "train-loss": loss, "update-norm": norm})})
    return Message(reply, reply_to=msg)


# ------------------------------------------------------------------------------------- server
class AdapterFedAvg(FedAvg):
    """Flower's FedAvg with the method's aggregation rule, the aggregation error and byte counts.

    ``average`` methods keep Flower's own weighted average (weights = ``num-examples``); others replace
    it with their rule. Every client must answer: a failed client reply is raised, not skipped.
    """

    def __init__(self, method: FederatedMethod, config: FederatedConfig, model: torch.nn.Module,
                 records: list[RoundRecord]):
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=config.clients,
                         min_available_nodes=config.clients)
        self.method, self.config, self.model, self.records = method, config, model, records
        self.frozen = {k: v.to(torch.float32) for k, v in frozen_factors(model).items()}
        self.scaling = next(m.scaling for m in model.modules() if hasattr(m, "scaling"))
        self.pending: dict = {}
        self.started = time.perf_counter()

    def aggregate_train(self, server_round: int, replies):
        replies = list(replies)
        failed = [m.error.reason for m in replies if m.has_error()]
        if failed:
            raise RuntimeError(f"round {server_round}: {len(failed)} client(s) failed: {failed[0]}")
        arrays, metrics = super().aggregate_train(server_round, replies)
        updates = [_torch_arrays(m.content["arrays"]) for m in replies]
        weights = [float(m.content["metrics"]["num-examples"]) for m in replies]
        if self.method.aggregator == "average":
            result = _torch_arrays(arrays)
        else:
            result = aggregation.AGGREGATORS[self.method.aggregator](updates, weights, self.frozen)
            arrays = ArrayRecord({k: v.contiguous() for k, v in result.items()})
        error = aggregation.aggregation_error(updates, weights, result, self.frozen, self.scaling)
        factor_names = [n for n in updates[0] if n.endswith((".A", ".B"))]
        share = aggregation.normalised(weights)
        self.pending = dict(
            train_loss=sum(w * float(m.content["metrics"]["train-loss"]) for w, m in zip(share, replies)),
            update_norm=sum(w * float(m.content["metrics"]["update-norm"]) for w, m in zip(share, replies)),
            upload_bytes=sum(aggregation.payload_bytes(u) for u in updates),
            adapter_upload_bytes=sum(aggregation.payload_bytes({n: u[n] for n in factor_names}) for u in updates),
            download_bytes=aggregation.payload_bytes(result) * len(replies),
            agg_error=error.absolute, agg_error_rel=error.relative)
        return arrays, metrics

    def evaluate_global(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Server-side accuracy of the global model on the held-out split (round 0: the start point)."""
        load_arrays(self.model, _torch_arrays(arrays))
        acc = accuracy(self.model, task_data(self.config).test)
        self.records.append(RoundRecord(self.method.name, server_round, acc, **self.pending,
                                        noise_multiplier=self.config.noise_multiplier,
                                        clipping_norm=self.config.clipping_norm, noise_std=noise_std(self.config),
                                        seconds=round(time.perf_counter() - self.started, 1)))
        self.pending = {}
        return MetricRecord({"accuracy": acc})


def run_rounds(grid: Grid, config: FederatedConfig, method: FederatedMethod, records: list[RoundRecord]) -> None:
    """The server's whole job: ``config.rounds`` rounds of :class:`AdapterFedAvg` over ``grid`` (inside
    Flower's DP wrapper when ``config.private``: :func:`~asymlora.federated.privacy.private_strategy`)."""
    torch.set_num_threads(config.threads)
    model = build_model(config, method.train)
    adapter_strategy = AdapterFedAvg(method, config, model, records)
    strategy = private_strategy(adapter_strategy, config)
    strategy.start(grid=grid, initial_arrays=ArrayRecord(trainable_arrays(model)), num_rounds=config.rounds,
                   train_config=ConfigRecord({**config.to_record(), "method": method.name}),
                   evaluate_fn=adapter_strategy.evaluate_global)


def make_server_app(config: FederatedConfig, method: FederatedMethod, records: list[RoundRecord]) -> ServerApp:
    """A ``ServerApp`` for one method whose round records land in ``records`` (for the simulation runner)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        del context
        run_rounds(grid, config, method, records)

    return app


server_app = ServerApp()


@server_app.main()
def deployed_main(grid: Grid, context: Context) -> None:
    """Deployed entry: config and ``method`` from the run config; records to ``<out>/federated_<method>.json``."""
    run_config = dict(context.run_config)
    config, method = FederatedConfig.from_record(run_config).validate(), get_method(str(run_config.get("method",
                                                                                                    "b_only")))
    records: list[RoundRecord] = []
    run_rounds(grid, config, method, records)
    out = Path(str(run_config.get("out", "runs/federated")))
    atomic_write_text(out / f"federated_{method.name}.json", json.dumps([asdict(r) for r in records], indent=2) + "\n")
