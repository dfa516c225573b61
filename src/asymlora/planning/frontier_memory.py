"""Peak training memory of each ``(method, rank)`` arm of a budget frontier, measured and predicted.

Memory depends on the configuration (model, method, rank, batch × length, dropout, targets), not on
the seed or the learning rate, so each arm is measured once:

* **measured**: :func:`asymlora.bench.memory.measure_in_subprocess`: a fresh Python process loads
  the model, builds the arm with the benchmark's builder (asymlora's own layer, named by its
  ``methods`` registry name) and takes ``steps`` AdamW steps on one batch; the figure is that
  process's peak (:func:`asymlora.measure.peak_memory_bytes`: peak RSS on a CPU, so it includes the
  interpreter, torch and the loaded weights; CUDA's peak allocation on a GPU);
* **predicted**: the memory planner (:func:`asymlora.planning.planner.plan`) for the same setting:
  weights + trainable + gradients + optimiser + saved activations, no interpreter or allocator
  overhead. The planner models asymlora's ``b_only`` exactly; for LoRA (both factors trained,
  the input saved for A's gradient) it uses PEFT's LoRA (``peft_lora``), the same saved tensors.

The document (``frontier_memory.json``) is what ``asymlora report RESULTS --frontier`` reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: The planner method that predicts each asymlora method's memory (see the module docstring).
PLANNER_METHOD = {"b_only": "b_only", "lora": "peft_lora"}


@dataclass(frozen=True)
class FrontierSetting:
    """The training setting every arm shares (the converged tweets protocol by default)."""

    model: str = "minilm"
    batch: int = 16
    length: int = 64
    labels: int = 3
    dropout: float = 0.05
    alpha: float = 16.0
    steps: int = 3
    threads: int = 1


def parse_arms(text: str) -> list[tuple[str, int]]:
    """``"lora:2,b_only:8"`` -> ``[("lora", 2), ("b_only", 8)]``.

    Raises:
        ValueError: an item without ``method:rank``, a rank below 1, or a method the frontier cannot measure.
    """
    arms = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        method, _, rank = item.partition(":")
        if not rank.isdigit() or int(rank) < 1:
            raise ValueError(f"--arms item {item!r}: write method:rank with a rank >= 1 (e.g. b_only:8)")
        if method not in PLANNER_METHOD:
            raise ValueError(f"--arms item {item!r}: the frontier measures {', '.join(PLANNER_METHOD)}")
        arms.append((method, int(rank)))
    if not arms:
        raise ValueError("--arms is empty; e.g. --arms lora:2,lora:8,lora:32,b_only:8,b_only:32,b_only:128")
    return arms


def predicted_bytes(method: str, rank: int, setting: FrontierSetting) -> int:
    """The planner's peak for ``method`` at ``rank`` in ``setting`` (fp32, AdamW, no checkpointing)."""
    from asymlora.planning.planner import PlanRequest, plan
    from asymlora.planning.sources import load_config

    source = load_config(setting.model)
    request = PlanRequest(source.config, source.description, method=PLANNER_METHOD[method], rank=rank,
                          alpha=setting.alpha, dropout=setting.dropout, targets=tuple(source.default_targets),
                          batch=setting.batch, length=setting.length, dtype="fp32", task="classification",
                          labels=setting.labels)
    return int(plan(request).total)


def measured_bytes(method: str, rank: int, setting: FrontierSetting) -> tuple[int, int]:
    """Peak memory of a fresh process training ``method`` at ``rank`` for ``setting.steps`` steps, and
    its resident memory once the model and the arm were built (before the first step)."""
    from asymlora.bench.configs import ASYMLORA_PREFIX
    from asymlora.bench.memory import measure_in_subprocess

    spec = {"config": ASYMLORA_PREFIX + method, "threads": setting.threads, "steps": setting.steps,
            "workload": {"model": setting.model, "batch": setting.batch, "length": setting.length,
                         "labels": setting.labels},
            "settings": {"rank": rank, "alpha": setting.alpha, "dropout": setting.dropout}}
    result = measure_in_subprocess(spec)
    return int(result.get("cuda_max_allocated_bytes") or result["peak_rss_bytes"]), int(result["rss_after_load_bytes"])


def measure(arms: list[tuple[str, int]], setting: FrontierSetting, progress=None) -> dict:
    """The ``frontier_memory.json`` document: the setting and, per arm, measured and predicted bytes."""
    rows = []
    for done, (method, rank) in enumerate(arms):
        if progress:
            progress(f"{method} r={rank}", done, len(arms))
        peak, after_load = measured_bytes(method, rank, setting)
        rows.append({"method": method, "rank": rank, "measured_bytes": peak, "after_load_bytes": after_load,
                     "predicted_bytes": predicted_bytes(method, rank, setting),
                     "planner_method": PLANNER_METHOD[method]})
    return {"frontier_memory": asdict(setting), "arms": rows}

