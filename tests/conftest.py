"""Shared test set-up: offline, deterministic, few threads, tiny random models of each architecture."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


def _tiny(kind: str):
    """A tiny random model of one architecture (seeded), in eval mode."""
    import transformers as tf
    torch.manual_seed(0)
    common = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    builders = {
        "bert": lambda: tf.BertForSequenceClassification(tf.BertConfig(**common, num_labels=3)),
        "roberta": lambda: tf.RobertaForSequenceClassification(
            tf.RobertaConfig(**common, num_labels=3, max_position_embeddings=64, pad_token_id=1)),
        "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**common, num_key_value_heads=2,
                                                            max_position_embeddings=64)),
        "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4,
                                                         n_positions=64)),
    }
    return builders[kind]().eval()


@pytest.fixture
def tiny_model():
    """Factory: ``tiny_model("bert" | "roberta" | "llama" | "gpt2")``."""
    return _tiny


@pytest.fixture
def token_batch():
    torch.manual_seed(1)
    return torch.randint(3, 97, (2, 12))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The folder of a saved tiny random BERT classifier (see ``helpers.save_tiny_bert``)."""
    from helpers import save_tiny_bert
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
