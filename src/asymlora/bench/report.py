"""Human-readable views of a ``bench.json`` document: a Markdown table and a PNG bar chart."""

from __future__ import annotations

import io
from pathlib import Path

from asymlora.atomic import atomic_write_bytes, atomic_write_text

MIB = float(1 << 20)


def _ratio(entry: dict, key: str) -> str:
    value = (entry.get("ratios_to_peft_lora") or {}).get(key)
    return "–" if value is None else f"{value:.3f}"


def _mib(value) -> str:
    return "–" if value is None else f"{value / MIB:.2f}"


def markdown(document: dict) -> str:
    """The suite's table, targets, init timing and environment as Markdown."""
    suite, env = document["suite"], document["environment"]
    lines = [f"# Benchmark: {suite['workload']}", "",
             f"batch {suite['batch']} × {suite['length']} tokens, {suite['dtype']}, device {suite['device']}, "
             f"{suite['threads']} threads, rank {suite['rank']}, alpha {suite['alpha']:g}, targets "
             f"{', '.join(suite['targets'])}, dropout {suite['dropout']:g}, {suite['optimizer']}; "
             f"{suite['warmup']} warm-up + {suite['steps']} timed steps per configuration, interleaved. "
             f"Ratios are to `{suite['reference']}` in the same run.", "",
             "| configuration | step median (s) | IQR (s) | min (s) | × PEFT LoRA | samples/s | saved activations (MiB) "
             "| × PEFT LoRA | in adapter code (MiB) | peak RSS (MiB) | checkpoint (bytes) | × PEFT LoRA | trainable |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, entry in document["configurations"].items():
        lines.append(
            f"| {name} | {entry['step_time_median_s']:.3f} | {entry['step_time_iqr_s']:.3f} | "
            f"{entry['step_time_min_s']:.3f} | "
            f"{_ratio(entry, 'step_time_median_s')} | {entry['samples_per_s']:.2f} | "
            f"{_mib(entry['saved_activation_bytes'])} | {_ratio(entry, 'saved_activation_bytes')} | "
            f"{_mib(entry['adapter_activation_bytes'])} | {_mib(entry.get('peak_rss_bytes'))} | "
            f"{entry['checkpoint_bytes']:,} | {_ratio(entry, 'checkpoint_bytes')} | {entry['trainable_params']:,} |")
    if any(e.get("cuda_max_allocated_bytes") for e in document["configurations"].values()):
        lines += ["", "CUDA max allocated (MiB): " + ", ".join(
            f"{n} {_mib(e.get('cuda_max_allocated_bytes'))}" for n, e in document["configurations"].items())]
    if document.get("targets"):
        lines += ["", "## Targets (asymlora_b_only; step times by median, by the fastest step in brackets)", "",
                  "| target | measured | limit | met |", "|---|---:|---:|---|"]
        for row in document["targets"]:
            measured = "–" if row["measured"] is None else f"{row['measured']:.3f} {row['unit']}"
            if row.get("measured_by_min_step") is not None:
                measured += f" ({row['measured_by_min_step']:.3f})"
            met = {True: "yes", False: "**no**", None: "–"}[row["met"]]
            lines.append(f"| {row['target']} | {measured} | ≤ {row['limit']:g} {row['unit']} | {met} |")
    init = document.get("init_timing")
    if init:
        svd = "skipped" if init["svd_s"] is None else f"{init['svd_s']:.2f} s ({init['svd_over_qr']:.0f}× QR)"
        fastest = f", fastest {init['qr_min_s'] * 1000:.2f} ms" if init.get("qr_min_s") else ""
        lines += ["", f"Frozen orthonormal factor for a {init['shape'][0]}×{init['shape'][1]} layer, r={init['rank']}: "
                      f"QR {init['qr_s'] * 1000:.2f} ms (median{fastest}); authors' full SVD {svd}."]
    mask = document.get("mask_path")
    if mask:
        draw = mask["draw_and_apply"]
        lean = mask["lean_forward_backward"]
        lines += ["", f"Dropout mask at one module ({' × '.join(map(str, mask['shape']))}, p={mask['p']:g}, "
                      f"{mask['threads']} threads), draw + apply, median ms: now (sparse dropped positions) {draw['now']['median_ms']:.2f}, "
                      f"one level per element {draw['per_element']['median_ms']:.2f}, "
                      f"first version (Generator.bytes + torch.where) {draw['previous']['median_ms']:.2f}, "
                      f"torch bernoulli_ {draw['bernoulli']['median_ms']:.2f}, PEFT's F.dropout "
                      f"{draw['peft_dropout']['median_ms']:.2f}. Lean function forward + backward: "
                      f"{lean['with_dropout']['median_ms']:.2f} ms with dropout, "
                      f"{lean['without_dropout']['median_ms']:.2f} ms without."]
    lines += ["", f"Environment: {env['cpu']}, {env['logical_cpus']} logical CPUs, torch {env['torch']} "
                  f"({env['torch_threads']} threads), transformers {env['transformers']}, peft {env['peft']}, "
                  f"numpy {env['numpy']}, Python {env['python']}"
                  + (f", GPU {env['gpu']}" if env.get("gpu") else "")
                  + f"; load average at start {env['load_average_start'][0]:.2f}, at end "
                    f"{env.get('load_average_end', [float('nan')])[0]:.2f}; suite took {suite['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def bar_chart(document: dict) -> bytes:
    """A PNG with four panels: step time (IQR bars), saved activations (adapter part hatched),
    peak RSS, checkpoint bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = document["configurations"]
    names = list(rows)
    colours = ["#c44e52" if n.startswith("asymlora") else "#4c72b0" if n.startswith("peft") else "#8c8c8c"
               for n in names]
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = [
        (axes[0][0], [rows[n]["step_time_median_s"] for n in names], "train step, median (s)",
         [rows[n]["step_time_iqr_s"] / 2 for n in names]),
        (axes[0][1], [rows[n]["saved_activation_bytes"] / MIB for n in names], "saved for backward (MiB)", None),
        (axes[1][0], [(rows[n].get("peak_rss_bytes") or 0) / MIB for n in names], "peak RSS, fresh process (MiB)", None),
        (axes[1][1], [rows[n]["checkpoint_bytes"] / 1024 for n in names], "checkpoint (KiB)", None),
    ]
    for axis, values, title, errors in panels:
        axis.barh(names, values, color=colours, xerr=errors)
        axis.set_title(title)
        axis.invert_yaxis()
        for index, value in enumerate(values):
            axis.text(value, index, f" {value:.0f}" if value >= 100 else f" {value:.3g}", va="center", fontsize=8)
    adapter = [rows[n]["adapter_activation_bytes"] / MIB for n in names]
    axes[0][1].barh(names, adapter, color="none", edgecolor="black", hatch="//", label="in adapter code")
    axes[0][1].legend(loc="lower right", fontsize=8)
    suite = document["suite"]
    figure.suptitle(f"{suite['workload']}: batch {suite['batch']}×{suite['length']}, {suite['dtype']}, "
                    f"{suite['device']}, r={suite['rank']}, dropout {suite['dropout']:g}")
    return _png(figure)


def _png(figure) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    from matplotlib import pyplot as plt

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def write_documents(document: dict, out: Path, stem: str, to_markdown, to_chart=None) -> dict:
    """Write ``<stem>.json``, ``<stem>.md`` (and ``<stem>.png`` when ``to_chart``) into ``out``, each
    atomically; returns their paths (keys ``json``, ``markdown``, ``chart``)."""
    import json

    out = Path(out)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    atomic_write_text(paths["json"], json.dumps(document, indent=2) + "\n")
    atomic_write_text(paths["markdown"], to_markdown(document))
    if to_chart is not None:
        paths["chart"] = out / f"{stem}.png"
        atomic_write_bytes(paths["chart"], to_chart(document))
    return paths


def write_report(document: dict, out: Path) -> dict:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out``; returns their paths."""
    return write_documents(document, out, "bench", markdown, bar_chart)


# ---------------------------------------------------------------------------- the sweep
def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def sweep_markdown(document: dict) -> str:
    """The sweep's table (one row per workload, ratios from that workload's run), the targets,
    the mask-path crossover and the environment with its load averages."""
    sweep, env = document["sweep"], document["environment"]
    lines = [f"# Benchmark sweep: {', '.join(document['results'])}", "",
             f"{sweep['dtype']}, device {sweep['device']}, {sweep['threads']} thread(s), rank {sweep['rank']}, "
             f"alpha {sweep['alpha']:g}, dropout {sweep['dropout']:g}, AdamW; configurations "
             f"{', '.join(sweep['configurations'])}, their timed steps interleaved within each workload. "
             f"Mask policy: saved bit-packed mask up to {sweep['mask_policy_saved_max_elements']:,} elements per "
             f"module input, regenerated above.", "",
             "| workload | adapted modules | B-only step (s) | PEFT LoRA (s) | floor (s) | B-only / PEFT "
             "| B-only / floor "
             "| adapter saved, B-only (MiB) | PEFT LoRA (MiB) | ratio | total saved B-only / PEFT | timed steps |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in document["results"].items():
        rows = result["configurations"]
        ours, peft, floor = rows.get("asymlora_b_only"), rows.get("peft_lora"), rows.get("adapter_floor")
        checks = {c["target"]: c for c in result["sweep_targets"]}

        def ratio(target):
            check = checks[target]
            text = _fmt(check["measured"], ".3f")
            if check.get("measured_by_min_step") is not None:
                text += f" ({check['measured_by_min_step']:.3f})"
            return text + ("" if check["met"] in (None, True) else " ✗")

        step = (lambda e: _fmt(e["step_time_median_s"] if e else None, ".4f"))
        mib = (lambda e, k: _fmt(e[k] / MIB if e else None, ".3f"))
        total = (ours["saved_activation_bytes"] / peft["saved_activation_bytes"]) if ours and peft else None
        modules = ours.get("adapter_modules", "–") if ours else "–"
        lines.append(f"| {name} | {modules} | {step(ours)} | {step(peft)} | {step(floor)} | "
                     f"{ratio('B-only step / PEFT LoRA')} | {ratio('B-only step / adapter floor')} | "
                     f"{mib(ours, 'adapter_activation_bytes')} | {mib(peft, 'adapter_activation_bytes')} | "
                     f"{ratio('B-only adapter-attributable saved / PEFT LoRA')} | {_fmt(total, '.3f')} | "
                     f"{result['suite']['steps']} |")
    lines += ["", "Ratios of medians; in brackets the ratio of the fastest steps; ✗ marks a missed target "
                  "(step ≤ 1.00 × PEFT LoRA, ≤ 1.03 × floor; adapter-attributable saved ≤ 0.02 × PEFT LoRA)."]
    lines += _sweep_steps_and_targets(document)
    mask = document.get("mask_crossover")
    if mask:
        lines += ["", f"## Mask-path crossover (lean function forward + backward, r = {mask['rank']}, "
                      f"p = {mask['p']:g}, {mask['threads']} thread(s), median of {mask['repeats']})", "",
                  "| tokens × width | elements | saved mask (ms) | regenerated (ms) | no dropout (ms) |",
                  "|---|---:|---:|---:|---:|"]
        for row in mask["rows"]:
            lines.append(f"| {row['tokens']} × {row['width']} | {row['elements']:,} | {row['saved_ms']:.3f} | "
                         f"{row['regenerated_ms']:.3f} | {row['none_ms']:.3f} |")
        lines += ["", f"Measured crossover: {_fmt(mask['crossover_elements'], ',')} elements."]
    lines += ["", f"Environment: {env['cpu']}, {env['logical_cpus']} logical CPUs, torch {env['torch']}, "
                  f"transformers {env['transformers']}, peft {env['peft']}; load average at start "
                  f"{env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}; "
                  f"sweep took {sweep['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _sweep_steps_and_targets(document: dict) -> list[str]:
    """Every configuration's median step per workload, then every target checked (met or not)."""
    names = list(document["sweep"]["configurations"])
    lines = ["", "## Median step per configuration (s; fastest step in brackets)", "",
             "| workload | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for workload, result in document["results"].items():
        rows = result["configurations"]
        cells = [f"{rows[n]['step_time_median_s']:.4f} ({rows[n]['step_time_min_s']:.4f})" if n in rows else "–"
                 for n in names]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets", "", "| workload | target | measured (median) | by fastest step | limit | met |",
              "|---|---|---:|---:|---:|---|"]
    for workload, result in document["results"].items():
        for check in result["sweep_targets"]:
            met = {None: "not measured", True: "met", False: "**missed**"}[check["met"]]
            lines.append(f"| {workload} | {check['target']} | {_fmt(check['measured'], '.3f')} | "
                         f"{_fmt(check.get('measured_by_min_step'), '.3f')} | {check['limit']:.2f} | {met} |")
    return lines


def sweep_chart(document: dict) -> bytes:
    """A PNG: per workload, B-only's step-time ratios (to PEFT LoRA and to the floor) and its
    adapter-attributable saved bytes over PEFT LoRA's, with the target lines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(document["results"])
    checks = [{c["target"]: c["measured"] for c in document["results"][n]["sweep_targets"]} for n in names]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.38
    positions = range(len(names))
    for offset, (target, limit, colour) in enumerate((("B-only step / PEFT LoRA", 1.00, "#4c72b0"),
                                                      ("B-only step / adapter floor", 1.03, "#8c8c8c"))):
        values = [c[target] or 0 for c in checks]
        axes[0].bar([p + (offset - 0.5) * width for p in positions], values, width, color=colour, label=target)
        axes[0].axhline(limit, color=colour, linestyle="--", linewidth=1)
    axes[0].set_xticks(list(positions), names, rotation=20)
    axes[0].set_title("step time ratio (median); dashed: target")
    axes[0].legend(fontsize=8)
    values = [100 * (c["B-only adapter-attributable saved / PEFT LoRA"] or 0) for c in checks]
    axes[1].bar(list(positions), values, color="#c44e52")
    axes[1].axhline(2.0, color="black", linestyle="--", linewidth=1)
    axes[1].set_xticks(list(positions), names, rotation=20)
    axes[1].set_title("B-only adapter-attributable saved, % of PEFT LoRA")
    for index, value in enumerate(values):
        axes[1].text(index, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    load = document["environment"]["load_average_start"][0]
    figure.suptitle(f"asymlora bench --sweep ({document['sweep']['threads']} thread(s), load average {load:.2f})")
    return _png(figure)


def write_sweep_report(document: dict, out: Path) -> dict:
    """Write ``sweep.json``, ``sweep.md`` and ``sweep.png`` into ``out``; returns their paths."""
    return write_documents(document, out, "sweep", sweep_markdown, sweep_chart)
