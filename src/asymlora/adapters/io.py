"""Adapters as files: the trained factor is data, the frozen factor is a recipe.

An adapter folder holds two files::

    adapter_config.json   what the adapter is: the AdapterConfig, the asymlora version, the format
                          version, per module its shape / rank / scaling and, per frozen factor, its
                          recipe (init, seed, module, factor, shape, dtype) with the SHA-256 of the
                          tensor it regenerates; a fingerprint of the base model (the target modules'
                          names and shapes and the SHA-256 of a few pretrained weights); the SHA-256
                          of the tensor file.
    adapter.safetensors   ONLY the trained tensors: ``"<module name>.B"`` (and ``.A`` when trained),
                          plus the ``modules_to_save`` parameters under their own names. A frozen
                          factor is written only when asked (``store_frozen=True``) or when it has no
                          recipe (e.g. a frozen factor imported from PEFT).

With A frozen (``train="B"``) the file therefore holds ``d_out · r`` numbers per module instead of
LoRA's ``(d_in + d_out) · r``: half for square layers.

Writes are atomic: the tensor file first, then the config (temporary name, then rename). The
config records the tensor file's SHA-256, so a folder caught between the two writes reads as
corrupt instead of silently mixing two adapters. Only safetensors is ever read.

Public: :func:`save_adapter`, :func:`load_adapter`, :func:`save_merged`, :func:`fingerprint`,
:func:`tensor_sha256`, :func:`read_adapter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.init import FactorRequest, initialise, make_generator
from asymlora.adapters.inject import adapted_modules, adapter_config, find_targets, inject
from asymlora.adapters.linear import AdaptedLinear, dense_weight, weight_layout
from asymlora.atomic import atomic_write_bytes, atomic_write_text

FORMAT_NAME = "asymlora-adapter"
FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
#: How many pretrained weights the base fingerprint hashes (first, middle and last target).
FINGERPRINT_WEIGHTS = 3


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors serialisation of ``tensors`` (safetensors is imported here: the adapters
    layer imports only torch at module level)."""
    from safetensors.torch import save

    return save(tensors, metadata=metadata)


def asymlora_version() -> str:
    try:
        return metadata.version("asymlora")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# ---------------------------------------------------------------------------- hashing
