"""Shared MMLU test set-up: the fixture folder and a tiny random Llama with a byte-level BPE tokenizer.

The tokenizer is trained on the fixture CSVs (plus blank lines, so that ``"\\n\\n"`` is one token at
the end of a text but two before a word — the prefix-boundary case the scorer must handle) and adds
a BOS like Llama's, so both harness tokenisation paths (BOS, multi-token ``" A"``) are exercised.
"""

from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures" / "mmlu"


def save_tiny_bpe_llama(folder, seed: int = 0, max_positions: int = 256, vocab: int = 420) -> str:
    """A seeded 2-layer ``LlamaForCausalLM`` (hidden 32) and its BPE tokenizer saved in ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("*/*.csv"))] + ["Answer:\n\n"] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<s>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=max_positions,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return str(folder)
