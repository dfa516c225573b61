"""Tiny random models for tests: the registry's ``tiny-<arch>`` entries and THE tiny-config factory.

``tiny-bert``, ``tiny-roberta``, ``tiny-bart``, ``tiny-llama``, ``tiny-gpt2``, ``tiny-vit``: hidden 32,
2 layers, 2 heads, MLP 64, built from :func:`tiny_config` with a fixed seed (:data:`TINY_SEED`) and
saved once under the cache. The text ones share MiniLM's WordPiece tokenizer (vocab 30,522);
``tiny-vit`` gets a 32×32 image processor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from asymlora.models.cache import cache_dir, materialise
from asymlora.models.packaged import minilm_path
from asymlora.models.registry import ModelRef

TINY_SEED = 0
_TINY_COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def tiny_config(arch: str, vocab_size: int = 97, pad: int = 0, bos: int = 1, eos: int = 2, **overrides):
    """THE tiny-model factory (tests, bench and the ``tiny-*`` registry entries all use it).

    A small config (hidden 32, 2 layers, 2 heads, MLP 64) of architecture ``arch``; derived fields
    (e.g. Llama's ``head_dim``) follow the overrides.

    Args:
        arch: ``bert``, ``roberta``, ``bart``, ``llama``, ``gpt2`` or ``vit``.
        vocab_size: the vocabulary (ignored by ``vit``).
        pad: the padding token id.
        bos: the beginning-of-sequence token id.
        eos: the end-of-sequence token id.
        **overrides: passed to the config's constructor over the defaults.

    Returns:
        transformers.PretrainedConfig: the config.

    Raises:
        ValueError: an unknown architecture.
    """
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
    """The cached folder of a tiny random model (built once, seeded with :data:`TINY_SEED`).

    The base model (no task head) is saved, so, exactly as with a real checkpoint, the head is
    created fresh by the loaders. The folder name carries a hash of the config, so a changed
    factory never reuses an old folder.

    Args:
        ref: a registry entry with ``source == "tiny"`` (``path_or_id`` is the architecture).

    Returns:
        Path: ``<cache>/models/<name>-<config hash>``.

    Raises:
        FileNotFoundError: a text model and the packaged MiniLM tokenizer is missing.
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

    return materialise(target, build)


def save_tiny_bert_classifier(folder, seed: int = 0, hidden: int = 32, num_labels: int = 3) -> str:
    """Save a seeded 2-layer random BERT classifier to ``folder`` (quick runs and tests that need a
    plain folder rather than the registry's cached ``tiny-bert``).

    :func:`tiny_config` ``("bert")`` with vocabulary 100, MLP 37 and 512 positions; the weights are
    drawn after ``torch.manual_seed(seed)`` (the global RNG).

    Args:
        folder: where to save (created by ``save_pretrained``).
        seed: the seed of every weight.
        hidden: the hidden size (2 heads, so even).
        num_labels: classes of the head.

    Returns:
        str: ``folder``.
    """
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = tiny_config("bert", 100, hidden_size=hidden, intermediate_size=37, max_position_embeddings=512,
                         num_labels=num_labels)
    BertForSequenceClassification(config).save_pretrained(folder)
    return str(folder)