def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 (hex) of a tensor's raw bytes in row-major order (CPU, native dtype, little endian).

    Shape and dtype are not part of the digest; the file records them beside it.
    """
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in the adapter file")
    return dtype


# ---------------------------------------------------------------------------- base weights
def pretrained_weight(module: nn.Module) -> torch.Tensor:
    """The pretrained ``W0`` of a linear or adapted module as a (d_out × d_in) tensor.

    For an :class:`AdaptedLinear` that is merged, ``W0`` is reconstructed exactly as
    :meth:`AdaptedLinear.unmerge` would (fp32 subtraction of the delta, then the remembered
    corrections), without modifying the module.
    """
    if not isinstance(module, AdaptedLinear):
        return dense_weight(module).detach()
    weight = module.base.weight.detach()
    if module.merged:
        restored = (weight.float() - module._delta_in_layout().to(weight.device)).to(weight.dtype)
        if module._unmerge_index is not None:
            restored.reshape(-1)[module._unmerge_index] = module._unmerge_value
        weight = restored
    return weight if weight_layout(module.base) == "out_in" else weight.t()


def _fingerprint_names(names: list[str]) -> list[str]:
    if not names:
        return []
    picks = [names[0], names[len(names) // 2], names[-1]][:FINGERPRINT_WEIGHTS]
    return list(dict.fromkeys(picks))


def fingerprint(model: nn.Module, names: list[str] | None = None) -> dict:
    """The base-model fingerprint an adapter file records.

    ``{"modules": {name: [d_out, d_in]}, "weights": {name: {"sha256", "dtype"}}}`` over the target
    modules ``names`` (default: the model's adapted modules); the weights hashed are the first,
    middle and last target's pretrained ``W0`` (unmerged, d_out × d_in, native dtype).
    """
    if names is None:
        names = list(adapted_modules(model))
    shapes, weights = {}, {}
    for name in names:
        module = model.get_submodule(name)
        shapes[name] = list(dense_weight(module.base if isinstance(module, AdaptedLinear) else module).shape)
    for name in _fingerprint_names(names):
        weight = pretrained_weight(model.get_submodule(name))
        weights[name] = {"sha256": tensor_sha256(weight), "dtype": _dtype_name(weight.dtype)}
    return {"modules": shapes, "weights": weights}


# ---------------------------------------------------------------------------- frozen factors
def frozen_factors(module: AdaptedLinear) -> tuple[str, ...]:
    """Every factor that is not trained, with or without a recipe (``"AB"`` minus ``train_mode``)."""
    return tuple(f for f in "AB" if f not in module.train_mode)


def regenerate(recipe: dict, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The frozen factor a recipe describes, on the CPU in the recipe's dtype.

    ``weight`` is the pretrained W0 (d_out × d_in), needed only by the ``svd`` initialiser.
    """
    needs_weight = recipe["init"] == "svd"
    cpu_weight = weight.detach().to("cpu", torch.float32) if needs_weight and weight is not None else None
    request = FactorRequest(recipe["factor"], tuple(recipe["shape"]),
                            make_generator(recipe["seed"], recipe["module"], recipe["factor"]),
                            cpu_weight, recipe["module"])
    return initialise(recipe["init"], request).to(_dtype(recipe.get("dtype", "float32")))


# ---------------------------------------------------------------------------- in-memory form
@dataclass
class AdapterFile:
    """An adapter folder's content in memory: ``meta`` (the JSON) and ``tensors`` (the file)."""

    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def config(self) -> AdapterConfig:
        return AdapterConfig.from_dict(self.meta["config"])


def _suffix_match(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def saved_module_parameters(model: nn.Module, config: AdapterConfig) -> dict[str, torch.Tensor]:
    """``{parameter name: tensor}`` of every ``modules_to_save`` module (e.g. a trained head),
    adapter factors excluded (they are saved as factors)."""
    factor_keys = {f"{name}.{f}" for name in adapted_modules(model) for f in "AB"}
    found: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if name and any(_suffix_match(name, s) for s in config.modules_to_save):
            for pname, parameter in module.named_parameters():
                key = f"{name}.{pname}"
                if key not in factor_keys:
                    found[key] = parameter
    return found


def adapter_file(model: nn.Module, store_frozen: bool = False) -> AdapterFile:
    """What :func:`save_adapter` would write for ``model``, without writing it.

    A frozen factor with a recipe is checked against its regeneration; if it differs (the buffer
    was edited) it is stored, with a warning, rather than described by a recipe that lies.
    """
    config = adapter_config(model)
    modules = adapted_modules(model)
    if not modules:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    tensors: dict[str, torch.Tensor] = {}
    described: dict[str, dict] = {}
    for name, module in modules.items():
        entry = {"shape": [module.out_features, module.in_features], "rank": module.rank,
                 "scaling": module.scaling, "trained": module.train_mode, "frozen": {}}
        for factor in module.train_mode:
            tensors[f"{name}.{factor}"] = getattr(module, factor).detach()
        for factor in frozen_factors(module):
            buffer = getattr(module, factor).detach()
            recipe = dict(module.recipes[factor]) if factor in module.recipes else None
            stored = store_frozen or recipe is None
            if recipe is not None:
                recipe["dtype"] = _dtype_name(buffer.dtype)
                weight = pretrained_weight(module) if recipe["init"] == "svd" else None
                if not stored and not torch.equal(regenerate(recipe, weight), buffer.cpu()):
                    warnings.warn(f"frozen factor {name}.{factor} differs from its recipe "
                                  f"({recipe['init']}, seed {recipe['seed']}); storing it in the file")
                    stored = True
            if stored:
                tensors[f"{name}.{factor}"] = buffer
            entry["frozen"][factor] = {"recipe": recipe, "sha256": tensor_sha256(buffer), "stored": stored}
        described[name] = entry
    for key, parameter in saved_module_parameters(model, config).items():
        tensors[key] = parameter.detach()
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "asymlora_version": asymlora_version(),
        "config": config.to_dict(),
        "modules": described,
        "modules_to_save": sorted(set(tensors) - _factor_keys(described)),
        "base_model": {"class": type(model).__name__,
                       "name_or_path": getattr(getattr(model, "config", None), "_name_or_path", None),
                       **fingerprint(model, list(modules))},
    }
    return AdapterFile(meta, {k: v.to("cpu").contiguous() for k, v in tensors.items()})


def _factor_keys(described: dict) -> set[str]:
    return {f"{name}.{f}" for name in described for f in "AB"}


def expected_keys(meta: dict) -> set[str]:
    """The tensor names a file with this ``meta`` must contain."""
    keys = set(meta["modules_to_save"])
    for name, entry in meta["modules"].items():
        keys |= {f"{name}.{f}" for f in entry["trained"]}
        keys |= {f"{name}.{f}" for f, frozen in entry["frozen"].items() if frozen["stored"]}
    return keys


# ---------------------------------------------------------------------------- save
def save_adapter(model: nn.Module, directory: str | os.PathLike, store_frozen: bool = False) -> Path:
    """Write ``model``'s adapter to ``directory`` (created); returns the folder.

    Only trained tensors go into ``adapter.safetensors`` (plus frozen ones with ``store_frozen`` or
    without a recipe); frozen factors are recorded as recipe + SHA-256. Works on merged models
    (the fingerprint uses the exactly-reconstructed pretrained weights).
    """
    state = adapter_file(model, store_frozen=store_frozen)
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    data = safetensors_bytes(state.tensors, metadata={"format": "pt", "asymlora_format": str(FORMAT_VERSION)})
    meta = dict(state.meta)
    meta["weights"] = {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    atomic_write_bytes(folder / WEIGHTS_FILE, data)
    atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return folder


# ---------------------------------------------------------------------------- read
def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (not an adapter folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupt file: {err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an adapter config (expected a JSON object)")
    return data


def _read_safetensors(path: Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"{path} is truncated or corrupt: its SHA-256 differs from the one recorded in "
                         f"{CONFIG_FILE} ({len(data)} bytes)")
    try:
        return safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is truncated or corrupt: not a readable safetensors file ({err})") from None


def read_adapter(directory: str | os.PathLike) -> AdapterFile:
    """Read and validate an adapter folder (format, version, tensor file hash, tensor names)."""
    folder = Path(directory)
    if not folder.exists():
        raise FileNotFoundError(f"adapter folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    meta = _read_json(folder / CONFIG_FILE)
    if "peft_type" in meta:
        raise ValueError(f"{folder} is a PEFT adapter folder; read it with asymlora.import_peft(base, {str(folder)!r})")
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{folder / CONFIG_FILE} is not an asymlora adapter config (no format {FORMAT_NAME!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{folder / CONFIG_FILE} has format version {version!r}; this asymlora "
                         f"({asymlora_version()}) reads version {FORMAT_VERSION} only")
    try:
        weights = meta["weights"]
        for key in ("config", "modules", "modules_to_save", "base_model"):
            meta[key]  # noqa: B018 (presence check)
        AdapterConfig.from_dict(meta["config"])
        expected = expected_keys(meta)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: missing or invalid field {err}") from None
    if not isinstance(weights, dict) or not isinstance(weights.get("sha256"), str):
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: no SHA-256 of {WEIGHTS_FILE}")
    tensors = _read_safetensors(folder / WEIGHTS_FILE, weights["sha256"])
    missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or extra:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        raise ValueError(f"{folder / WEIGHTS_FILE} does not match {CONFIG_FILE}: {what}")
    return AdapterFile(meta, tensors)


# ---------------------------------------------------------------------------- load
def check_base(base_model: nn.Module, meta: dict, check_weights: bool = True) -> None:
    """Raise ValueError naming the first module where ``base_model`` differs from the adapter's base."""
    recorded = meta["base_model"]
    modules = dict(base_model.named_modules())
    for name, shape in recorded["modules"].items():
        module = modules.get(name)
        if module is None:
            raise ValueError(f"the base model has no module {name!r} that the adapter was trained on "
                             f"(base model class {type(base_model).__name__}, adapter's "
                             f"{recorded.get('class')})")
        if weight_layout(module) is None:
            raise ValueError(f"module {name!r} of the base model is a {type(module).__name__}, not a linear layer")
        actual = list(dense_weight(module).shape)
        if actual != list(shape):
            raise ValueError(f"base model mismatch at module {name!r}: weight is {actual[0]}×{actual[1]} "
                             f"(d_out×d_in) but the adapter was trained on {shape[0]}×{shape[1]}")
    if not check_weights:
        return
    for name, recorded_weight in recorded["weights"].items():
        weight = dense_weight(modules[name]).detach()
        if _dtype_name(weight.dtype) != recorded_weight["dtype"]:
            raise ValueError(f"base model mismatch at module {name!r}: weights are {_dtype_name(weight.dtype)} but "
                             f"the adapter was trained on {recorded_weight['dtype']} weights")
        if tensor_sha256(weight) != recorded_weight["sha256"]:
            raise ValueError(f"base model mismatch at module {name!r}: its pretrained weights differ from the "
                             f"ones the adapter was trained on (fingerprint SHA-256 differs)")


def _verify_frozen(base_model: nn.Module, state: AdapterFile) -> dict[str, torch.Tensor]:
    """Regenerate every recipe-only frozen factor and check its hash; ``{key: tensor}``."""
    regenerated = {}
    for name, entry in state.meta["modules"].items():
        for factor, frozen in entry["frozen"].items():
            key = f"{name}.{factor}"
            tensor = state.tensors[key] if frozen["stored"] else None
            if tensor is None:
                recipe = frozen["recipe"]
                if recipe is None:
                    raise ValueError(f"adapter file is corrupt: frozen factor {key} has neither a recipe nor a tensor")
                weight = dense_weight(base_model.get_submodule(name)) if recipe["init"] == "svd" else None
                tensor = regenerate(recipe, weight)
                if tensor_sha256(tensor) != frozen["sha256"]:
                    raise ValueError(
                        f"frozen factor {key} regenerated from its recipe ({recipe['init']}, seed {recipe['seed']}) "
                        f"does not match the saved SHA-256 (different torch version or initialiser?); re-save the "
                        f"adapter with the factor stored: save_adapter(model, dir, store_frozen=True)")
            elif tensor_sha256(tensor) != frozen["sha256"]:
                raise ValueError(f"adapter file is corrupt: stored frozen factor {key} does not match its SHA-256")
            regenerated[key] = tensor
    return regenerated


def assign_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Put trained factors, stored frozen factors and saved-module parameters into ``model``
    (keeping each tensor's dtype; device follows the module)."""
    modules = adapted_modules(model)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, entry in meta["modules"].items():
            module = modules[name]
            for factor in "AB":
                key = f"{name}.{factor}"
                if key not in tensors:
                    continue
                current = getattr(module, factor)
                value = tensors[key]
                if tuple(value.shape) != tuple(current.shape):
                    raise ValueError(f"tensor {key} has shape {tuple(value.shape)}, the model expects "
                                     f"{tuple(current.shape)}")
                if isinstance(current, nn.Parameter):
                    current.data = value.to(current.device).clone()
                else:
                    setattr(module, factor, value.to(current.device).clone())
            if entry.get("scaling") is not None:
                module.scaling = float(entry["scaling"])
            for factor, frozen in entry.get("frozen", {}).items():
                if frozen.get("recipe") is None:
                    module.recipes.pop(factor, None)
        for key in meta["modules_to_save"]:
            parameter = parameters.get(key)
            if parameter is None:
                raise ValueError(f"the model has no parameter {key!r} (modules_to_save) for the adapter file")
            value = tensors[key]
            if tuple(value.shape) != tuple(parameter.shape):
                raise ValueError(f"tensor {key} has shape {tuple(value.shape)}, the model expects "
                                 f"{tuple(parameter.shape)}")
            parameter.data = value.to(parameter.device).clone()


def load_adapter(base_model: nn.Module, directory: str | os.PathLike, check_weights: bool = True) -> nn.Module:
    """Inject the adapter saved in ``directory`` into ``base_model`` (in place) and return it.

    Everything is checked before the model is touched: format and version, the tensor file's
    SHA-256, the base model's target modules and shapes, the fingerprint of its pretrained
    weights (skip with ``check_weights=False``), and every regenerated frozen factor's SHA-256.
    """
    state = read_adapter(directory)
    meta = state.meta
    config = state.config
    if any(isinstance(m, AdaptedLinear) for m in base_model.modules()):
        raise ValueError("the base model already has asymlora adapters; load into a fresh base model")
    check_base(base_model, meta, check_weights=check_weights)
    targets = find_targets(base_model, config)
    recorded = list(meta["modules"])
    if set(targets) != set(recorded):
        extra = sorted(set(targets) - set(recorded))
        missing = sorted(set(recorded) - set(targets))
        detail = f"{extra[0]!r} is targeted in the base model but not in the adapter" if extra else \
            f"{missing[0]!r} is in the adapter but not targeted in the base model"
        raise ValueError(f"base model mismatch: {detail}")
    parameters = dict(base_model.named_parameters())
    for key in meta["modules_to_save"]:
        if not any(key.startswith(f"{name}.") for name in recorded) and (
                key not in parameters or list(parameters[key].shape) != list(state.tensors[key].shape)):
            raise ValueError(f"base model mismatch: the adapter saves {key!r} {list(state.tensors[key].shape)} "
                             f"(modules_to_save) but the base model has no parameter of that name and shape")
    frozen = _verify_frozen(base_model, state)
    inject(base_model, config)
    for name, module in adapted_modules(base_model).items():
        for factor, entry in meta["modules"][name]["frozen"].items():
            if entry["recipe"] is not None and factor in module.recipes:
                expected = dict(module.recipes[factor], dtype=entry["recipe"]["dtype"])
                if expected != entry["recipe"]:
                    raise ValueError(f"adapter file is corrupt: the recipe of {name}.{factor} does not match its config")
    assign_tensors(base_model, {**state.tensors, **frozen}, meta)
    return base_model


# ---------------------------------------------------------------------------- merged export
@contextlib.contextmanager
def atomic_folder(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success its files replace ``directory``'s.

    A new ``directory`` appears in one rename; into an existing one each file is moved with an
    atomic replace (other files there are left alone). On failure nothing is changed.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield temporary
        if not target.exists():
            os.replace(temporary, target)
        else:
            for item in temporary.iterdir():
                if item.is_dir():
                    shutil.rmtree(target / item.name, ignore_errors=True)
                os.replace(item, target / item.name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with every adapter folded in and the wrappers removed:
    ``"<name>.base.weight"`` -> ``"<name>.weight"``, factor keys dropped. Plain-model names."""
    modules = adapted_modules(model)
    factor_keys = {f"{name}.{f}" for name in modules for f in "AB"}
    state = {}
    for key, value in model.state_dict().items():
        if key in factor_keys:
            continue
        for name in modules:
            if key.startswith(f"{name}.base."):
                key = f"{name}." + key[len(name) + len(".base."):]
                break
        state[key] = value
    return state


def save_merged(model: nn.Module, directory: str | os.PathLike, **save_kwargs) -> Path:
    """Write a plain transformers folder with the adapter merged in (``from_pretrained`` loads it
    without asymlora). The model is left as it was (merged or not; unmerge is bit-exact)."""
    if not hasattr(model, "save_pretrained"):
        raise ValueError(f"save_merged needs a transformers model (has save_pretrained); got {type(model).__name__}")
    modules = adapted_modules(model)
    if not modules:
        raise ValueError("the model has no asymlora adapters (call asymlora.inject first)")
    was_merged = {name: m.merged for name, m in modules.items()}
    for module in modules.values():
        module.merge()
    try:
        state = {k: v.detach().clone() for k, v in merged_state_dict(model).items()}
    finally:
        for name, module in modules.items():
            if not was_merged[name]:
                module.unmerge()
    with atomic_folder(directory) as temporary:
        model.save_pretrained(temporary, state_dict=state, **save_kwargs)
    return Path(directory)

