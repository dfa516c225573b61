"""Run the comparison: each federated method in Flower's simulation runtime, then centralised training.

Every method gets the same splits (:func:`~asymlora.federated.local.task_data` from one config) and
the same budget: ``rounds × clients × local_steps`` AdamW steps of ``batch_size`` examples. The
centralised baseline (B-only, the pooled data of all clients) takes ``clients × local_steps`` steps
per "round" and is evaluated after each, so its curve has the same x axis.

Runtime (:data:`BACKENDS`): ``ray`` is ``flwr.simulation.run_simulation`` with its Ray backend (the
only backend flwr 1.42 ships), one CPU per virtual client; ``inprocess`` runs the same ``ServerApp``
and ``ClientApp`` through :class:`~asymlora.federated.inprocess.InProcessGrid`, one client after
another in this process, for machines where Ray cannot start or keep its workers.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import torch

from asymlora.federated.config import FederatedConfig, FederatedMethod
from asymlora.federated.local import accuracy, build_model, task_data, train_steps
from asymlora.federated.privacy import run_label


@dataclass
class Comparison:
    """All round records (:class:`~asymlora.federated.apps.RoundRecord` as dicts) and the run's facts."""

    config: dict
    methods: list[str]
    label_counts: list[list[int]]
    rounds: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


BACKENDS = ("ray", "inprocess")


def simulate(config: FederatedConfig, method: FederatedMethod, cpus: int, backend: str = "ray") -> list:
    """One method in Flower's simulation runtime (``ray``: ``cpus`` CPUs, one per client) or in process.

    Returns:
        list[RoundRecord]: round 0 (the start point) to ``config.rounds``.

    Raises:
        RuntimeError: the simulation ended without every round recorded (a client or the server failed).
    """
    from asymlora.federated.apps import client_app, make_server_app

    records: list = []
    server_app = make_server_app(config, method, records)
    if backend == "inprocess":
        from asymlora.federated.inprocess import run_in_process

        run_in_process(server_app, client_app, config.clients)
    else:
        from flwr.simulation import run_simulation

        run_simulation(server_app, client_app, num_supernodes=config.clients,
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": cpus}})
    if len(records) != config.rounds + 1:
        raise RuntimeError(f"{method.name}: the simulation recorded {len(records)} of {config.rounds + 1} "
                           "evaluations; see the Flower log above")
    return records


def centralised(config: FederatedConfig) -> list:
    """B-only on the pooled training data, ``clients × local_steps`` steps between evaluations."""
    from asymlora.federated.apps import RoundRecord

    torch.set_num_threads(config.threads)
    data = task_data(config)
    model = build_model(config, "B")
    started = time.perf_counter()
    records = [RoundRecord("centralised", 0, accuracy(model, data.test))]
    for rnd in range(1, config.rounds + 1):
        loss = train_steps(model, data.train, config.clients * config.local_steps, config,
                           seed=config.seed * 1_000_003 + rnd)
        records.append(RoundRecord("centralised", rnd, accuracy(model, data.test), train_loss=loss,
                                   seconds=round(time.perf_counter() - started, 1)))
    return records


def compare(config: FederatedConfig, methods: list[FederatedMethod], with_centralised: bool = True,
            cpus: int | None = None, quiet: bool = True, backend: str = "ray",
            noise_levels: Sequence[float] = ()) -> Comparison:
    """Every method in turn on the same config (and so the same splits); see the module docstring.

    Args:
        config (FederatedConfig): validated.
        methods (list[FederatedMethod]): the federated methods.
        with_centralised (bool): also the centralised baseline.
        cpus (int | None): CPUs for the simulation (default: those available to this process).
        quiet (bool): Flower's and Ray's INFO logs off.
        backend (str): one of :data:`BACKENDS`.
        noise_levels (Sequence[float]): with ``config.private``, each method runs once per DP noise
            multiplier listed here (the clipping norm is ``config``'s); empty: once, with ``config``'s.
            The centralised baseline is never private.

    Returns:
        Comparison: every round of every method.
    """
    from asymlora.federated.splits import label_counts

    if quiet and methods:
        import flwr.supercore.logger  # noqa: F401 (sets its own level on import: import it first)

        logging.getLogger("flwr").setLevel(logging.WARNING)
    cpus = cpus or len(os.sched_getaffinity(0))
    data = task_data(config)
    variants = [replace(config, noise_multiplier=z) for z in noise_levels] if config.private and noise_levels \
        else [config]
    runs = [(run_label(m.name, v.noise_multiplier, v.clipping_norm), lambda m=m, v=v: simulate(v, m, cpus, backend))
            for v in variants for m in methods]
    if with_centralised:
        runs.append(("centralised", lambda: centralised(config)))
    result = Comparison({**asdict(config), "backend": backend, "noise_levels": list(noise_levels)},
                        [label for label, _ in runs],
                        label_counts(data.train.labels.tolist(), data.parts, data.num_labels))
    for name, run in runs:
        started = time.perf_counter()
        result.rounds.extend(asdict(r) for r in run())
        result.seconds[name] = round(time.perf_counter() - started, 1)
    return result
