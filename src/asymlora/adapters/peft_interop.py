"""PEFT interoperability: write a standard PEFT LoRA folder, read one back.

A PEFT LoRA folder (peft 0.21) is::

    adapter_config.json         {"peft_type": "LORA", "r", "lora_alpha", "target_modules",
                                 "use_rslora", "rank_pattern", "alpha_pattern", "modules_to_save", ...}
    adapter_model.safetensors   "base_model.model.<module>.lora_A.weight"  (r × d_in)
                                "base_model.model.<module>.lora_B.weight"  (d_out × r)
                                "base_model.model.<param>"                 (modules_to_save parameters)

PEFT computes ``y = W0 x + (lora_alpha_m / r_m) · lora_B(lora_A(drop(x)))`` (``/ sqrt(r_m)`` with
rsLoRA), ``r_m`` and ``lora_alpha_m`` taken from ``rank_pattern`` / ``alpha_pattern`` (keys are
regexes matched as ``(.*\\.)?(key)$``) or else ``r`` / ``lora_alpha``. Export therefore writes
``A`` and ``B`` as they are (the frozen factor materialised) and, per module whose rank or
scaling differs from the config's, an exact (escaped) module-name entry in ``rank_pattern`` /
``alpha_pattern``, so that PEFT's scaling equals ours.

Import reads the factors back into :class:`~asymlora.adapters.linear.AdaptedLinear` layers:
``freeze=None`` gives LoRA (both trained), ``freeze="A"`` / ``"B"`` makes that factor a frozen
buffer. An imported frozen factor has no recipe, so :func:`~asymlora.adapters.io.save_adapter`
stores it. Only ``adapter_model.safetensors`` is read (never a pickle file).

peft and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch
from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.inject import adapted_modules, adapter_config, find_targets, inject
from asymlora.adapters.adapter_file import FORMAT_NAME, read_json, read_safetensors, safetensors_bytes
from asymlora.adapters.io import assign_tensors, saved_module_parameters
from asymlora.adapters.merged import atomic_folder
from asymlora.adapters.linear import AdaptedLinear, dense_weight, weight_layout

PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
PREFIX = "base_model.model."
#: PEFT LoRA options that change the computation; asymlora imports plain LoRA only.
UNSUPPORTED_OPTIONS = ("use_dora", "lora_bias", "use_qalora", "target_parameters", "trainable_token_indices",
                       "layer_replication", "alora_invocation_tokens", "arrow_config", "use_bdlora",
                       "monteclora_config", "velora_config", "kasa_config")
#: ``freeze`` argument -> AdapterConfig.train
FREEZE_TO_TRAIN = {None: "AB", "A": "B", "B": "A"}


def _rank_divisor(rank: int, rslora: bool) -> float:
    return math.sqrt(rank) if rslora else float(rank)


# ---------------------------------------------------------------------------- export
def peft_config_dict(model: nn.Module) -> dict:
    """The ``adapter_config.json`` content PEFT needs to reproduce ``model``'s adapters exactly."""
    from peft import LoraConfig

    config = adapter_config(model)
    modules = adapted_modules(model)
    rank_pattern, alpha_pattern = {}, {}
    for name, module in modules.items():
        if module.rank != config.rank:
            rank_pattern[re.escape(name)] = module.rank
        alpha = module.scaling * _rank_divisor(module.rank, config.use_rslora)
        if not math.isclose(alpha, config.alpha, rel_tol=1e-12):
            alpha_pattern[re.escape(name)] = alpha
    targets = list(config.targets) if isinstance(config.targets, list) else list(modules)
    conv1d = any(weight_layout(m.base) == "in_out" for m in modules.values())
    peft_config = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets,
        use_rslora=config.use_rslora, rank_pattern=rank_pattern, alpha_pattern=alpha_pattern,
        modules_to_save=list(config.modules_to_save) or None, fan_in_fan_out=conv1d, bias="none",
        init_lora_weights=True, inference_mode=True,
        base_model_name_or_path=getattr(getattr(model, "config", None), "_name_or_path", None) or None)
    data = peft_config.to_dict()
    for key, value in data.items():
        if isinstance(value, set):
            data[key] = sorted(value)
    return data


