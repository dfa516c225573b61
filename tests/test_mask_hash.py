"""The v2 mask hash's engines give the same bits as the int64 implementation every committed v2 run
used: against digests made by that implementation (tests/fixtures/v2_mask_digests.json), against
each other, and against the Python-int definition across 2³² index boundaries."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters import mask_hash
from asymlora.adapters.dropout import drop_threshold, hashed_drop_mask
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.mask_native import native_available
from asymlora.adapters.mask_hash import (HASH_ENGINES, engine_from_environment, forced_mask_hash, hash_engine_for,
                                         hash_mask_numpy, hash_mask_torch)
from asymlora.adapters.mask_stream import KEY_SALT, MASK32, mix32, split_base, stream_keys

DIGESTS = json.loads((Path(__file__).parent / "fixtures" / "v2_mask_digests.json").read_text())["cases"]
CPU = torch.device("cpu")


def _digest(mask: torch.Tensor) -> str:
    return hashlib.sha256(np.packbits(mask.reshape(-1).numpy()).tobytes()).hexdigest()[:16]


def _by_definition(k0: int, k1: int, start: int, count: int, threshold: int) -> torch.Tensor:
    """The documented hash on Python ints, one element at a time."""
    return torch.tensor([mix32(mix32((i & MASK32) ^ k0) ^ k1 ^ (i >> 32)) < threshold
                         for i in range(start, start + count)])


@pytest.mark.parametrize("engine", [None, *HASH_ENGINES])
def test_every_engine_draws_the_committed_masks(engine):
    with forced_mask_hash(engine):
        for case in DIGESTS:
            keys = torch.tensor(stream_keys(*split_base(case["base"]), case["call"]))
            mask = hashed_drop_mask(keys, tuple(case["shape"]), case["p"])
            assert mask.shape == tuple(case["shape"]) and mask.dtype == torch.bool
            assert (_digest(mask), int(mask.sum())) == (case["sha256_16"], case["dropped"]), case


@pytest.mark.parametrize("count", [1, 7, 1023, 65_537, 300_001])
@pytest.mark.parametrize("p", [1e-9, 0.05, 0.5, 0.95])
def test_numpy_and_torch_engines_agree_bit_for_bit(count, p):
    for base, call in ((0, 0), (2**63 - 1, 2**40 + 3), (0x9E3779B97F4A7C15 >> 1, 17)):
        keys = torch.tensor(stream_keys(*split_base(base), call))
        threshold = drop_threshold(p)
        expected = hash_mask_torch(keys, 0, count, threshold, CPU)
        assert torch.equal(hash_mask_numpy(keys, 0, count, threshold, CPU), expected)


@pytest.mark.parametrize("start", [2**31 - 50, 2**32 - 37, 5 * 2**32 - 1, 2**40 + 11])
def test_indices_past_two_to_the_32_follow_the_definition(start):
    k0, k1 = stream_keys(*split_base(2**62 + 12345), 4)
    threshold = drop_threshold(0.5)
    expected = _by_definition(k0, k1, start, 100, threshold)
    keys = torch.tensor([k0, k1])
    assert torch.equal(hash_mask_torch(keys, start, 100, threshold, CPU), expected)
    assert torch.equal(hash_mask_numpy(keys, start, 100, threshold, CPU), expected)
    assert 20 < int(expected.sum()) < 80                     # a real mixture, not all one value


def test_threshold_edges():
    keys = torch.tensor([0x12345678, 0x9ABCDEF0 ^ KEY_SALT])
    for threshold in (0, 1, MASK32, MASK32 + 1):
        expected = hash_mask_torch(keys, 0, 4096, threshold, CPU)
        assert torch.equal(hash_mask_numpy(keys, 0, 4096, threshold, CPU), expected), threshold
    assert not hash_mask_numpy(keys, 0, 4096, 0, CPU).any()
    assert hash_mask_numpy(keys, 0, 4096, MASK32 + 1, CPU).all()


def test_engine_choice(monkeypatch):
    default = "native" if native_available() else "numpy"
    assert hash_engine_for("cpu") == default and hash_engine_for("meta") == "torch"
    with forced_mask_hash("torch"):
        assert hash_engine_for("cpu") == "torch"
    assert hash_engine_for("cpu") == default
    monkeypatch.setattr(mask_hash, "native_available", lambda: False)
    assert hash_engine_for("cpu") == "numpy"                  # no C compiler: the numpy engine
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert hash_engine_for("cpu") == "torch"                  # inside a trace: tensor ops only
    with pytest.raises(ValueError, match="the CPU only"):
        hash_mask_numpy(torch.tensor([1, 2]), 0, 8, 5, torch.device("meta"))


def test_environment_switch(monkeypatch):
    assert engine_from_environment("auto") is None and engine_from_environment("") is None
    assert engine_from_environment(" torch ") == "torch"
    with pytest.raises(ValueError, match="choose auto, torch, numpy, native"):
        engine_from_environment("philox")
    monkeypatch.setenv("ASYMLORA_MASK_HASH", "torch")
    assert engine_from_environment() == "torch"
    assert mask_hash.MASK_HASH.forced is None                 # read once, at import


def test_adapted_layer_trains_identically_with_either_engine():
    results = []
    for engine in HASH_ENGINES:
        torch.manual_seed(0)
        layer = AdaptedLinear(nn.Linear(96, 40), "enc.q", AdapterConfig(rank=4, alpha=8, dropout=0.2,
                                                                         init_B="gaussian")).train()
        x = torch.randn(3, 50, 96, requires_grad=True)
        with forced_mask_hash(engine):
            layer.delta(x).square().sum().backward()           # the adapter alone: dropped inputs get 0
        results.append((x.grad, layer.B.grad))
    for grads in results[1:]:
        assert torch.equal(results[0][0], grads[0]) and torch.equal(results[0][1], grads[1])
    assert (results[0][0] == 0).any()                        # the mask dropped some inputs


def test_small_eager_inputs_keep_the_mask_and_train_identically():
    from asymlora.adapters.dropout import forced_mask_path, unpack_mask
    from asymlora.adapters.linear import HashedFrozenAProjection

    keys = torch.tensor(stream_keys(*split_base(3), 9))
    a, b = torch.linalg.qr(torch.randn(64, 4))[0].t().contiguous(), torch.randn(32, 4, requires_grad=True)
    x = torch.randn(4, 32, 64, requires_grad=True)
    results = []
    for path in ("saved", "regenerated"):
        x.grad = b.grad = None
        with forced_mask_path(path):
            out = HashedFrozenAProjection.apply(x, a, b, 2.0, 0.3, keys)
        saved = [t for t in out.grad_fn.saved_tensors if t is not None and t.dtype == torch.uint8]
        assert len(saved) == (path == "saved")
        if saved:                                            # one bit per element: the mask itself
            assert saved[0].numel() == x.numel() // 8
            assert torch.equal(unpack_mask(saved[0], x.shape), hashed_drop_mask(keys, x.shape, 0.3))
        out.square().sum().backward()
        results.append((x.grad.clone(), b.grad.clone()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert (results[0][0] == 0).any()
