"""Serve-safe export: a PEFT LoRA folder that vLLM, SGLang and stock PEFT all apply exactly.

For every adapted module with frozen/trained factors ``A`` (r_m × d_in), ``B`` (d_out × r_m) and
scaling ``s_m`` (ours: ``y = W0 x + s_m · B A x``), the folder holds, at one rank ``R``::

    lora_A = [A ; 0]           (R × d_in)     zero rows below A
    lora_B = [s_m · B , 0]     (d_out × R)    the scaling folded into B, zero columns

and the config says ``r = lora_alpha = R`` (scaling 1 in every engine), ``use_rslora: false``, no
``rank_pattern`` / ``alpha_pattern``, ``init_lora_weights: true``, ``bias: "none"``, explicit
``target_modules`` (leaf names when they select exactly the adapted modules, else full paths) and
``task_type`` from the model class. Then ``lora_B lora_A = s_m B A`` exactly (the zero blocks add
nothing), whatever an engine does with ``use_rslora`` or patterns. ``R`` is the largest module
rank, or ``pad_rank`` (for vLLM one of its ``--max-lora-rank`` values). ``modules_to_save`` (a
trained head) is written only for engines that load it (PEFT); the others are refused with the way
out. Tensor names are ``base_model.model.<module path>.lora_A.weight`` / ``.lora_B.weight``, the
module paths of the model exported from; the written folder is checked with the engine's own rules
(:func:`asymlora.adapters.engine_check.check_view`) before it is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from asymlora.adapters.adapter_file import safetensors_bytes
from asymlora.adapters.engine_check import PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, check_view, model_view
from asymlora.adapters.engines import PREFIX, AdapterView, Engine, get_engine, peft_selects
from asymlora.adapters.inject import adapted_modules, adapter_config
from asymlora.adapters.io import load_adapter, saved_module_parameters
from asymlora.adapters.merged import atomic_folder
from asymlora.adapters.peft_interop import peft_config_dict

#: Model class-name endings -> PEFT task_type (first match wins; encoder-decoder generation is SEQ_2_SEQ_LM).
TASK_TYPES = (("ForSequenceClassification", "SEQ_CLS"), ("ForTokenClassification", "TOKEN_CLS"),
              ("ForQuestionAnswering", "QUESTION_ANS"), ("ForCausalLM", "CAUSAL_LM"), ("LMHeadModel", "CAUSAL_LM"),
              ("ForSeq2SeqLM", "SEQ_2_SEQ_LM"))


@dataclass(frozen=True)
class ExportResult:
    """What was written: the folder, the engine, the rank R, the module count, the task type, and how
    to serve it."""

    folder: Path
    engine: str
    rank: int
    modules: int
    task_type: str | None
    serve: str


def task_type_of(model: nn.Module) -> str | None:
    """PEFT's ``task_type`` for ``model`` from its class name (None: a bare backbone).

    ``*ForConditionalGeneration`` is ``SEQ_2_SEQ_LM`` when the config is encoder-decoder.
    """
    name = type(model).__name__
    for ending, task in TASK_TYPES:
        if name.endswith(ending):
            return task
    if name.endswith("ForConditionalGeneration"):
        encoder_decoder = getattr(getattr(model, "config", None), "is_encoder_decoder", False)
        return "SEQ_2_SEQ_LM" if encoder_decoder else "CAUSAL_LM"
    return None


def export_rank(ranks: list[int], engine: Engine, pad_rank: int | None) -> int:
    """The rank ``R`` every module is written at: ``pad_rank`` or the largest module rank.

    Raises:
        ValueError: ``pad_rank`` below a module's rank, or not one of the engine's allowed values.
    """
    largest = max(ranks)
    if pad_rank is None:
        return largest
    if pad_rank < largest:
        raise ValueError(f"--pad-rank {pad_rank} is below the adapter's rank {largest}; give --pad-rank >= {largest}")
    if engine.max_ranks is not None and pad_rank not in engine.max_ranks:
        allowed = ", ".join(str(r) for r in engine.max_ranks if r >= largest)
        raise ValueError(f"--pad-rank {pad_rank} is not a {engine.title} --max-lora-rank value; choose one of "
                         f"{allowed}")
    return pad_rank


def _targets(names: list[str], linear_paths: frozenset[str]) -> list[str]:
    """Leaf names when they select exactly ``names`` among the model's linear layers (PEFT's suffix
    rule), else the full module paths."""
    leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
    selected = {p for p in linear_paths if peft_selects(p, leaves)}
    return leaves if selected == set(names) else sorted(names)


def _factors(model: nn.Module, rank: int) -> dict[str, torch.Tensor]:
    """``{name: tensor}``: every module's ``[A ; 0]`` and ``[s B , 0]`` at ``rank`` (fp32, CPU)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in adapted_modules(model).items():
        a = module.A.detach().to("cpu", torch.float32)
        b = module.B.detach().to("cpu", torch.float32) * float(module.scaling)
        pad = rank - a.shape[0]
        tensors[f"{PREFIX}{name}.lora_A.weight"] = torch.cat([a, a.new_zeros(pad, a.shape[1])]).contiguous()
        tensors[f"{PREFIX}{name}.lora_B.weight"] = torch.cat([b, b.new_zeros(b.shape[0], pad)], 1).contiguous()
    return tensors


