"""Shared-A serving: one batch, a different B-only adapter per row, equal to running each alone."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.adapters.config import AdapterConfig  # noqa: E402
from asymlora.adapters.inject import adapted_modules, inject  # noqa: E402
from asymlora.adapters.io import save_adapter  # noqa: E402
from asymlora.adapters.serving import RowLinear, SharedABLinear, adapter_rows, serve  # noqa: E402

INPUT = torch.randint(0, 100, (6, 9), generator=torch.Generator().manual_seed(0))
ROWS = torch.tensor([2, 0, 1, 1, 2, 0])


from helpers import fresh_bert as fresh  # noqa: E402


def trained(path, value_seed, heads=True, **fields):
    fields = {"rank": 4, "alpha": 8.0, "modules_to_save": ["classifier"] if heads else [], **fields}
    model = inject(fresh(path), AdapterConfig(**fields))
    generator = torch.Generator().manual_seed(100 + value_seed)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            module.B.copy_(torch.randn(module.B.shape, generator=generator))
        if heads:
            for parameter in model.classifier.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


def separately(models, inputs, rows):
    with torch.no_grad():
        return torch.cat([models[k](input_ids=inputs[i:i + 1]).logits for i, k in enumerate(rows.tolist())])


@pytest.mark.parametrize("heads", [True, False])
def test_mixed_batch_equals_separate_runs(tiny, heads):
    models = [trained(tiny, i, heads=heads) for i in range(3)]
    served = serve(models)
    layer = served.get_submodule("bert.encoder.layer.0.attention.self.query")
    assert isinstance(layer, SharedABLinear) and tuple(layer.B.shape) == (3, 32, 4) and tuple(layer.A.shape) == (4, 32)
    assert isinstance(served.classifier, RowLinear) == heads
    with adapter_rows(served, ROWS), torch.no_grad():
        mixed = served(input_ids=INPUT).logits
    torch.testing.assert_close(mixed, separately(models, INPUT, ROWS), atol=1e-5, rtol=0)
    # the inputs are untouched: still AdaptedLinear models
    assert adapted_modules(models[0])


def test_serving_from_folders(tiny, tmp_path):
    models = [trained(tiny, i) for i in range(2)]
    folders = [save_adapter(m, tmp_path / f"a{i}") for i, m in enumerate(models)]
    served = serve(folders, base=fresh(tiny))
    rows = torch.tensor([1, 0, 0, 1, 1, 0])
    with adapter_rows(served, rows), torch.no_grad():
        mixed = served(input_ids=INPUT).logits
    torch.testing.assert_close(mixed, separately(models, INPUT, rows), atol=1e-5, rtol=0)


def test_serving_errors(tiny):
    served = serve([trained(tiny, 0), trained(tiny, 1)])
    with pytest.raises(RuntimeError, match="adapter_rows"):
        served(input_ids=INPUT)
    with pytest.raises(ValueError, match="out of range"):
        with adapter_rows(served, [0, 2, 0, 0, 0, 0]):
            pass
    with pytest.raises(ValueError, match="rows"):
        with adapter_rows(served, [0, 1]):
            served(input_ids=INPUT)
    with pytest.raises(ValueError, match="LoRA"):
        serve([trained(tiny, 0, train="AB"), trained(tiny, 1, train="AB")])
    with pytest.raises(ValueError, match="different frozen A"):
        serve([trained(tiny, 0), trained(tiny, 1, seed=3)])
