"""Peak memory of one configuration, measured in a fresh subprocess.

On the CPU the figure is the peak resident set size (:func:`asymlora.measure.peak_rss_bytes`) of a
new Python process that loads the model, builds one configuration and runs a few training steps:
nothing another configuration allocated can inflate it. On CUDA it is
:func:`asymlora.measure.peak_memory_bytes` (``torch.cuda.max_memory_allocated``) over the training
steps, measured in the same kind of fresh process.

Run as ``python -m asymlora.bench.memory '<json spec>'``; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from asymlora.measure import peak_memory_bytes, peak_rss_bytes, reset_cuda_peak, rss_bytes


def measure_in_subprocess(spec: dict, timeout: float = 900.0, module: str = "asymlora.bench.memory") -> dict:
    """Run ``module``'s ``_measure`` for ``spec`` in a new interpreter (``python -m module spec``);
    returns its JSON result."""
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    done = subprocess.run([sys.executable, "-m", module, json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"memory measurement of {spec.get('config')!r} failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(spec: dict) -> dict:
    import torch

    from asymlora.bench.configs import Settings, build
    from asymlora.bench.step import Trainer
    from asymlora.bench.workload import make_workload

    torch.set_num_threads(spec.get("threads", 2))
    workload = make_workload(**spec["workload"])
    settings = Settings(**spec["settings"])
    built = build(spec["config"], workload.template, settings)
    trainer = Trainer(built, workload.batch)
    loaded = rss_bytes()
    device = workload.batch["input_ids"].device
    reset_cuda_peak(device)
    for _ in range(spec.get("steps", 2)):
        trainer.step()
    result = {"peak_rss_bytes": peak_rss_bytes(), "rss_after_load_bytes": loaded}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        result["cuda_max_allocated_bytes"] = peak_memory_bytes(device)
    return result


if __name__ == "__main__":
    print(json.dumps(_measure(json.loads(sys.argv[1]))))
