"""The adapter file format: typed records, and the one reader (which verifies every hash).

An adapter folder holds two files::

    adapter_config.json   AdapterMeta as JSON: format name and version, the asymlora version, the
                          AdapterConfig, per module its shape / rank / scaling / trained factors and,
                          per frozen factor, its recipe, the SHA-256 of the tensor and whether the
                          tensor is stored; the names of the modules_to_save tensors; the base-model
                          fingerprint; the tensor file's name, SHA-256 and size.
    adapter.safetensors   the trained tensors ``"<module>.B"`` (and ``.A`` when trained), the
                          modules_to_save parameters under their own names, and the frozen factors
                          that are stored (``FrozenFactor.stored``).

Format versions: 2 is written. 1 (asymlora 0.1.0) is read too; the layout is the same, and a
format-1 ``svd`` recipe means LAPACK's unnormalised singular-vector signs (read as the legacy
initialiser ``svd_format1``). Format 2 normalises the signs and stores ``svd`` factors.

:func:`read_adapter` checks the format, the tensor file's SHA-256, the tensor names, and the
SHA-256 of every frozen factor: stored ones as read, recipe-only ones as regenerated. A recipe that
reads the pretrained weight (only format-1 ``svd`` files have such factors unstored) can be checked
only with the base model: :meth:`AdapterFile.resolve_frozen` does that.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.fingerprint import BaseFingerprint, pretrained_weight, tensor_sha256
from asymlora.adapters.recipe import Recipe

FORMAT_NAME = "asymlora-adapter"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"


def asymlora_version() -> str:
    try:
        return metadata.version("asymlora")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class FrozenFactor:
    """One frozen factor: how it was drawn (None when imported), its SHA-256, whether it is stored."""

    recipe: Recipe | None
    sha256: str
    stored: bool

    def describe(self) -> str:
        return f"{self.recipe.init}, seed {self.recipe.seed}" if self.recipe else "stored tensor"


@dataclass
class ModuleEntry:
    """One adapted module: weight shape (d_out, d_in), rank, scaling s, trained factors ("B", "A"
    or "AB") and ``{factor: FrozenFactor}`` for the others."""

    shape: tuple[int, int]
    rank: int
    scaling: float
    trained: str
    frozen: dict[str, FrozenFactor] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightsRecord:
    """The tensor file: name, SHA-256 of its bytes, size in bytes."""

    file: str
    sha256: str
    bytes: int


@dataclass
class AdapterMeta:
    """Everything ``adapter_config.json`` says (see the module docstring)."""

    config: AdapterConfig
    modules: dict[str, ModuleEntry]
    modules_to_save: list[str]
    base_model: BaseFingerprint
    asymlora_version: str = field(default_factory=asymlora_version)
    format_version: int = FORMAT_VERSION
    weights: WeightsRecord | None = None

    def factor_keys(self) -> set[str]:
        """Every ``"<module>.A"`` / ``"<module>.B"`` name, trained or frozen."""
        return {f"{name}.{f}" for name in self.modules for f in "AB"}

    def trained_keys(self) -> list[str]:
        return [f"{name}.{f}" for name, entry in self.modules.items() for f in entry.trained]

    def expected_keys(self) -> set[str]:
        """The tensor names the tensor file must hold."""
        keys = set(self.modules_to_save) | set(self.trained_keys())
        for name, entry in self.modules.items():
            keys |= {f"{name}.{f}" for f, frozen in entry.frozen.items() if frozen.stored}
        return keys

    def to_dict(self) -> dict:
        modules = {}
        for name, entry in self.modules.items():
            modules[name] = {"shape": list(entry.shape), "rank": entry.rank, "scaling": entry.scaling,
                             "trained": entry.trained,
                             "frozen": {f: {"recipe": fr.recipe.to_dict() if fr.recipe else None,
                                            "sha256": fr.sha256, "stored": fr.stored}
                                        for f, fr in entry.frozen.items()}}
        data = {"format": FORMAT_NAME, "format_version": self.format_version,
                "asymlora_version": self.asymlora_version, "config": self.config.to_dict(), "modules": modules,
                "modules_to_save": list(self.modules_to_save), "base_model": self.base_model.to_dict()}
        if self.weights is not None:
            data["weights"] = {"file": self.weights.file, "sha256": self.weights.sha256, "bytes": self.weights.bytes}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AdapterMeta":
        """Parse (KeyError / TypeError / ValueError on a missing or malformed field)."""
        version = int(data["format_version"])
        modules = {}
        for name, entry in data["modules"].items():
            frozen = {str(f): FrozenFactor(Recipe.from_dict(fr["recipe"], version) if fr["recipe"] else None,
                                           str(fr["sha256"]), bool(fr["stored"]))
                      for f, fr in entry["frozen"].items()}
            shape = entry["shape"]
            modules[str(name)] = ModuleEntry((int(shape[0]), int(shape[1])), int(entry["rank"]),
                                             float(entry["scaling"]), str(entry["trained"]), frozen)
        weights = data.get("weights")
        return cls(config=AdapterConfig.from_dict(data["config"]), modules=modules,
                   modules_to_save=[str(k) for k in data["modules_to_save"]],
                   base_model=BaseFingerprint.from_dict(data["base_model"]),
                   asymlora_version=str(data.get("asymlora_version", "unknown")), format_version=version,
                   weights=WeightsRecord(str(weights["file"]), str(weights["sha256"]), int(weights["bytes"]))
                   if isinstance(weights, dict) else None)


@dataclass
class AdapterFile:
    """An adapter in memory: ``meta``, the file's ``tensors``, and ``frozen``: every frozen factor
    whose SHA-256 has been verified (stored or regenerated), ``{"<module>.<factor>": tensor}``."""

    meta: AdapterMeta
    tensors: dict[str, torch.Tensor]
    frozen: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def config(self) -> AdapterConfig:
        return self.meta.config

    def resolve_frozen(self, base_model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Regenerate and verify the frozen factors not yet in ``frozen`` (those whose recipe
        reads the pretrained weight need ``base_model``); returns ``frozen``."""
        for name, entry in self.meta.modules.items():
            for factor, record in entry.frozen.items():
                key = f"{name}.{factor}"
                if key in self.frozen:
                    continue
                if record.stored:
                    tensor = self.tensors[key]
                    if tensor_sha256(tensor) != record.sha256:
                        raise ValueError(f"adapter file is corrupt: stored frozen factor {key} does not match its "
                                         f"SHA-256")
                    self.frozen[key] = tensor
                    continue
                recipe = record.recipe
                if recipe is None:
                    raise ValueError(f"adapter file is corrupt: frozen factor {key} has neither a recipe nor a tensor")
                if recipe.needs_weight:
                    if base_model is None:
                        continue
                    tensor = recipe.regenerate(pretrained_weight(base_model.get_submodule(name)))
                else:
                    tensor = recipe.regenerate()
                if tensor_sha256(tensor) != record.sha256:
                    raise ValueError(
                        f"frozen factor {key} regenerated from its recipe ({recipe.init}, seed {recipe.seed}) does "
                        f"not match the saved SHA-256 (different torch version or initialiser?); re-save the "
                        f"adapter with the factor stored: save_adapter(model, dir, store_frozen=True)")
                self.frozen[key] = tensor
        return self.frozen