def export_peft(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``model``'s adapters as a standard PEFT LoRA folder (frozen factors materialised).

    ``peft.PeftModel.from_pretrained(base, directory)`` then computes what ``model`` computes.
    Files are written to a temporary folder and moved into place when complete.

    Args:
        model (nn.Module): a model with asymlora adapters.
        directory (str | os.PathLike): the folder to write (created, or replaced).

    Returns:
        Path: the folder written.

    Raises:
        ValueError: the model has no asymlora adapters, or a ``modules_to_save`` module contains an
            adapted module (which PEFT cannot express).
    """
    config = adapter_config(model)
    modules = adapted_modules(model)
    data = peft_config_dict(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors[f"{PREFIX}{name}.lora_A.weight"] = module.A.detach().to("cpu").contiguous()
        tensors[f"{PREFIX}{name}.lora_B.weight"] = module.B.detach().to("cpu").contiguous()
    for key, parameter in saved_module_parameters(model, config).items():
        if any(key.startswith(f"{name}.") for name in modules):
            raise ValueError(f"cannot export {key!r}: a modules_to_save module contains an adapted module, "
                             f"which PEFT cannot express")
        tensors[f"{PREFIX}{key}"] = parameter.detach().to("cpu").contiguous()
    weights = safetensors_bytes(tensors, metadata={"format": "pt"})
    with atomic_folder(directory) as temporary:
        (temporary / PEFT_WEIGHTS_FILE).write_bytes(weights)
        (temporary / PEFT_CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Path(directory)


# ---------------------------------------------------------------------------- import
def _pattern_value(patterns: dict, name: str, default):
    """PEFT's rule (``peft.utils.other.get_pattern_key``): the first key with
    ``re.match(rf"(.*\\.)?({key})$", name)``, else ``default``."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def _check_peft_config(path: Path, data: dict) -> None:
    if data.get("format") == FORMAT_NAME:
        raise ValueError(f"{path.parent} is an asymlora adapter folder; read it with asymlora.load_adapter(base, dir)")
    if data.get("peft_type") != "LORA":
        raise ValueError(f"{path} has peft_type {data.get('peft_type')!r}; asymlora imports LORA adapters only")
    for option in UNSUPPORTED_OPTIONS:
        if data.get(option):
            raise ValueError(f"{path} uses {option}={data[option]!r}; asymlora imports plain LoRA adapters only")
    if data.get("bias", "none") != "none":
        raise ValueError(f"{path} trains biases (bias={data['bias']!r}); asymlora imports plain LoRA adapters only")
    if not isinstance(data.get("r"), int) or not isinstance(data.get("lora_alpha"), (int, float)):
        raise ValueError(f"{path} is corrupt: 'r' and 'lora_alpha' must be numbers")


def _split_keys(path: Path, tensors: dict[str, torch.Tensor]):
    """``({module: {"A": t, "B": t}}, {param name: t})`` from PEFT key names."""
    factors: dict[str, dict[str, torch.Tensor]] = {}
    others: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        name = key[len(PREFIX):] if key.startswith(PREFIX) else key
        match = re.fullmatch(r"(.+)\.lora_([AB])\.weight", name)
        if match:
            factors.setdefault(match.group(1), {})[match.group(2)] = value
        elif "lora_" in name:
            raise ValueError(f"{path} holds {key!r}, a LoRA variant asymlora does not import "
                             f"(plain lora_A / lora_B on linear layers only)")
        else:
            others[name] = value
    for name, pair in factors.items():
        if set(pair) != {"A", "B"}:
            raise ValueError(f"{path} is corrupt: module {name!r} has lora_{''.join(pair)} but not both factors")
        if pair["A"].dim() != 2 or pair["B"].dim() != 2 or pair["A"].shape[0] != pair["B"].shape[1]:
            raise ValueError(f"{path} is corrupt: module {name!r} has lora_A {tuple(pair['A'].shape)} and "
                             f"lora_B {tuple(pair['B'].shape)}, which do not chain")
    if not factors:
        raise ValueError(f"{path} holds no lora_A / lora_B tensors")
    return factors, others


def _choose_targets(base: nn.Module, data: dict, names: list[str], probe: AdapterConfig):
    """PEFT's ``target_modules`` if it selects exactly ``names`` here, else an explicit regex."""
    wanted = set(names)
    peft_targets = data.get("target_modules")
    candidates = []
    if isinstance(peft_targets, (list, tuple)) and peft_targets:
        candidates.append(sorted(peft_targets))
    elif isinstance(peft_targets, str):
        candidates.append(peft_targets if peft_targets == "all-linear" else "re:" + peft_targets)
    for targets in candidates:
        try:
            config = AdapterConfig.from_dict({**probe.to_dict(), "targets": targets})
            if set(find_targets(base, config)) == wanted:
                return config.targets
        except ValueError:
            continue
    return "re:(?:" + "|".join(re.escape(n) for n in names) + ")"


def read_peft(directory: str | os.PathLike) -> tuple[dict, dict, dict]:
    """Read and check a PEFT LoRA folder without a model: ``(config, {module: {"A", "B"}}, other
    tensors)``. Only ``adapter_model.safetensors`` is read; a folder holding only the pickle
    ``adapter_model.bin`` is refused with the way to re-save it."""
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"PEFT adapter folder {folder} does not exist")
    data = read_json(folder / PEFT_CONFIG_FILE)
    _check_peft_config(folder / PEFT_CONFIG_FILE, data)
    weights = folder / PEFT_WEIGHTS_FILE
    if not weights.is_file() and (folder / "adapter_model.bin").is_file():
        raise ValueError(f"{folder} has only adapter_model.bin; asymlora never loads pickle files — "
                         f"re-save it with PEFT's save_pretrained(..., safe_serialization=True)")
    factors, others = _split_keys(weights, read_safetensors(weights))
    return data, factors, others


