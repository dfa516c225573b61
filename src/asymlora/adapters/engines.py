"""Serving engines as typed records: what each one's LoRA loader accepts, how it reads tensor names,
and which modules of a model it would actually apply an adapter to.

Each :class:`Engine` is our own re-implementation of the published loader rules (read from the
engines' source; no engine is imported):

* **vLLM** (``vllm/lora/peft_helper.py``, ``vllm/lora/utils.py``, ``vllm/config/lora.py``): the
  config is filtered to ``r``, ``lora_alpha``, ``target_modules``, ``bias``, ``modules_to_save``,
  ``use_rslora``, ``use_dora`` (so ``rank_pattern`` / ``alpha_pattern`` are dropped without a
  word); ``modules_to_save`` and DoRA are refused; the scaling is ``lora_alpha / r`` (rsLoRA only
  in newer versions); a tensor name loses ``base_model.model.`` and must end in
  ``lora_A.weight`` / ``lora_B.weight`` (or ``lora_embedding_A/B``, ``bias``); ``--max-lora-rank``
  is one of 1, 8, 16, 32, 64, 128, 256, 320, 512; the server's ``--lora-target-modules``
  restricts which modules get LoRA, and a module path that matches nothing is skipped silently.
* **SGLang** (``python/sglang/srt/lora/lora.py``, ``lora_config.py``, ``utils.py``): one scaling
  ``lora_alpha / r`` per adapter (``use_rslora`` and per-module patterns not applied);
  ``target_modules`` is a list of names or the string ``all`` / ``all-linear``; leaf names are
  normalised (``q_proj`` -> ``qkv_proj``, ``gate_proj`` -> ``gate_up_proj``) and must be modules
  its LoRA memory pool handles; weights are routed to a decoder layer by ``layers.<i>.`` in their
  name, and a weight outside a layer that is not ``embed_tokens`` / ``lm_head`` is not applied.
* **PEFT** (the reference): the adapter's ``target_modules`` select the modules (a list entry
  matches a module path equal to it or ending in ``.entry``; a string is a full-match regex), and
  a tensor of an unselected or missing module is an "unexpected key" (a warning, not an error).

A module "applies" when the engine would add ``s · B A x`` to that module of the model it serves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

PREFIX = "base_model.model."
#: vLLM's ``MaxLoRARanks`` (``vllm/config/lora.py``): the values ``--max-lora-rank`` accepts.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: SGLang's leaf-name normalisation (``get_normalized_target_modules``), linear layers only.
SGLANG_NORMALISED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "gate_proj": "gate_up_proj",
                     "up_proj": "gate_up_proj", "output": "lm_head", "unembed_tokens": "lm_head",
                     "q_a_proj": "fused_qkv_a_proj_with_mqa", "kv_a_proj_with_mqa": "fused_qkv_a_proj_with_mqa"}
#: Normalised names SGLang's LoRA pool handles (``_KNOWN_LORA_TARGET_MODULES``), linear layers only.
SGLANG_KNOWN = frozenset({"qkv_proj", "qkvr", "o_proj", "wo_ud", "out_proj", "in_proj", "in_proj_qkvz", "up_proj",
                          "gate_up_proj", "down_proj", "fc1_latent_proj", "fc2_latent_proj", "lm_head",
                          "fused_qkv_a_proj_with_mqa", "q_b_proj", "kv_b_proj"})
LAYER_INDEX = re.compile(r"layers\.(\d+)\.")


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class AdapterView:
    """What a loader reads from a PEFT LoRA folder: the ``adapter_config.json`` object and every
    tensor's shape by name (``lora_A`` r × d_in, ``lora_B`` d_out × r)."""

    config: dict
    shapes: dict[str, tuple[int, ...]]

    @property
    def rank(self) -> int:
        return int(self.config.get("r") or 0)


@dataclass(frozen=True)
class ParsedName:
    """A tensor name as an engine reads it: the module path and the part (``A``, ``B``, ``bias``)."""

    module: str
    part: str


