"""The adapted layer: exact gradients of the lean frozen-A path, memory saved for backward, merging, Conv1D."""

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.dropout import apply_mask, dropped_positions, hashed_drop_mask, keep_mask
from asymlora.adapters.linear import AdaptedLinear, FrozenAProjection, HashedFrozenAProjection
from asymlora.adapters.mask_stream import split_base, stream_keys


def adapted(d_in=24, d_out=20, train="B", dropout=0.0, init_B="zero", **kw):
    torch.manual_seed(0)
    cfg = AdapterConfig(rank=4, alpha=8, dropout=dropout, train=train, init_B=init_B, **kw)
    return AdaptedLinear(nn.Linear(d_in, d_out), "enc.q", cfg)


def saved_activation_bytes(module: nn.Module, fn) -> int:
    """Bytes autograd saves while ``fn()`` runs, each storage once, the module's weights excluded."""
    weights = {t.untyped_storage().data_ptr() for t in list(module.parameters()) + list(module.buffers())}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_frozen_factor_is_a_buffer_and_trained_one_a_parameter():
    layer = adapted(train="B")
    assert "A" in dict(layer.named_buffers()) and "A" not in dict(layer.named_parameters())
    assert isinstance(layer.B, nn.Parameter) and layer.recipes["A"].init == "orthonormal"
    layer = adapted(train="A", init_A="zero", init_B="orthonormal")
    assert "B" in dict(layer.named_buffers()) and isinstance(layer.A, nn.Parameter)
    layer = adapted(train="AB", init_A="kaiming")
    assert layer.recipes == {} and len(list(layer.parameters())) == 4   # A, B, base weight, base bias


def test_lean_function_passes_float64_gradcheck_with_dropout():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    a = torch.linalg.qr(torch.randn(7, 3, dtype=torch.float64))[0].t().contiguous()
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: FrozenAProjection.apply(x, a, b, 1.7, 0.3, 12345), (x, b))


def test_hashed_path_has_exact_gradients():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    a = torch.linalg.qr(torch.randn(7, 3, dtype=torch.float64))[0].t().contiguous()
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.tensor([12345, 678], dtype=torch.int64)
    assert torch.autograd.gradcheck(lambda x, b: HashedFrozenAProjection.apply(x, a, b, 1.7, 0.3, keys), (x, b))


def _same_mask_as_the_layer(layer, monkeypatch, shape):
    """The keep-mask the layer's next training forward uses (v1: seed forced to 777; v2: call 0's keys)."""
    if layer.mask_stream == "v1":
        monkeypatch.setattr(layer.masks, "next_seed", lambda: 777)
        return keep_mask(777, shape, 0.1, "cpu")
    keys = torch.tensor(stream_keys(*split_base(layer.masks.base), 0))
    return ~hashed_drop_mask(keys, shape, 0.1)


@pytest.mark.parametrize("stream", ["v1", "v2"])
def test_lean_path_equals_plain_autograd_with_the_same_mask(monkeypatch, stream):
    layer = adapted(dropout=0.1, init_B="gaussian", mask_stream=stream).train()
    x = torch.randn(4, 9, 24, requires_grad=True)
    keep = _same_mask_as_the_layer(layer, monkeypatch, x.shape)
    out = layer(x)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    lean_x, lean_b = x.grad.clone(), layer.B.grad.clone()

    x.grad, b = None, layer.B.detach().clone().requires_grad_(True)
    dropped = apply_mask(x, keep, 0.1)
    naive = layer.base(x) + layer.scaling * (dropped @ layer.A.t()) @ b.t()
    naive.backward(grad_out)
    assert torch.allclose(out, naive, atol=1e-6)
    assert torch.allclose(lean_x, x.grad, atol=1e-6) and torch.allclose(lean_b, b.grad, atol=1e-5)


def test_mask_is_seeded_and_bernoulli():
    keep = keep_mask(5, (400_000,), 0.05, "cpu")
    assert torch.equal(keep, keep_mask(5, (400_000,), 0.05, "cpu"))
    assert not torch.equal(keep, keep_mask(6, (400_000,), 0.05, "cpu"))
    assert abs((~keep).float().mean().item() - 0.05) < 0.0015          # 4.3 standard deviations
    positions = dropped_positions(5, 400_000, 0.05)
    gaps = torch.from_numpy(positions).diff().double() - 1             # Geometric(p) on {0, 1, ...}
    assert abs(gaps.mean().item() - 0.95 / 0.05) < 0.3
    assert abs((gaps == 0).double().mean().item() - 0.05) < 0.005     # P(G = 0) = p: no clustering
    assert dropped_positions(1, 10, 0.999).max() < 10 and len(dropped_positions(1, 3, 1e-6)) <= 3


