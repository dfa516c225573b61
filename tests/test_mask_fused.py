"""The fused, compiled v2 zeroing (asymlora.adapters.mask_fused) zeroes exactly the elements of the
int64 hash's mask, applies only where its rules say, and leaves the layer's results unchanged."""

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.compiled import compile_problem
from asymlora.adapters.dropout import drop_threshold, hashed_zero
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.mask_fused import (MASK_FUSION, fused_zero, fused_zero_applies, fusion_from_environment,
                                          mask_fusion)
from asymlora.adapters.mask_hash import forced_mask_hash, hash_mask_torch
from asymlora.adapters.mask_native import native_available
from asymlora.adapters.mask_stream import split_base, stream_keys

needs_inductor = pytest.mark.skipif(compile_problem("cpu") is not None, reason="inductor cannot build here")


def _reference(tensor: torch.Tensor, keys: torch.Tensor, p: float) -> torch.Tensor:
    mask = hash_mask_torch(keys, 0, tensor.numel(), drop_threshold(p), tensor.device).view(tensor.shape)
    return tensor.masked_fill(mask, 0)


@needs_inductor
def test_fused_zero_drops_exactly_the_int64_hash_mask():
    for base, call in ((0, 0), (2**63 - 1, 2**40 + 3), (2**62 + 12345, 4)):
        keys = torch.tensor(stream_keys(*split_base(base), call))
        for shape, p in (((16, 128, 384), 0.05), ((3, 70_001), 0.5), ((65_537,), 0.95)):
            tensor = torch.randn(shape)
            zeroed = fused_zero(tensor, keys, drop_threshold(p))
            assert zeroed.shape == tensor.shape and torch.equal(zeroed, _reference(tensor, keys, p)), (shape, p)
    assert torch.equal(fused_zero(torch.ones(70_000), keys, 0), torch.ones(70_000))   # threshold 0: none dropped


def test_rules():
    big, small = torch.ones(MASK_FUSION.min_elements), torch.ones(MASK_FUSION.min_elements - 1)
    builds = compile_problem("cpu") is None
    assert fused_zero_applies(big) is (builds and not native_available())   # the native loop comes first
    with forced_mask_hash("numpy"):                         # the numpy engine's path: fused from the threshold
        assert fused_zero_applies(big) is builds and not fused_zero_applies(small)
        assert not fused_zero_applies(torch.empty(MASK_FUSION.min_elements, device="meta"))
        with mask_fusion(False):
            assert not fused_zero_applies(big)
        with mask_fusion(True, min_elements=1):
            assert fused_zero_applies(small) is builds
    for engine in ("torch", "native"):
        with forced_mask_hash(engine):
            assert not fused_zero_applies(big)              # another forced engine is what runs
    assert MASK_FUSION.enabled and MASK_FUSION.min_elements == big.numel()


def test_rules_inside_a_trace(monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not fused_zero_applies(torch.ones(MASK_FUSION.min_elements))


def test_environment_switch():
    assert fusion_from_environment("1") and fusion_from_environment("auto") and fusion_from_environment("")
    assert not any(fusion_from_environment(v) for v in ("0", "off", " OFF ", "false", "No"))


@pytest.mark.parametrize("may_overwrite", [False, True])
def test_hashed_zero_is_the_same_with_and_without_fusion(may_overwrite):
    keys = torch.tensor(stream_keys(*split_base(99), 7))
    tensor = torch.randn(2, 300, 128)
    expected = _reference(tensor, keys, 0.2)
    for enabled in (False, True):
        copy = tensor.clone()
        with forced_mask_hash("numpy"), mask_fusion(enabled):
            assert torch.equal(hashed_zero(copy, keys, 0.2, may_overwrite=may_overwrite), expected)
        if not (enabled and compile_problem("cpu") is None):
            assert torch.equal(copy, expected if may_overwrite else tensor)


@needs_inductor
def test_adapted_layer_trains_identically_with_and_without_fusion():
    results = []
    for enabled in (False, True):
        torch.manual_seed(0)
        layer = AdaptedLinear(nn.Linear(128, 40), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.2,
                                                                          init_B="gaussian")).train()
        x = torch.randn(4, 200, 128, requires_grad=True)
        with forced_mask_hash("numpy"), mask_fusion(enabled, min_elements=1):
            assert fused_zero_applies(x.detach()) is enabled      # as the lean function calls it
            layer.delta(x).square().sum().backward()
        results.append((x.grad, layer.B.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert (results[0][0] == 0).any()


def test_a_failing_compile_falls_back_to_the_same_mask(monkeypatch):
    from asymlora.adapters import mask_fused

    def broken(*args):
        raise RuntimeError("C++ compile error: Python.h not found")

    monkeypatch.setattr(mask_fused, "_compiled", lambda: broken)
    keys = torch.tensor(stream_keys(*split_base(5), 1))
    tensor = torch.randn(70_000)
    with mask_fusion(True):
        with pytest.warns(RuntimeWarning, match="Python.h not found.*same masks"):
            zeroed = fused_zero(tensor, keys, drop_threshold(0.3))
        assert torch.equal(zeroed, _reference(tensor, keys, 0.3)) and not MASK_FUSION.enabled


@needs_inductor
def test_fusion_stays_out_of_autograd_and_lora_gradients_are_unchanged():
    x = torch.randn(4, 200, 128, requires_grad=True)
    with forced_mask_hash("numpy"), mask_fusion(True, min_elements=1):
        assert not fused_zero_applies(x)                    # autograd would differentiate through it
        with torch.no_grad():
            assert fused_zero_applies(x)
    results = []
    for enabled in (False, True):
        torch.manual_seed(0)
        layer = AdaptedLinear(nn.Linear(128, 40), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.2, train="AB",
                                                                          init_B="gaussian")).train()
        x.grad = None
        with forced_mask_hash("numpy"), mask_fusion(enabled, min_elements=1):
            layer.delta(x).square().sum().backward()
        results.append((x.grad.clone(), layer.A.grad, layer.B.grad))
    assert all(torch.equal(u, v) for u, v in zip(*results)) and (results[0][0] == 0).any()