@dataclass(frozen=True)
class ModelView:
    """What decides whether an engine applies a module: the model's linear-layer paths, its number of
    decoder layers (None: unknown) and the server's ``--lora-target-modules`` (None: all)."""

    linear_paths: frozenset[str]
    num_layers: int | None = None
    served_targets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rule:
    """One acceptance rule: ``check(view)`` returns the one-line refusal (problem and fix) or None;
    ``source`` names where the rule comes from (loader file or issue)."""

    id: str
    source: str
    check: Callable[[AdapterView], str | None]


@dataclass(frozen=True)
class Engine:
    """A serving engine's LoRA loader, re-implemented.

    ``max_ranks``: the ranks its ``--max-lora-rank`` accepts (None: any); ``saves_modules``: whether it
    loads ``modules_to_save`` tensors (a trained head); ``rules``: the config checks, in order;
    ``parse``: tensor name -> :class:`ParsedName` (ValueError: a name it refuses); ``applies``:
    ``(module path, view, model) -> bool``; ``silent_zero``: the issue where a zero-module adapter is
    served as the base model without a warning.
    """

    name: str
    title: str
    max_ranks: tuple[int, ...] | None
    saves_modules: bool
    rules: tuple[Rule, ...]
    parse: Callable[[str], ParsedName]
    applies: Callable[[str, AdapterView, ModelView], bool]
    silent_zero: str = ""
    serve_hint: Callable[[int], str] = field(default=lambda rank: "")

    def smallest_max_rank(self, rank: int) -> int | None:
        """The smallest allowed ``--max-lora-rank`` >= ``rank`` (None: any value, or none is large enough)."""
        if self.max_ranks is None:
            return None
        return next((r for r in self.max_ranks if r >= rank), None)


# ---------------------------------------------------------------------------- name parsing
def parse_vllm_name(name: str) -> ParsedName:
    """vLLM's reading of a tensor name (``parse_fine_tuned_lora_name``): drop ``base_model.model.``
    wherever it is, then ``<module>.lora_A.weight`` / ``.lora_B.weight``, ``<module>.lora_embedding_A``
    / ``_B`` or ``<module>.<x>.bias``; anything else is an unsupported LoRA weight."""
    stripped = name.replace(PREFIX, "")
    parts = stripped.split(".")
    if len(parts) >= 3 and parts[-1] == "weight" and parts[-2] in ("lora_A", "lora_B"):
        return ParsedName(".".join(parts[:-2]), parts[-2][-1])
    if len(parts) >= 2 and parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
        return ParsedName(".".join(parts[:-1]), "embedding_" + parts[-1][-1])
    if len(parts) >= 3 and parts[-1] == "bias":
        return ParsedName(".".join(parts[:-2]), "bias")
    raise ValueError(f"vLLM refuses tensor {name!r}: it is not a LoRA weight (<module>.lora_A.weight / "
                     f".lora_B.weight); export without extra tensors: asymlora export --for vllm")


def parse_peft_name(name: str) -> ParsedName:
    """PEFT's reading: ``base_model.model.<module>.lora_A.weight`` / ``.lora_B.weight``; other names
    are ``modules_to_save`` parameters (part ``saved``)."""
    stripped = name[len(PREFIX):] if name.startswith(PREFIX) else name
    match = re.fullmatch(r"(.+)\.lora_([AB])\.weight", stripped)
    if match:
        return ParsedName(match.group(1), match.group(2))
    if "lora_" in stripped:
        raise ValueError(f"tensor {name!r} is a LoRA variant, not plain lora_A / lora_B; export it with "
                         f"asymlora export --for peft")
    return ParsedName(stripped.rsplit(".", 1)[0], "saved")