def _saved(model: nn.Module, engine: Engine) -> dict[str, torch.Tensor]:
    """The ``modules_to_save`` parameters under PEFT's names (refused for engines that cannot load them)."""
    config = adapter_config(model)
    saved = saved_module_parameters(model, config)
    if saved and not engine.saves_modules:
        heads = sorted({key.rsplit(".", 1)[0] for key in saved})
        raise ValueError(f"the adapter trains {', '.join(heads)} (modules_to_save), which {engine.title} cannot load "
                         f"(vLLM issue 9280); export --for peft, or serve the merged model "
                         f"(asymlora.save_merged(model, dir)) instead of an adapter")
    names = adapted_modules(model)
    for key in saved:
        if any(key.startswith(f"{name}.") for name in names):
            raise ValueError(f"cannot export {key!r}: a modules_to_save module contains an adapted module, "
                             f"which PEFT cannot express")
    return {f"{PREFIX}{key}": value.detach().to("cpu").contiguous() for key, value in saved.items()}


def export_for(model: nn.Module | str | os.PathLike, engine: str, directory: str | os.PathLike,
               pad_rank: int | None = None, base_model: nn.Module | None = None) -> ExportResult:
    """Write an adapter as a PEFT LoRA folder that ``engine`` serves exactly (see the module docstring).

    Args:
        model (nn.Module | str | os.PathLike): a model carrying asymlora adapters, or an asymlora
            adapter folder (then ``base_model`` is required: it is loaded onto it, hashes checked).
        engine (str): ``vllm``, ``sglang`` or ``peft``.
        directory (str | os.PathLike): the folder to write (created or replaced, atomically).
        pad_rank (int | None): write every module at this rank (zero padding); None: the largest rank.
        base_model (nn.Module | None): the fresh base model, when ``model`` is a folder.

    Returns:
        ExportResult: the folder, rank, module count, task type and how to serve it.

    Raises:
        ValueError: an unknown engine, a folder without ``base_model``, no adapters, a trained head the engine cannot load, a bad
            ``pad_rank``, or a folder the engine's own rules would refuse.
    """
    record = get_engine(engine)
    if isinstance(model, (str, os.PathLike)):
        if base_model is None:
            raise ValueError(f"export_for({str(model)!r}, ...) needs base_model=: the fresh model the adapter was "
                             f"trained on")
        model = load_adapter(base_model, model)
    modules = adapted_modules(model)
    rank = export_rank([m.rank for m in modules.values()], record, pad_rank)
    saved = _saved(model, record)
    seen = model_view(model)
    data = peft_config_dict(model)
    data.update(r=rank, lora_alpha=rank, use_rslora=False, rank_pattern={}, alpha_pattern={}, bias="none",
                init_lora_weights=True, target_modules=_targets(list(modules), seen.linear_paths),
                task_type=task_type_of(model), inference_mode=True,
                modules_to_save=sorted({k[len(PREFIX):].rsplit(".", 1)[0] for k in saved}) or None)
    tensors = {**_factors(model, rank), **saved}
    report = check_view(AdapterView(data, {k: tuple(v.shape) for k, v in tensors.items()}), record, model)
    weights = safetensors_bytes(tensors, metadata={"format": "pt"})
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with atomic_folder(directory) as temporary:
        (temporary / PEFT_WEIGHTS_FILE).write_bytes(weights)
        (temporary / PEFT_CONFIG_FILE).write_text(text)
    return ExportResult(Path(directory), record.name, rank, report.modules, data["task_type"], report.serve)
