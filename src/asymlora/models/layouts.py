"""Benchmark layouts: random-weight models at a real architecture's shapes (no weights downloaded).

For benchmarks and memory planning at GPU-scale widths. A layout is a config factory taking the
number of layers, plus the real number of layers:

==================  ==========================================================================
``roberta-base``    RoBERTa-base: hidden 768, 12 layers
``roberta-large``   RoBERTa-large: hidden 1024, 16 heads, MLP 4096, 24 layers
``llama-7b``        Llama-2-7B: hidden 4096, MLP 11008, 32 heads, vocabulary 32,000, 32 layers
``tiny-llama-64``   a tiny Llama: hidden 64, MLP 128, 4 heads, vocabulary 1,000, 2 layers
``tiny-bert-64``    a tiny BERT: hidden 64, MLP 128, 4 heads, vocabulary 1,000, 2 layers
==================  ==========================================================================

Naming: real shapes are named as the checkpoint; tiny ones ``tiny-<arch>-<hidden>``, so they are
not confused with the registry's ``tiny-<arch>`` models (hidden 32, with a tokenizer). The old
spellings ``llama-tiny`` and ``bert-tiny`` still resolve (:data:`LAYOUT_ALIASES`): committed
benchmark results name them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable


def _roberta_layout(layers: int, **kw):
    from transformers import RobertaConfig
    return RobertaConfig(num_hidden_layers=layers, **kw)


def _llama_layout(layers: int, **kw):
    from transformers import LlamaConfig
    return LlamaConfig(num_hidden_layers=layers, pad_token_id=0, **kw)


def _bert_layout(layers: int, **kw):
    from transformers import BertConfig
    return BertConfig(num_hidden_layers=layers, **kw)


Layout = tuple[Callable[[int], Any], int]

_LAYOUTS: dict[str, Layout] = {
    "roberta-base": (lambda n: _roberta_layout(n), 12),
    "roberta-large": (lambda n: _roberta_layout(n, hidden_size=1024, num_attention_heads=16, intermediate_size=4096), 24),
    "llama-7b": (lambda n: _llama_layout(n, hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                                         num_key_value_heads=32, vocab_size=32000), 32),
    "tiny-llama-64": (lambda n: _llama_layout(n, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                              num_key_value_heads=4, vocab_size=1000), 2),
    "tiny-bert-64": (lambda n: _bert_layout(n, vocab_size=1000, hidden_size=64, num_attention_heads=4,
                                            intermediate_size=128, max_position_embeddings=256), 2),
}

#: Old layout names -> their names in the one scheme.
LAYOUT_ALIASES: dict[str, str] = {"llama-tiny": "tiny-llama-64", "bert-tiny": "tiny-bert-64"}


class Layouts(Mapping):
    """The layouts by name: iterating lists the names of the scheme; a lookup (``in``, ``[]``) also
    accepts an old spelling of :data:`LAYOUT_ALIASES`."""

    def __init__(self, layouts: dict[str, Layout], aliases: dict[str, str]):
        self._layouts, self._aliases = layouts, aliases

    def canonical(self, name: str) -> str:
        """``name`` in the one scheme (an alias resolved; any other name unchanged)."""
        return self._aliases.get(name, name)

    def __getitem__(self, name: str) -> Layout:
        return self._layouts[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) in self._layouts

    def __iter__(self) -> Iterator[str]:
        return iter(self._layouts)

    def __len__(self) -> int:
        return len(self._layouts)


#: name -> (config factory taking the number of layers, the real number of layers).
LAYOUTS = Layouts(_LAYOUTS, LAYOUT_ALIASES)


def layout_config(name: str, layers: int | None = None):
    """The config of a layout.

    Args:
        name: a layout name or an old spelling (``bert-tiny``).
        layers: the number of layers; None or 0 -> the real count.

    Returns:
        transformers.PretrainedConfig: a fresh config.

    Raises:
        ValueError: an unknown layout name (the message lists the known ones).
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
    factory, default_layers = LAYOUTS[name]
    return factory(layers or default_layers)
