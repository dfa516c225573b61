"""Loading registry models: one public loader per task family, plus the tokenizer.

Every model is reached through ``from_pretrained`` on a folder or a hub id (:func:`model_path`):

* ``hub``: the paper's models (``roberta-large``, ``bart-large``, ``llama-2-7b``, ...), which need
  the hub (or a local copy: pass its folder instead of the name);
* ``packaged``: real weights installed by package name (:mod:`asymlora.models.packaged`);
* ``local``: any folder holding a Hugging Face model (``config.json`` + weights);
* ``tiny``: random test models built once under the cache (:mod:`asymlora.models.tiny`).

A loader that creates fresh weights (a task head) draws them from ``torch.manual_seed(seed)`` inside
a forked RNG: the same seed gives the same head, and the caller's RNG state is untouched.

==============================================  =========================================
:func:`load_for_sequence_classification`        text (pair) -> ``num_labels`` logits
:func:`load_for_image_classification`           image -> ``num_labels`` logits
:func:`load_for_causal_lm`                      tokens -> next-token logits
:func:`load_for_seq2seq`                        source tokens -> target-token logits
:func:`load_tokenizer`                          the tokenizer (image models: image processor)
==============================================  =========================================
"""

from __future__ import annotations

from asymlora.models.packaged import PACKAGED
from asymlora.models.quiet import quiet_transformers
from asymlora.models.registry import ModelRef, resolve_model
from asymlora.models.tiny import tiny_path


def model_path(ref_or_name: str | ModelRef) -> str:
    """What to pass to ``from_pretrained``.

    Args:
        ref_or_name (str | ModelRef): anything :func:`~asymlora.models.registry.resolve_model` takes.

    Returns:
        str: a folder (packaged, tiny, local) or a hub id.

    Raises:
        FileNotFoundError: a packaged model whose package is missing; a missing folder.
        ValueError: an unknown model name.
    """
    ref = resolve_model(ref_or_name)
    if ref.source == "packaged":
        return str(PACKAGED[ref.name]())
    if ref.source == "tiny":
        return str(tiny_path(ref))
    return ref.path_or_id


def load_tokenizer(ref_or_name: str | ModelRef):
    """The model's tokenizer; for image models its image processor.

    Decoder-only tokenizers without a pad token get ``pad_token = eos_token`` (needed for batches).

    Args:
        ref_or_name (str | ModelRef): anything :func:`~asymlora.models.registry.resolve_model` takes.

    Returns:
        transformers.PreTrainedTokenizerBase | transformers.BaseImageProcessor: the processor.

    Raises:
        FileNotFoundError, ValueError: as :func:`model_path`; OSError: the hub is unreachable.
    """
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


def _classifier(ref: ModelRef, auto, num_labels: int, seed: int, kwargs: dict):
    """``auto.from_pretrained`` with ``num_labels`` outputs and a seeded fresh head (see the module docstring)."""
    import torch
    from transformers import AutoConfig

    if int(num_labels) < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    path = model_path(ref)
    config = AutoConfig.from_pretrained(path, num_labels=int(num_labels))
    if num_labels == 1:
        config.problem_type = "regression"
    if ref.kind == "text" and getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = load_tokenizer(ref).pad_token_id
    with torch.random.fork_rng(devices=[]), quiet_transformers():
        torch.manual_seed(int(seed))
        return auto.from_pretrained(path, config=config, **kwargs)


def load_for_image_classification(ref_or_name: str | ModelRef, num_labels: int, seed: int = 0, **kwargs):
    """``AutoModelForImageClassification`` with a fresh, seeded ``num_labels``-way head.

    Args:
        ref_or_name (str | ModelRef): an image model (``tiny-vit``, ``vit-base``, a ViT folder).
        num_labels (int): outputs of the head (>= 1; 1 sets ``problem_type="regression"``).
        seed (int): the seed of the fresh head.
        **kwargs (Any): passed to ``from_pretrained`` (``dtype=...``).

    Returns:
        transformers.PreTrainedModel: the model; ``model(pixel_values=...)`` -> logits (batch × num_labels).

    Raises:
        ValueError: ``num_labels < 1``, or a text model.
        FileNotFoundError: as :func:`model_path`.
    """
    from transformers import AutoModelForImageClassification

    ref = resolve_model(ref_or_name)
    if ref.kind != "image":
        raise ValueError(f"model {ref.name!r} is a text model; an image classifier needs an image model (tiny-vit, "
                         "vit-base, a ViT folder)")
    return _classifier(ref, AutoModelForImageClassification, num_labels, seed, kwargs)