def parse_sglang_name(name: str) -> ParsedName:
    """SGLang's reading: plain ``lora_A`` / ``lora_B`` weights, routed by ``layers.<i>.``; a non-LoRA
    tensor (a saved head) is loaded but never applied, so it is refused here."""
    parsed = parse_peft_name(name)
    if parsed.part == "saved":
        raise ValueError(f"SGLang would load tensor {name!r} but never apply it (it applies lora_A / lora_B "
                         f"only): the trained head would be lost; serve the merged model (asymlora.save_merged) "
                         f"or use --for peft")
    return parsed


# ---------------------------------------------------------------------------- which modules apply
def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def peft_selects(path: str, targets) -> bool:
    """PEFT's ``target_modules`` rule: a list entry equal to the path or its ``.``-suffix; a string is
    a full-match regex (``all-linear`` selects every linear layer)."""
    if isinstance(targets, str):
        return targets == "all-linear" or re.fullmatch(targets, path) is not None
    return any(path == t or path.endswith("." + t) for t in (targets or ()))


def _vllm_applies(path: str, view: AdapterView, model: ModelView) -> bool:
    served = model.served_targets
    return path in model.linear_paths and (served is None or _leaf(path) in served)


def sglang_normalised(leaf: str) -> str:
    return SGLANG_NORMALISED.get(leaf, leaf)


def _sglang_applies(path: str, view: AdapterView, model: ModelView) -> bool:
    layer = LAYER_INDEX.search(path)
    if path not in model.linear_paths or layer is None:
        return False
    if model.num_layers is not None and int(layer.group(1)) >= model.num_layers:
        return False
    served = model.served_targets
    name = sglang_normalised(_leaf(path))
    return name in SGLANG_KNOWN and (served is None or name in {sglang_normalised(s) for s in served})


def _peft_applies(path: str, view: AdapterView, model: ModelView) -> bool:
    return path in model.linear_paths and peft_selects(path, view.config.get("target_modules"))


# ---------------------------------------------------------------------------- rules
REEXPORT = "re-export with asymlora export --for {engine} (it folds the scaling into B)"


def _saved_modules(engine: str, issue: str) -> Callable[[AdapterView], str | None]:
    def check(view: AdapterView) -> str | None:
        saved = view.config.get("modules_to_save")
        if saved:
            return (f"modules_to_save={list(saved)}: {engine} refuses or drops a trained head ({issue}); export "
                    f"without it, or serve the merged model (asymlora.save_merged) instead of an adapter")
        return None
    return check


def _rslora(engine: str, issue: str) -> Callable[[AdapterView], str | None]:
    def check(view: AdapterView) -> str | None:
        if view.config.get("use_rslora"):
            factor = math.sqrt(view.rank) if view.rank else float("nan")
            return (f"use_rslora=true: {engine} serves it with lora_alpha/r, {factor:g} times too weak at r="
                    f"{view.rank} ({issue}); " + REEXPORT.format(engine=engine.lower()))
        return None
    return check


def _patterns(engine: str, source: str) -> Callable[[AdapterView], str | None]:
    def check(view: AdapterView) -> str | None:
        used = [k for k in ("rank_pattern", "alpha_pattern") if view.config.get(k)]
        if used:
            return (f"{' and '.join(used)} set: {engine} applies one lora_alpha/r to every module ({source}), so "
                    f"those modules get the wrong scale; " + REEXPORT.format(engine=engine.lower()))
        return None
    return check


def _plain_lora(engine: str) -> Callable[[AdapterView], str | None]:
    def check(view: AdapterView) -> str | None:
        if view.config.get("peft_type") != "LORA":
            return f"peft_type is {view.config.get('peft_type')!r}: {engine} serves LORA adapters only"
        if view.config.get("use_dora"):
            return f"use_dora=true: {engine} does not serve DoRA adapters; train a plain LoRA / asymlora adapter"
        if view.config.get("bias", "none") != "none":
            return f"bias={view.config['bias']!r}: {engine} does not serve adapter biases; export with bias 'none'"
        if not isinstance(view.config.get("r"), int) or not isinstance(view.config.get("lora_alpha"), (int, float)):
            return "adapter_config.json is corrupt: 'r' and 'lora_alpha' must be numbers"
        return None
    return check


