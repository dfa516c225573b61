"""The planner against the benchmark: predicted saved activations vs the ones a sweep measured.

For every workload of a ``sweep.json`` (``asymlora bench sweep``) and every configuration in it
that is a planner method (:data:`CONFIG_METHODS`), the planner is run with that workload's model,
shape, dtype and adapter settings, and its saved activations (total and adapter-attributable) are
compared with the measured ones: ``error = predicted / measured − 1``. The target is
``|error| ≤ 5 %`` on the total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from asymlora.planning.planner import PlanRequest, plan
from asymlora.planning.sources import load_config
from asymlora.planning.trace import METHODS

#: Benchmark configuration -> planner method (the inverse of :data:`asymlora.planning.trace.METHODS`).
CONFIG_METHODS = {configuration: method for method, configuration in METHODS.items() if configuration}
TOLERANCE = 0.05
_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass
class Comparison:
    """One workload × method: measured and predicted saved bytes."""

    workload: str
    method: str
    measured: int
    predicted: int
    measured_adapter: int
    predicted_adapter: int

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0

    @property
    def met(self) -> bool:
        return abs(self.error) <= TOLERANCE

    def as_dict(self) -> dict:
        return {**asdict(self), "error": self.error, "met": self.met}


def _model_of(workload: dict) -> str:
    if workload["model"] is None:
        return "minilm"
    return workload["model"]


def compare_sweep(document: dict) -> list[Comparison]:
    """Every (workload, method) comparison of a sweep document."""
    workloads = {w["name"]: w for w in document["sweep"]["workloads"]}
    rows = []
    for name, result in document["results"].items():
        workload, suite = workloads[name], result["suite"]
        source = load_config(_model_of(workload), workload.get("layers"))
        for config_name, entry in result["configurations"].items():
            method = CONFIG_METHODS.get(config_name)
            if method is None:
                continue
            request = PlanRequest(source.config, source.description, method=method, rank=suite["rank"],
                                  alpha=suite["alpha"], dropout=suite["dropout"], targets=tuple(suite["targets"]),
                                  batch=suite["batch"], length=suite["length"], dtype=_DTYPES[suite["dtype"]],
                                  task=suite.get("task", "classification"), labels=suite["labels"])
            predicted = plan(request)
            rows.append(Comparison(name, method, entry["saved_activation_bytes"], predicted.activations,
                                   entry["adapter_activation_bytes"], predicted.adapter_activations))
    return rows


def comparison_markdown(rows: list[Comparison], source: str) -> str:
    mib = float(1 << 20)
    lines = [f"# Planner vs measured saved activations ({source})", "",
             "| workload | method | measured (MiB) | predicted (MiB) | error | adapter measured (MiB) "
             "| adapter predicted (MiB) | within 5 % |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row.workload} | {row.method} | {row.measured / mib:.3f} | {row.predicted / mib:.3f} | "
                     f"{100 * row.error:+.2f} % | {row.measured_adapter / mib:.3f} | "
                     f"{row.predicted_adapter / mib:.3f} | {'yes' if row.met else '**no**'} |")
    return "\n".join(lines) + "\n"
