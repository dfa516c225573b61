"""The markdown of ``asymlora bench quantized``: the rows table (ratios to fp32 PEFT LoRA) and the
quality comparison (B-only validation loss on each base, difference to fp32)."""

from __future__ import annotations

MIB = float(1 << 20)
NAMES = {"peft_lora": "PEFT LoRA", "asymlora_b_only": "B-only"}


def _rows_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    reference = next((r for r in rows if r["bits"] == 32 and r["configuration"] == "peft_lora"), None)
    label = "× fp32 PEFT LoRA" if reference else "× PEFT LoRA on this base"
    lines = [f"| base | method | trainable | step (median s) | IQR (s) | peak training RSS (MiB) | {label} |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = "fp32" if row["bits"] == 32 else f"{row['bits']}-bit {row['backend']}"
        same = reference or next((r for r in rows if r["bits"] == row["bits"] and r["configuration"] == "peft_lora"), row)
        ratio = row["peak_training_rss_bytes"] / same["peak_training_rss_bytes"]
        lines.append(f"| {base} | {NAMES.get(row['configuration'], row['configuration'])} | "
                     f"{row['trainable_params']:,} | {row['step_time_median_s']:.2f} | {row['step_time_iqr_s']:.2f} | "
                     f"{row['peak_training_rss_bytes'] / MIB:.0f} | {ratio:.3f} |")
    first = rows[0]
    return [f"Rows: {first['model']}, batch {first['batch']} × {first['length']} tokens, all-linear, r = {first['rank']}, "
            f"alpha {first['alpha']:g}, dropout {first['dropout']:g}, AdamW; {first['warmup']} warm-up + "
            f"{first['steps']} timed steps per row, each row in its own fresh process, rows one after another.", "",
            *lines, ""]


def _quality_table(quality: list[dict]) -> list[str]:
    if not quality:
        return []
    reference = next((q for q in quality if q["bits"] == 32), None)
    lines = ["| base | steps | validation loss before | after | difference to fp32 B-only |", "|---|---:|---:|---:|---:|"]
    for q in quality:
        base = "fp32" if q["bits"] == 32 else f"{q['bits']}-bit {q['backend']}"
        diff = "–" if reference is None or q is reference else f"{q['validation_loss'] - reference['validation_loss']:+.4f}"
        lines.append(f"| {base} | {q['steps']} | {q['validation_loss_before']:.4f} | {q['validation_loss']:.4f} | {diff} |")
    first = quality[0]
    return [f"Quality: B-only (r = {first['rank']}, all-linear, no dropout), {first['steps']} steps of batch "
            f"{first['batch']} ShareGPT training pairs (≤ {first['length']} tokens), AdamW lr {first['lr']:g}; "
            f"validation loss = mean response-token loss over {first['validation_pairs']} validation pairs "
            f"({first['validation_tokens']:,} tokens).", "", *lines, ""]


def quantized_markdown(document: dict) -> str:
    """``quantized.md``: the command, the rows table and the quality table."""
    return "\n".join(["# Quantized bases", "", f"`{document['command']}`", "",
                      *_rows_table(document["rows"]), *_quality_table(document["quality"])])


if __name__ == "__main__":   # python -m asymlora.bench.quantized_report DIR: rewrite DIR/quantized.md from its JSON
    import json
    import sys
    from pathlib import Path

    from asymlora.atomic import atomic_write_text

    folder = Path(sys.argv[1])
    atomic_write_text(folder / "quantized.md", quantized_markdown(json.loads((folder / "quantized.json").read_text())))
