"""Peak memory of one configuration, measured in a fresh subprocess.

On the CPU the figure is the peak resident set size (``VmHWM``) of a new Python process that
loads the model, builds one configuration and runs a few training steps: nothing another
configuration allocated can inflate it. On CUDA it is ``torch.cuda.max_memory_allocated`` over
the training steps, measured in the same kind of fresh process.

Run as ``python -m asymlora.bench.memory '<json spec>'``; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


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


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmHWM``: peak RSS, ``VmRSS``: current) in bytes."""
    try:
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int:
    """Peak RSS of this process image. ``VmHWM`` where there is /proc: ``ru_maxrss`` is not usable
    in a child, because Linux carries the parent's peak across fork and exec into it."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_bytes() -> int:
    current = _status_bytes("VmRSS")
    return current if current is not None else _peak_rss_bytes()


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
    loaded = _rss_bytes()
    device = workload.batch["input_ids"].device
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(spec.get("steps", 2)):
        trainer.step()
    result = {"peak_rss_bytes": _peak_rss_bytes(), "rss_after_load_bytes": loaded}
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated()
    return result


if __name__ == "__main__":
    print(json.dumps(_measure(json.loads(sys.argv[1]))))
