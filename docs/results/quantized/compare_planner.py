"""Planner (asymlora memory) against the measured rows (asymlora bench quantized), from the files here.

predicted, old: plan_B/memory.json ``total`` (tensors: weights + trainable + gradients + optimiser +
saved activations); new: plan_cpu_B/memory.json ``peak`` (``--device cpu``: runtime + checkpoint map +
total + max(loss temporaries, layer transient)). measured: a row's peak training RSS, in
rows_mmap_B/ (glibc's mmap threshold fixed at 64 KiB: live memory) and in rows_B/ (glibc's default,
the first rows: freed heap that glibc keeps counts too); heap held: glibc's freed-but-kept heap at
the peak of a rerun with glibc's default (peak_anatomy/glibc_default_*.json).
Writes planner_vs_measured.json and .md here.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
MIB = 2 ** 20
METHOD = {"peft_lora": "peft_lora", "asymlora_b_only": "b_only"}
TERMS = ("runtime", "checkpoint_map", "total", "loss_temporaries", "layer_transient")


def _rows(folder: str) -> dict:
    path = HERE / folder / "quantized.json"
    return {METHOD[r["configuration"]]: r["peak_training_rss_bytes"] for r in json.loads(path.read_text())["rows"]}


def _plans(folder: str) -> dict:
    return {p["method"]: p for p in json.loads((HERE / folder / "memory.json").read_text())["plans"]}


rows = []
for bits in (32, 8, 4):
    old, new = _plans(f"plan_{bits}"), _plans(f"plan_cpu_{bits}")
    pinned, default = _rows(f"rows_mmap_{bits}"), _rows(f"rows_{bits}")
    for method in ("peft_lora", "b_only"):
        configuration = "asymlora_b_only" if method == "b_only" else method
        anatomy = json.loads((HERE / "peak_anatomy" / f"glibc_default_{bits}_{configuration}_4x256.json").read_text())
        peak = new[method]["peak"]
        rows.append({"bits": bits, "method": method, "old_predicted_bytes": old[method]["total"],
                     "new_predicted_bytes": peak, **{f"new_{t}_bytes": new[method][t] for t in TERMS},
                     "measured_mmap_threshold_64k_bytes": pinned[method], "measured_glibc_default_bytes": default[method],
                     "rerun_glibc_default_mib": anatomy["peak_rss"],
                     "rerun_heap_free_held_at_peak_mib": anatomy["at_sampled_rss_peak"]["heap_free_held"],
                     "old_error_vs_glibc_default": old[method]["total"] / default[method] - 1,
                     "new_error_vs_mmap_threshold_64k": peak / pinned[method] - 1,
                     "new_error_vs_glibc_default": peak / default[method] - 1})
(HERE / "planner_vs_measured.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")


def _mib(value: int) -> str:
    return f"{value / MIB:.0f}"


lines = ["# Planner against measured peaks (SmolLM2, 4 x 256, all-linear, r = 32, fp32 compute, 1 step)", "",
         "New = `asymlora memory --device cpu` (plan_cpu_B): runtime + checkpoint map + total + loss temporaries "
         "(the layer transient, ≤ 3.4 MiB, is smaller than the loss's 384 MiB everywhere here). Old = the tensors "
         "total alone (plan_B). Measured: peak training RSS of a fresh row process, with glibc's mmap threshold "
         "fixed at 64 KiB (rows_mmap_B: live memory) and with glibc's default (rows_B, the first rows; "
         "heap held = freed heap glibc kept at the peak of a rerun, peak_anatomy/).", "",
         "| base | method | runtime | checkpoint map | total | loss temporaries | new prediction | "
         "measured (64 KiB) | error | measured (glibc default) | error | old prediction | old error | "
         "rerun (glibc default) | heap held at its peak |",
         "|---|---|" + "---:|" * 13]
for r in rows:
    base = "fp32" if r["bits"] == 32 else f"{r['bits']}-bit"
    lines.append(f"| {base} | {r['method']} | {_mib(r['new_runtime_bytes'])} | {_mib(r['new_checkpoint_map_bytes'])} | "
                 f"{_mib(r['new_total_bytes'])} | {_mib(r['new_loss_temporaries_bytes'])} | "
                 f"{_mib(r['new_predicted_bytes'])} | {_mib(r['measured_mmap_threshold_64k_bytes'])} | "
                 f"{100 * r['new_error_vs_mmap_threshold_64k']:+.1f}% | {_mib(r['measured_glibc_default_bytes'])} | "
                 f"{100 * r['new_error_vs_glibc_default']:+.1f}% | {_mib(r['old_predicted_bytes'])} | "
                 f"{100 * r['old_error_vs_glibc_default']:+.1f}% | {r['rerun_glibc_default_mib']:.0f} | "
                 f"{r['rerun_heap_free_held_at_peak_mib']:.0f} |")
lines += ["", "All figures MiB. The measured rows ran one step without warm-up, so AdamW's states (in the "
          "predicted total: 75 MiB PEFT LoRA, 38 MiB B-only) did not exist yet at their peak."]
(HERE / "planner_vs_measured.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
