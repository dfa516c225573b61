"""Timed training steps: forward, backward, AdamW step (and the configuration's per-step hook).

A step is timed from ``zero_grad`` to the end of ``optimizer.step()`` (CUDA synchronised on
both ends). Summaries are the median and the interquartile range (75th − 25th percentile) of the
timed steps, after warm-up steps that are not recorded.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from asymlora.bench.configs import Built


@dataclass
class Trainer:
    """One configuration's model, optimiser and step counter."""

    built: Built
    batch: dict
    lr: float = 1e-4
    step_count: int = 0
    times: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.built.model.train()
        self.optimizer = torch.optim.AdamW(self.built.trainable, lr=self.lr)

    def step(self) -> float:
        """One training step; returns its loss."""
        optimizer = self.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss = self.built.model(**self.batch).loss
        loss.backward()
        optimizer.step()
        self.step_count += 1
        if self.built.after_step is not None:
            self.built.after_step(self.step_count)
        return float(loss.detach())

    def timed_step(self, record: bool = True) -> float:
        """One step, timed in seconds (appended to ``times`` when ``record``)."""
        device = next(iter(self.batch.values())).device
        _synchronise(device)
        start = time.perf_counter()
        self.step()
        _synchronise(device)
        elapsed = time.perf_counter() - start
        if record:
            self.times.append(elapsed)
        return elapsed


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summarise(times: list[float]) -> dict:
    """Median, interquartile range, min and count of step times (seconds)."""
    if not times:
        raise ValueError("no timed steps to summarise")
    if len(times) == 1:
        q1 = q3 = times[0]
    else:
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return {"step_time_median_s": statistics.median(times), "step_time_iqr_s": q3 - q1,
            "step_time_min_s": min(times), "timed_steps": len(times)}
