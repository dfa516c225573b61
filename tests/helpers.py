"""Small builders shared by several test modules (importable because pytest puts tests/ on sys.path)."""

import torch
from transformers import BertForSequenceClassification

from asymlora.adapters.inject import adapted_modules
from asymlora.models import save_tiny_bert_classifier


#: Save a seeded 2-layer random BERT classifier (vocabulary 100) to ``folder``; return its path.
save_tiny_bert = save_tiny_bert_classifier


def fresh_bert(path) -> BertForSequenceClassification:
    """A fresh copy of the saved tiny BERT, in eval mode."""
    return BertForSequenceClassification.from_pretrained(path).eval()


def randomise_trained(model, seed: int = 1):
    """Give every trained adapter factor random values and perturb the classifier head (no grad); eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            for tensor in module.trained_factor_params().values():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
        for parameter in model.classifier.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


def run_cli(args, capsys):
    """Run ``asymlora ARGS`` in this process: ``(exit status, stdout, stderr)``."""
    import pytest

    from asymlora.cli import main

    with pytest.raises(SystemExit) as stop:
        main(args)
        raise SystemExit(0)
    captured = capsys.readouterr()
    return stop.value.code or 0, captured.out, captured.err


def trained_adapter(path, value_seed: int, **fields):
    """The saved tiny BERT with an adapter (rank 4, alpha 8, classifier saved; ``fields`` override)
    whose trained factors hold seeded random values; eval mode."""
    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import inject

    fields = {"rank": 4, "alpha": 8.0, "modules_to_save": ["classifier"], **fields}
    model = inject(fresh_bert(path), AdapterConfig(**fields))
    generator = torch.Generator().manual_seed(100 + value_seed)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            for tensor in module.trained_factor_params().values():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return model.eval()
