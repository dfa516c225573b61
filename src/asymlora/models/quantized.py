"""Load a causal LM with its linear layers quantized to 8 or 4 bits (QLoRA-style bases).

Two backends, a registry of :class:`QuantizedLoader` keyed by ``(backend, bits)``:

==================  ====  =======================================================================
backend             bits  how
==================  ====  =======================================================================
``bitsandbytes``    4     transformers' ``BitsAndBytesConfig(load_in_4bit=True, nf4, double quant)``;
                          ``Linear4bit`` layers, compute dtype fp32 (bitsandbytes ≥ 0.46 runs NF4 on CPU)
``bitsandbytes``    8     ``BitsAndBytesConfig(load_in_8bit=True)``: ``Linear8bitLt`` (LLM.int8; on CPU
                          the input is cast to fp16 inside the layer)
``torchao``         8     fp32 load, then ``quantize_(model, Int8WeightOnlyConfig())`` on every linear
                          layer except the output head: ``Int8Tensor`` weights
``torchao``         4     ``quantize_(model, IntxWeightOnlyConfig(torch.int4, PerGroup(32)))``: int4 values
                          stored one per byte (``IntxUnpackedToInt8Tensor``); torchao's packed
                          ``Int4WeightOnlyConfig`` needs its CUDA kernels (the ``mslk`` package) and
                          does not run on CPU
==================  ====  =======================================================================

``bits=32`` loads the plain fp32 base. A missing quantization package is bad input (one line: which
package, how to install it), found before anything is loaded; so is a model folder whose
``config.json`` says it was saved quantized by a package that is not installed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asymlora.errors import UserError

#: The pinned versions (pyproject's dev extra), for the install hint.
PINS = {"bitsandbytes": "bitsandbytes==0.50.2", "torchao": "torchao==0.18.0"}
#: ``quantization_config.quant_method`` of a saved folder -> the package that reads it.
SAVED_METHODS = {"bitsandbytes": "bitsandbytes", "torchao": "torchao", "gptq": "gptqmodel", "awq": "autoawq",
                 "hqq": "hqq", "quanto": "optimum.quanto", "compressed-tensors": "compressed_tensors"}


@dataclass(frozen=True)
class QuantizedLoader:
    """How one ``(backend, bits)`` pair loads: the package it needs and ``load(path, config) -> model``."""

    backend: str
    bits: int
    package: str
    load: Callable[[str, object], object]


LOADERS: dict[tuple[str, int], QuantizedLoader] = {}


def _register(backend: str, bits: int, package: str):
    def decorate(load):
        LOADERS[(backend, bits)] = QuantizedLoader(backend, bits, package, load)
        return load
    return decorate


def require_package(package: str, what: str) -> None:
    """Raise UserError unless ``package`` is importable.

    Args:
        package (str): the import name (``bitsandbytes``, ``torchao``, ``optimum.quanto``, …).
        what (str): what needs it, for the message (``"a 4-bit bitsandbytes base"``).

    Raises:
        UserError: the package is not installed; the line names the install command.
    """
    root = package.split(".")[0]
    if importlib.util.find_spec(root) is None:
        hint = PINS.get(package, package.replace("_", "-"))
        raise UserError(f"{what} needs the {package} package, which is not installed; pip install {hint} "
                        f"(or load the base unquantized, bits 32)")


def check_saved_quantization(path: str | Path) -> None:
    """Refuse a model folder saved quantized when its quantization package is missing.

    Args:
        path (str | Path): a model folder (a hub id or a missing ``config.json`` is left to transformers).

    Raises:
        UserError: ``config.json`` has a ``quantization_config`` whose package is not installed.
    """
    config = Path(path) / "config.json"
    if not config.is_file():
        return
    quantization = json.loads(config.read_text()).get("quantization_config")
    if not isinstance(quantization, dict):
        return
    method = str(quantization.get("quant_method", "?"))
    require_package(SAVED_METHODS.get(method, method), f"model folder {str(path)!r} (saved quantized by {method})")


def _head_filter(model):
    """torchao's ``filter_fn``: every ``nn.Linear`` except the output head (often tied to the embeddings)."""
    from torch import nn

    head = model.get_output_embeddings()
    return lambda module, name: isinstance(module, nn.Linear) and module is not head


def _torchao(model, config):
    from torchao.quantization import quantize_

    quantize_(model, config, filter_fn=_head_filter(model))
    return model


def _from_pretrained(path: str, **kwargs):
    from asymlora.models.loading import load_for_causal_lm

    return load_for_causal_lm(path, **kwargs)


@_register("bitsandbytes", 4, "bitsandbytes")
def _bnb_4bit(path: str, compute_dtype):
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=compute_dtype)
    return _from_pretrained(path, quantization_config=config, device_map="cpu", dtype=compute_dtype)


@_register("bitsandbytes", 8, "bitsandbytes")
def _bnb_8bit(path: str, compute_dtype):
    from transformers import BitsAndBytesConfig

    return _from_pretrained(path, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cpu",
                            dtype=compute_dtype)


@_register("torchao", 8, "torchao")
def _ao_int8(path: str, compute_dtype):
    from torchao.quantization import Int8WeightOnlyConfig

    return _torchao(_from_pretrained(path, dtype=compute_dtype), Int8WeightOnlyConfig())


@_register("torchao", 4, "torchao")
def _ao_int4(path: str, compute_dtype):
    import torch
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))
    return _torchao(_from_pretrained(path, dtype=compute_dtype), config)


def check_request(bits: int, backend: str) -> QuantizedLoader | None:
    """The loader for ``bits`` on ``backend`` (None for bits 32: no quantization), checked cheaply.

    Raises:
        UserError: an unknown backend or bit width, or the backend's package is missing.
    """
    if bits == 32:
        return None
    loader = LOADERS.get((backend, bits))
    if loader is None:
        known = ", ".join(f"{b} {n}-bit" for b, n in LOADERS)
        raise UserError(f"no {bits}-bit loader for backend {backend!r}; choose one of: {known}, or bits 32")
    require_package(loader.package, f"a {bits}-bit {backend} base")
    return loader


def load_quantized_causal_lm(ref: str, bits: int, backend: str = "bitsandbytes", compute_dtype=None):
    """A causal LM whose linear layers (not the output head) are stored in ``bits`` bits.

    Args:
        ref (str): a registry name (``smollm2``, ``tiny-llama``), a model folder or a hub id.
        bits (int): 4, 8 or 32 (32: the plain fp32 model).
        backend (str): ``bitsandbytes`` or ``torchao`` (see the module docstring).
        compute_dtype (torch.dtype | None): the dtype the layers compute in (default fp32).

    Returns:
        transformers.PreTrainedModel: the model, frozen weights quantized, on the CPU.

    Raises:
        UserError: as :func:`check_request`, or :func:`check_saved_quantization` for the folder.
    """
    import torch

    from asymlora.models.loading import model_path

    loader = check_request(bits, backend)
    path = model_path(ref)
    check_saved_quantization(path)
    dtype = compute_dtype or torch.float32
    if loader is None:
        return _from_pretrained(path, dtype=dtype)
    return loader.load(path, dtype)