# ---------------------------------------------------------------------------- bytes
def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors serialisation of ``tensors`` (imported here: the adapters layer imports
    only torch at module level), byte-for-byte deterministic.

    safetensors writes ``__metadata__`` from a hash map whose order changes from call to call, so
    two saves of the same adapter could differ in their header (and SHA-256). The header is
    rewritten with the metadata keys sorted: same JSON, same tensors and offsets, a stable byte
    string. Layout: 8-byte little-endian header length, the JSON header padded with spaces to a
    multiple of 8 bytes, then the tensor data (offsets count from the data's start).
    """
    import struct

    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    if not metadata or len(metadata) < 2:
        return data
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + length:]


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (not an adapter folder?); give the folder that holds {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupt file: {err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an adapter config (expected a JSON object)")
    return data


def read_safetensors(path: Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; copy the whole adapter folder (both files)")
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"{path} is truncated or corrupt: its SHA-256 differs from the one recorded in "
                         f"{CONFIG_FILE} ({len(data)} bytes); copy or save the adapter again")
    try:
        return safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is truncated or corrupt: not a readable safetensors file ({reason}); copy or "
                         "save the adapter again") from None


def read_meta(directory: str | os.PathLike) -> AdapterMeta:
    """Read and parse ``adapter_config.json`` of an adapter folder (no tensor read)."""
    folder = Path(directory)
    if not folder.exists():
        raise FileNotFoundError(f"adapter folder {folder} does not exist; give the folder that holds "
                                f"{CONFIG_FILE} and {WEIGHTS_FILE}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    data = read_json(folder / CONFIG_FILE)
    if "peft_type" in data:
        raise ValueError(f"{folder} is a PEFT adapter folder; read it with asymlora.import_peft(base, {str(folder)!r})")
    if data.get("format") != FORMAT_NAME:
        raise ValueError(f"{folder / CONFIG_FILE} is not an asymlora adapter config (no format {FORMAT_NAME!r})")
    version = data.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{folder / CONFIG_FILE} has format version {version!r}; this asymlora "
                         f"({asymlora_version()}) reads versions {', '.join(map(str, READABLE_VERSIONS))}; upgrade asymlora to read it")
    try:
        meta = AdapterMeta.from_dict(data)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: missing or invalid field {err}") from None
    except ValueError as err:
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: {err}") from None
    if meta.weights is None:
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: no SHA-256 of {WEIGHTS_FILE}")
    if meta.weights.file != WEIGHTS_FILE:  # the reader opens WEIGHTS_FILE only; a path elsewhere is refused
        raise ValueError(f"{folder / CONFIG_FILE} is corrupt: its tensor file {meta.weights.file!r} is not a file name "
                         f"inside the adapter folder; the tensors must be in {WEIGHTS_FILE} beside it")
    return meta


def read_adapter(directory: str | os.PathLike, base_model: nn.Module | None = None) -> AdapterFile:
    """Read an adapter folder and verify every hash (see the module docstring).

    Args:
        directory (str | os.PathLike): a folder written by :func:`asymlora.save_adapter`.
        base_model (nn.Module | None): needed only to verify frozen factors whose recipe reads the
            pretrained weight and that the file does not store (format-1 ``svd`` files); without it
            they are left out of ``AdapterFile.frozen``.

    Returns:
        AdapterFile: the metadata (``meta``: config, per-module entries, base-model fingerprint), the
        stored tensors (``tensors``) and the frozen factors regenerated from their recipes (``frozen``).

    Raises:
        FileNotFoundError: the folder or one of its two files is missing.
        NotADirectoryError: ``directory`` is not a folder.
        ValueError: a file is corrupt (hash, JSON, fields, tensor names), a PEFT folder, or of another
            format version.
    """
    from asymlora.atomic import recover_folder

    folder = Path(directory)
    recover_folder(folder)  # a save cut short between its two renames: the previous adapter comes back
    meta = read_meta(folder)
    tensors = read_safetensors(folder / WEIGHTS_FILE, meta.weights.sha256)
    expected = meta.expected_keys()
    missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or extra:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        raise ValueError(f"{folder / WEIGHTS_FILE} does not match {CONFIG_FILE}: {what}")
    state = AdapterFile(meta, tensors)
    state.resolve_frozen(base_model)
    return state


def folder_bytes(state: AdapterFile) -> tuple[bytes, str]:
    """``(tensor file bytes, config JSON text)`` for ``state`` (the config records the bytes' hash)."""
    data = safetensors_bytes(state.tensors, metadata={"format": "pt", "asymlora_format": str(FORMAT_VERSION)})
    state.meta.weights = WeightsRecord(WEIGHTS_FILE, hashlib.sha256(data).hexdigest(), len(data))
    return data, json.dumps(state.meta.to_dict(), indent=2) + "\n"