def _rank_limit(ranks: tuple[int, ...]) -> Callable[[AdapterView], str | None]:
    def check(view: AdapterView) -> str | None:
        if view.rank > ranks[-1]:
            return (f"rank r={view.rank} is above vLLM's largest --max-lora-rank ({ranks[-1]}); train or export "
                    f"at rank <= {ranks[-1]}")
        return None
    return check


def _sglang_targets(view: AdapterView) -> str | None:
    targets = view.config.get("target_modules")
    if isinstance(targets, str):
        if targets in ("all", "all-linear"):
            return None
        return (f"target_modules is the regex {targets!r}: SGLang takes a list of module names or 'all-linear'; "
                f"re-export with asymlora export --for sglang (explicit target_modules)")
    unknown = sorted({_leaf(t) for t in targets or () if sglang_normalised(_leaf(t)) not in SGLANG_KNOWN})
    if unknown:
        return (f"target_modules {unknown} are not modules SGLang serves LoRA on (it serves "
                f"{', '.join(sorted(SGLANG_KNOWN)[:8])}, ...); serve this adapter with vLLM or PEFT")
    return None


def _vllm_serve_hint(rank: int) -> str:
    size = ENGINES["vllm"].smallest_max_rank(rank)
    return f"serve with vllm serve BASE --enable-lora --max-lora-rank {size} --lora-modules NAME=DIR"


ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        "vllm", "vLLM", VLLM_MAX_LORA_RANKS, False,
        (Rule("plain-lora", "vllm/lora/peft_helper.py", _plain_lora("vLLM")),
         Rule("modules-to-save", "vLLM issue 9280", _saved_modules("vLLM", "vLLM issue 9280")),
         Rule("rslora", "vLLM issue 10798", _rslora("vLLM", "vLLM issue 10798, fixed only from PR 6909 on")),
         Rule("patterns", "vllm/lora/peft_helper.py", _patterns("vLLM", "its PEFTHelper drops rank_pattern and "
                                                                 "alpha_pattern")),
         Rule("max-rank", "vllm/config/lora.py", _rank_limit(VLLM_MAX_LORA_RANKS))),
        parse_vllm_name, _vllm_applies, silent_zero="vLLM issue 34186", serve_hint=_vllm_serve_hint),
    "sglang": Engine(
        "sglang", "SGLang", None, False,
        (Rule("plain-lora", "python/sglang/srt/lora/lora_config.py", _plain_lora("SGLang")),
         Rule("modules-to-save", "python/sglang/srt/lora/lora.py", _saved_modules("SGLang", "its loader applies "
                                                                                   "lora_A/lora_B only")),
         Rule("rslora", "SGLang issue 40835", _rslora("SGLang", "SGLang issue 40835")),
         Rule("patterns", "python/sglang/srt/lora/lora.py", _patterns("SGLang", "LoRAAdapter.scaling")),
         Rule("targets", "python/sglang/srt/lora/utils.py", _sglang_targets)),
        parse_sglang_name, _sglang_applies, silent_zero="SGLang routes weights by layers.<i>.",
        serve_hint=lambda rank: f"serve with python -m sglang.launch_server --model-path BASE --lora-paths NAME=DIR "
                                f"--max-lora-rank {rank}"),
    "peft": Engine(
        "peft", "PEFT", None, True,
        (Rule("plain-lora", "peft/tuners/lora/config.py", _plain_lora("PEFT")),),
        parse_peft_name, _peft_applies, silent_zero="PEFT warns about unexpected keys only",
        serve_hint=lambda rank: "load with peft.PeftModel.from_pretrained(base, DIR)"),
}


def get_engine(name: str) -> Engine:
    """The :class:`Engine` called ``name``.

    Args:
        name (str): ``vllm``, ``sglang`` or ``peft``.

    Returns:
        Engine: its record.

    Raises:
        ValueError: an unknown engine (the line lists the known ones).
    """
    key = str(name).strip().lower()
    if key not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    return ENGINES[key]
