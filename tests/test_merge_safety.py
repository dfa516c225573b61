"""Merge safety: unmerge refuses after the factors changed, backward through a merged layer raises,
the exact-unmerge record is int32 positions or a weight copy, whichever is smaller."""

import copy

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.linear import AdaptedLinear


def merged_layer(dtype=torch.float32, scale=1.0):
    torch.manual_seed(0)
    layer = AdaptedLinear(nn.Linear(24, 20).to(dtype), "enc.q", AdapterConfig(rank=4, alpha=8, init_B="gaussian"))
    with torch.no_grad():
        layer.B.mul_(scale)
    original = layer.base.weight.detach().clone()
    layer.merge()
    return layer, original


def test_unmerge_after_an_optimiser_step_raises_and_leaves_the_weight():
    layer, original = merged_layer()
    layer.B.grad = torch.ones_like(layer.B)
    torch.optim.SGD([layer.B], lr=0.1).step()
    merged = layer.base.weight.detach().clone()
    with pytest.raises(RuntimeError, match="'enc.q'.*changed in place since merge"):
        layer.unmerge()
    with pytest.raises(RuntimeError, match="changed in place"):
        layer.pretrained_weight()
    assert layer.merged and torch.equal(layer.base.weight, merged)
    assert not torch.equal(merged, original)


def test_unmerge_after_editing_the_merged_base_weight_raises():
    layer, _ = merged_layer()
    with torch.no_grad():
        layer.base.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="changed in place"):
        layer.unmerge()


def test_backward_through_a_merged_layer_raises():
    layer, _ = merged_layer()
    out = layer(torch.randn(3, 24))
    with pytest.raises(RuntimeError, match="'enc.q' is merged.*unmerge"):
        out.sum().backward()
    with torch.no_grad():       # inference through a merged layer is fine
        torch.testing.assert_close(layer(torch.ones(1, 24)), layer.base(torch.ones(1, 24)))


def test_a_copied_merged_layer_still_unmerges_exactly():
    layer, original = merged_layer()
    twin = copy.deepcopy(layer)
    twin.unmerge()
    assert torch.equal(twin.base.weight, original)
    layer.unmerge()
    assert torch.equal(layer.base.weight, original)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_corrections_are_int32_positions_and_unmerge_is_bit_exact(dtype):
    layer, original = merged_layer(dtype)
    record = layer._unmerge
    assert record.original is None and record.index.dtype == torch.int32 and record.index.numel() > 0
    assert layer.unmerge_bytes() == record.index.numel() * (4 + original.element_size())
    layer.unmerge()
    assert torch.equal(layer.base.weight, original)


def test_a_weight_copy_is_kept_when_it_is_smaller_than_the_corrections():
    layer, original = merged_layer(torch.bfloat16, scale=1e6)   # delta swamps W0: almost every entry is lost
    assert layer._unmerge.index is None
    assert layer.unmerge_bytes() == original.numel() * original.element_size()
    layer.unmerge()
    assert torch.equal(layer.base.weight, original)
