"""Exact combination: adapters sharing their frozen factor combine by a weighted sum of trained factors."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.adapters.combine import combine  # noqa: E402
from asymlora.adapters.inject import adapted_modules, merge  # noqa: E402
from asymlora.adapters.io import pretrained_weight, save_adapter  # noqa: E402

WEIGHTS = [0.5, -0.3, 1.25]


from helpers import fresh_bert as fresh, trained_adapter  # noqa: E402


trained = trained_adapter


@pytest.mark.parametrize("train", ["B", "A"])
def test_combined_delta_is_the_weighted_sum_of_deltas(tiny, train):
    fields = {"train": train} if train == "B" else {"train": "A", "init_A": "zero", "init_B": "orthonormal"}
    models = [trained(tiny, i, **fields) for i in range(3)]
    before = [{n: (m.A.detach().clone(), m.B.detach().clone(), m.base.weight.detach().clone())
               for n, m in adapted_modules(model).items()} for model in models]
    result = combine(models, WEIGHTS)
    assert result is not models[0]
    for name, module in adapted_modules(result).items():
        expected = sum(w * adapted_modules(m)[name].delta_weight() for w, m in zip(WEIGHTS, models))
        torch.testing.assert_close(module.delta_weight(), expected, atol=1e-6, rtol=0)
    # the merged weight is W0 + the weighted sum of the individual deltas
    merge(result)
    for name, module in adapted_modules(result).items():
        w0 = pretrained_weight(adapted_modules(models[0])[name])
        expected = w0 + sum(w * adapted_modules(m)[name].delta_weight() for w, m in zip(WEIGHTS, models))
        torch.testing.assert_close(module.base.weight, expected, atol=1e-6, rtol=0)
    # the inputs are left alone: same factors and base weights, bit for bit, still unmerged
    for model, saved in zip(models, before):
        for name, module in adapted_modules(model).items():
            assert not module.merged
            for tensor, original in zip((module.A, module.B, module.base.weight), saved[name]):
                assert torch.equal(tensor, original)


def test_combine_from_folders_equals_combine_from_models(tiny, tmp_path):
    models = [trained(tiny, i) for i in range(3)]
    folders = [save_adapter(m, tmp_path / f"a{i}") for i, m in enumerate(models)]
    from_models = combine(models, WEIGHTS)
    from_folders = combine(folders, WEIGHTS, base=fresh(tiny))
    mixed = combine([models[0], folders[1], folders[2]], WEIGHTS)
    for name, module in adapted_modules(from_models).items():
        assert torch.equal(adapted_modules(from_folders)[name].B, module.B)
        assert torch.equal(adapted_modules(mixed)[name].B, module.B)
    assert torch.equal(from_folders.classifier.weight, from_models.classifier.weight)
    with pytest.raises(ValueError, match="need a base model"):
        combine(folders, WEIGHTS)


def test_lora_and_different_frozen_factors_are_refused(tiny):
    lora = [trained(tiny, i, train="AB") for i in range(2)]
    with pytest.raises(ValueError, match="LoRA factors do not combine exactly"):
        combine(lora, [0.5, 0.5])
    a, b = trained(tiny, 0), trained(tiny, 1, seed=1)
    with pytest.raises(ValueError, match="different frozen A in module 'bert.encoder.layer.0.attention.self.query'"
                                         ".*do not combine exactly"):
        combine([a, b], [0.5, 0.5])
    with pytest.raises(ValueError, match="2 adapters but 1 weights"):
        combine([a, a], [1.0])
    with pytest.raises(ValueError, match="rank"):
        combine([a, trained(tiny, 1, rank=2)], [0.5, 0.5])
