"""Mask-stream versions: v2 is the default, v1 stays usable and draws exactly its old masks, and the
version enters a run's identity only with dropout > 0 and not v1 (so no other fingerprint moves)."""

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.dropout import drop_mask, hashed_drop_mask
from asymlora.adapters.linear import AdaptedLinear
from asymlora.adapters.mask_stream import (DEFAULT_MASK_STREAM, LEGACY_MASK_STREAM, MASK_STREAMS, call_seed,
                                           mask_stream_identity, split_base, stream_keys)
from asymlora.experiments.store import fingerprint
from asymlora.training.config import TrainConfig, identity


def _layer(**config):
    torch.manual_seed(0)
    return AdaptedLinear(nn.Linear(16, 12), "enc.q", AdapterConfig(rank=4, alpha=8, init_B="gaussian", **config))


def test_registry_and_defaults():
    assert set(MASK_STREAMS) == {"v1", "v2"} and DEFAULT_MASK_STREAM == "v2" and LEGACY_MASK_STREAM == "v1"
    assert MASK_STREAMS["v2"].traceable and not MASK_STREAMS["v1"].traceable
    assert AdapterConfig().mask_stream == "v2" and _layer(dropout=0.1).mask_stream == "v2"


@pytest.mark.parametrize("stream", ["v1", "v2"])
def test_each_version_draws_its_own_documented_mask(stream):
    layer = _layer(dropout=0.3, mask_stream=stream).train()
    x = torch.ones(6, 16)
    with torch.no_grad():
        out = layer.delta(x)
    if stream == "v1":
        dropped = drop_mask(call_seed(layer.masks.base, 0), x.shape, 0.3, "cpu")
    else:
        dropped = hashed_drop_mask(torch.tensor(stream_keys(*split_base(layer.masks.base), 0)), x.shape, 0.3)
    expected = torch.nn.functional.linear(torch.nn.functional.linear(x.masked_fill(dropped, 0) / 0.7, layer.A),
                                          layer.B) * layer.scaling
    torch.testing.assert_close(out, expected)
    assert layer.mask_state() == {"base": layer.masks.base, "calls": 1}


def test_v2_counter_is_a_buffer_left_out_of_the_state_dict():
    layer = _layer(dropout=0.1)
    assert {"mask_calls", "mask_base"} <= dict(layer.named_buffers()).keys()
    assert not {"mask_calls", "mask_base"} & layer.state_dict().keys()
    assert "mask_calls" not in dict(_layer(dropout=0.0).named_buffers())     # no dropout: the layer is as before
    assert "mask_calls" not in dict(_layer(dropout=0.1, mask_stream="v1").named_buffers())


def test_identity_gains_the_version_only_with_dropout_and_not_v1():
    assert mask_stream_identity(0.0, None) == {} and mask_stream_identity(0.0, "v2") == {}
    assert mask_stream_identity(0.1, "v1") == {} and mask_stream_identity(0.1, None) == {"mask_stream": "v2"}
    base = dict(task="tweets", model="tiny-bert", method="b_only", rank=2)
    legacy_keys = set(identity(TrainConfig(**base, dropout=0.0)))
    assert "mask_stream" not in legacy_keys
    # without dropout, or with v1, the identity is the one runs always had: the same fingerprint
    for dropout, stream in ((0.0, None), (0.0, "v2"), (0.0, "v1"), (0.1, "v1")):
        config = TrainConfig(**base, dropout=dropout, mask_stream=stream)
        assert set(identity(config)) == legacy_keys
    plain = fingerprint(identity(TrainConfig(**base, dropout=0.1, mask_stream="v1")))
    new = fingerprint(identity(TrainConfig(**base, dropout=0.1)))
    assert new != plain and identity(TrainConfig(**base, dropout=0.1))["mask_stream"] == "v2"
