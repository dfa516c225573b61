"""Planner (asymlora memory --bits) against the measured rows (asymlora bench quantized), from the files here.

measured: a row's peak training RSS (fresh process, peak lowered to the RSS after building); tensors:
that minus runtime_rss.json (the interpreter + imports floor, which the planner does not model).
Writes planner_vs_measured.json and .md here."""

import json
from pathlib import Path

HERE = Path(__file__).parent
MIB = 2 ** 20
METHOD = {"peft_lora": "peft_lora", "asymlora_b_only": "b_only"}

runtime = json.loads((HERE / "runtime_rss.json").read_text())["runtime_rss_bytes"]
rows = []
for bits in (32, 8, 4):
    measured_doc = HERE / f"rows_{bits}" / "quantized.json"
    if not measured_doc.is_file():
        continue
    plans = {p["method"]: p for p in json.loads((HERE / f"plan_{bits}" / "memory.json").read_text())["plans"]}
    for row in json.loads(measured_doc.read_text())["rows"]:
        predicted = plans[METHOD[row["configuration"]]]["total"]
        peak = row["peak_training_rss_bytes"]
        rows.append({"bits": bits, "method": METHOD[row["configuration"]], "predicted_bytes": predicted,
                     "measured_peak_rss_bytes": peak, "measured_minus_runtime_bytes": peak - runtime,
                     "error_vs_rss": predicted / peak - 1, "error_vs_tensors": predicted / (peak - runtime) - 1})
(HERE / "planner_vs_measured.json").write_text(json.dumps({"runtime_rss_bytes": runtime, "rows": rows}, indent=2) + "\n")
lines = ["# Planner against measured peaks (SmolLM2, 4 x 256, all-linear, r = 32, fp32 compute)", "",
         f"Runtime floor (fresh interpreter after the imports, runtime_rss.json): {runtime / MIB:.0f} MiB.", "",
         "| base | method | predicted (MiB) | measured peak RSS (MiB) | error | measured − runtime (MiB) | error |",
         "|---|---|---:|---:|---:|---:|---:|"]
for r in rows:
    base = "fp32" if r["bits"] == 32 else f"{r['bits']}-bit"
    lines.append(f"| {base} | {r['method']} | {r['predicted_bytes'] / MIB:.0f} | {r['measured_peak_rss_bytes'] / MIB:.0f} | "
                 f"{100 * r['error_vs_rss']:+.1f}% | {r['measured_minus_runtime_bytes'] / MIB:.0f} | "
                 f"{100 * r['error_vs_tensors']:+.1f}% |")
(HERE / "planner_vs_measured.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