def test_hashed_mask_is_keyed_bernoulli_and_independent_of_the_device_of_the_keys():
    keys = torch.tensor(stream_keys(*split_base(2**62 + 12345), 3))
    drop = hashed_drop_mask(keys, (400_000,), 0.05)
    assert torch.equal(drop, hashed_drop_mask(keys.clone(), (400_000,), 0.05))
    assert abs(drop.double().mean().item() - 0.05) < 0.0015            # 4.3 standard deviations
    other = hashed_drop_mask(torch.tensor(stream_keys(*split_base(2**62 + 12345), 4)), (400_000,), 0.05)
    both = (drop & other).double().mean().item()                       # independent masks: p² of the elements
    assert abs(both - 0.05 ** 2) < 0.0005 and not torch.equal(drop, other)
    neighbours = (drop[1:] & drop[:-1]).double().mean().item()         # no clustering along the index
    assert abs(neighbours - 0.05 ** 2) < 0.0005
    assert torch.equal(hashed_drop_mask(keys, (4, 100_000), 0.05).reshape(-1), drop)


def test_python_and_tensor_stream_keys_agree():
    for base, call in ((0, 0), (2**63 - 1, 2**40 + 3), (7934409654879622651, 12)):
        tensors = stream_keys(*(torch.tensor(v) for v in split_base(base)), torch.tensor(call))
        assert stream_keys(*split_base(base), call) == tuple(int(t) for t in tensors)


def test_b_only_saves_at_most_a_twentieth_of_pefts_lora_layer():
    """MiniLM's query shape (384 wide), r=8, dropout 0.05, 16 x 128 tokens."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    x = torch.randn(16, 128, 384, requires_grad=True)
    ours = AdaptedLinear(nn.Linear(384, 384).requires_grad_(False), "q",
                         AdapterConfig(rank=8, alpha=16, dropout=0.05)).train()
    host = nn.Sequential()
    host.add_module("q", nn.Linear(384, 384))
    peft_model = get_peft_model(host, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q"])).train()
    ours_bytes = saved_activation_bytes(ours, lambda: ours(x).sum().backward())
    peft_bytes = saved_activation_bytes(peft_model, lambda: peft_model(x).sum().backward())
    assert ours_bytes == 16 * 128 * 8 * 4  # exactly the r-wide projection A·drop(x) (the mask keys are ints)
    assert ours_bytes * 20 <= peft_bytes, (ours_bytes, peft_bytes)


@pytest.mark.parametrize("train, inits", [("B", {}), ("A", {"init_A": "zero", "init_B": "orthonormal"}),
                                          ("AB", {"init_A": "kaiming"})])
def test_merge_equals_unmerged_and_unmerge_is_bit_exact(train, inits):
    layer = adapted(train=train, **inits).eval()
    with torch.no_grad():
        for p in layer.trained_factor_params().values():
            p.normal_()
    original = layer.base.weight.detach().clone()
    x = torch.randn(5, 24)
    before = layer(x)
    layer.merge()
    assert layer.merged and not torch.equal(layer.base.weight, original)
    assert torch.allclose(layer(x), before, atol=1e-5)
    layer.unmerge()
    assert torch.equal(layer.base.weight, original)


def test_conv1d_layer_matches_the_linear_formula():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    conv = Conv1D(20, 24)   # nf = 20 outputs, nx = 24 inputs: weight 24 x 20
    layer = AdaptedLinear(conv, "attn.c_attn", AdapterConfig(rank=4, alpha=8, init_B="gaussian")).eval()
    x = torch.randn(3, 24)
    expected = x @ conv.weight + conv.bias + layer.scaling * x @ layer.A.t() @ layer.B.t()
    assert torch.allclose(layer(x), expected, atol=1e-6)
    original = conv.weight.detach().clone()
    layer.merge()
    assert torch.allclose(layer(x), expected, atol=1e-5)
    layer.unmerge()
    assert torch.equal(conv.weight, original)


def test_non_linear_module_is_refused():
    with pytest.raises(TypeError, match="not a linear layer"):
        AdaptedLinear(nn.LayerNorm(4), "ln", AdapterConfig())