def load_for_sequence_classification(ref_or_name: str | ModelRef, num_labels: int, seed: int = 0, **kwargs):
    """``AutoModelForSequenceClassification`` with a fresh, seeded ``num_labels``-way head.

    An image model gets :func:`load_for_image_classification` instead. ``num_labels == 1`` sets
    ``problem_type="regression"`` (MSE loss). The config's ``pad_token_id`` is set from the tokenizer
    when missing (decoder-only models need it to find the last token).

    Args:
        ref_or_name (str | ModelRef): anything :func:`~asymlora.models.registry.resolve_model` takes (``"minilm"``).
        num_labels (int): outputs of the head (>= 1).
        seed (int): the seed of the fresh head.
        **kwargs (Any): passed to ``from_pretrained`` (``dtype=...``).

    Returns:
        transformers.PreTrainedModel: the model; ``model(**tokenizer(texts))`` -> logits (batch × num_labels).

    Raises:
        ValueError: ``num_labels < 1``, an unknown model name.
        FileNotFoundError: as :func:`model_path`.
    """
    from transformers import AutoModelForSequenceClassification

    ref = resolve_model(ref_or_name)
    if ref.kind == "image":
        return load_for_image_classification(ref, num_labels, seed, **kwargs)
    return _classifier(ref, AutoModelForSequenceClassification, num_labels, seed, kwargs)


def load_for_causal_lm(ref_or_name: str | ModelRef, seed: int = 0, **kwargs):
    """``AutoModelForCausalLM`` (a decoder with its language-model head).

    The config's ``pad_token_id`` is set from the tokenizer when missing; any weight missing from the
    folder is drawn from ``seed`` (forked RNG).

    Args:
        ref_or_name (str | ModelRef): a decoder (``smollm2``, ``tiny-llama``, ``tiny-gpt2``, a folder, a hub id).
        seed (int): the seed of any weight the folder lacks.
        **kwargs (Any): passed to ``from_pretrained`` (``dtype=...``).

    Returns:
        transformers.PreTrainedModel: ``model(input_ids=...)`` -> logits (batch × length × vocab).

    Raises:
        ValueError: an unknown model name; FileNotFoundError: as :func:`model_path`.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    ref = resolve_model(ref_or_name)
    path = model_path(ref)
    config = AutoConfig.from_pretrained(path)
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = load_tokenizer(ref).pad_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return AutoModelForCausalLM.from_pretrained(path, config=config, **kwargs)


def load_for_seq2seq(ref_or_name: str | ModelRef, seed: int = 0, **kwargs):
    """``AutoModelForSeq2SeqLM`` (an encoder-decoder with its language-model head: BART, T5).

    Args:
        ref_or_name (str | ModelRef): an encoder-decoder (``tiny-bart``, ``bart-large``, a folder, a hub id).
        seed (int): the seed of any weight the folder lacks (forked RNG).
        **kwargs (Any): passed to ``from_pretrained`` (``dtype=...``).

    Returns:
        transformers.PreTrainedModel: ``model(input_ids=..., labels=...)`` -> logits (batch × target length × vocab).

    Raises:
        ValueError: an unknown model name, or a model that is not an encoder-decoder.
        FileNotFoundError: as :func:`model_path`.
    """
    import torch
    from transformers import AutoModelForSeq2SeqLM

    path = model_path(ref_or_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return AutoModelForSeq2SeqLM.from_pretrained(path, **kwargs)