def import_peft(base_model: nn.Module, directory: str | os.PathLike, freeze: str | None = None) -> nn.Module:
    """Read a PEFT LoRA folder into ``base_model`` (in place) as asymlora adapters; returns it.

    The frozen factor has no recipe, so :func:`~asymlora.adapters.io.save_adapter` stores it in the
    file. Factors are cast to fp32. Scaling (``lora_alpha``, ``alpha_pattern``, ``rank_pattern``,
    ``use_rslora``) is kept.

    Args:
        base_model (nn.Module): a fresh base model (without asymlora adapters) of the PEFT adapter.
        directory (str | os.PathLike): a PEFT LoRA folder (``adapter_config.json`` and weights).
        freeze (str | None): None (LoRA: both factors trained), ``"A"`` (A a frozen buffer, B
            trained — the paper's method continuing from a LoRA adapter) or ``"B"``.

    Returns:
        nn.Module: ``base_model`` itself, carrying the imported adapters.

    Raises:
        ValueError: an invalid ``freeze``, a folder that is not a supported PEFT LoRA adapter, a base
            model that does not match it (modules, shapes), or one that already carries adapters.
    """
    if freeze not in FREEZE_TO_TRAIN:
        raise ValueError(f"freeze={freeze!r} is invalid: allowed values are None, 'A', 'B'")
    data, factors, others = read_peft(directory)
    if any(isinstance(m, AdaptedLinear) for m in base_model.modules()):
        raise ValueError("the base model already has asymlora adapters; import into a fresh base model")

    modules = dict(base_model.named_modules())
    ordered = [n for n in modules if n in factors] + [n for n in factors if n not in modules]
    for name in ordered:  # check the base (in model order) before touching it
        pair = factors[name]
        module = modules.get(name)
        if module is None or weight_layout(module) is None:
            what = "no module" if module is None else f"a {type(module).__name__}, not a linear layer, at"
            raise ValueError(f"base model mismatch: the PEFT adapter adapts {name!r} but the base model has {what} "
                             f"{name!r}")
        shape = tuple(dense_weight(module).shape)
        wanted = (pair["B"].shape[0], pair["A"].shape[1])
        if shape != wanted:
            raise ValueError(f"base model mismatch at module {name!r}: weight is {shape[0]}×{shape[1]} (d_out×d_in) "
                             f"but the PEFT adapter expects {wanted[0]}×{wanted[1]}")
    parameters = dict(base_model.named_parameters())
    for key, value in others.items():
        if key not in parameters or tuple(parameters[key].shape) != tuple(value.shape):
            raise ValueError(f"base model mismatch: the PEFT adapter's {key!r} {tuple(value.shape)} has no "
                             f"parameter of that shape in the base model")

    names = ordered
    rank = data["r"]
    rslora = bool(data.get("use_rslora", False))
    ranks = {n: factors[n]["A"].shape[0] for n in names}
    saved_modules = sorted({k.rsplit(".", 1)[0] for k in others})
    declared = [s for s in (data.get("modules_to_save") or []) if any(
        m == s or m.endswith("." + s) for m in saved_modules)]
    uncovered = [m for m in saved_modules if not any(m == s or m.endswith("." + s) for s in declared)]
    probe = AdapterConfig(rank=rank, alpha=float(data["lora_alpha"]), dropout=float(data.get("lora_dropout") or 0.0),
                          train=FREEZE_TO_TRAIN[freeze], init_A="kaiming", init_B="zero",
                          rank_pattern={re.escape(n): r for n, r in ranks.items() if r != rank},
                          use_rslora=rslora, modules_to_save=declared + uncovered)
    config = AdapterConfig.from_dict({**probe.to_dict(), "targets": _choose_targets(base_model, data, names, probe)})

    inject(base_model, config)
    tensors, scalings = {}, {}
    for name in names:
        alpha = float(_pattern_value(data.get("alpha_pattern"), name, data["lora_alpha"]))
        scalings[name] = alpha / _rank_divisor(ranks[name], rslora)
        for factor in "AB":
            tensors[f"{name}.{factor}"] = factors[name][factor].to(torch.float32)
    tensors.update({k: v.to(parameters[k].dtype) for k, v in others.items()})
    assign_tensors(base_model, tensors, sorted(others), scalings)
    for module in adapted_modules(base_model).values():
        module.recipes.clear()  # the imported frozen factor is data, not a draw from a recipe
    return base_model
