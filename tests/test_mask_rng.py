"""Dropout masks come from each layer's own seed stream: the global RNG is untouched, eval draws
nothing, activation checkpointing replays the same masks, and a saved stream state resumes it."""

import pytest
import torch
from torch import nn

from asymlora import AdapterConfig
from asymlora.adapters.inject import adapted_modules, inject
from asymlora.adapters.linear import AdaptedLinear


def layer(train="B", dropout=0.1):
    torch.manual_seed(0)
    inits = {"init_A": "kaiming"} if train == "AB" else {}
    return AdaptedLinear(nn.Linear(16, 12), "enc.q",
                         AdapterConfig(rank=4, alpha=8, dropout=dropout, train=train, init_B="gaussian", **inits))


@pytest.mark.parametrize("train", ["B", "AB"])
def test_training_forward_and_backward_leave_the_global_rng_alone(train):
    module = layer(train).train()
    x = torch.randn(4, 5, 16, requires_grad=True)
    state = torch.get_rng_state()
    module(x).sum().backward()
    assert torch.equal(torch.get_rng_state(), state)
    assert module.mask_state()["calls"] == 1


def test_eval_forward_draws_nothing():
    module = layer().eval()
    x = torch.randn(4, 16)
    state = torch.get_rng_state()
    module(x)
    assert torch.equal(torch.get_rng_state(), state) and module.mask_state()["calls"] == 0


def test_successive_forwards_draw_different_masks_and_a_saved_state_resumes_them():
    module = layer().train()
    x = torch.ones(8, 16)
    with torch.no_grad():
        first, second = module(x), module(x)
    assert not torch.equal(first, second)
    saved = module.mask_state()
    with torch.no_grad():
        third = module(x)
    resumed = layer().train()
    resumed.load_mask_state(saved)
    with torch.no_grad():
        assert torch.equal(resumed(x), third)
    with pytest.raises(ValueError, match="base seed"):
        resumed.load_mask_state({"base": 1, "calls": 0})


def _gradients(model, batch, checkpointing, reentrant):
    """Adapter gradients of one training step from a fixed global RNG state and mask stream."""
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
        model.enable_input_require_grads()
    else:
        model.gradient_checkpointing_disable()
    for module in adapted_modules(model).values():
        module.load_mask_state({"base": module.masks.base, "calls": 0})
        module.B.grad = None
    torch.manual_seed(5)
    model.train()
    loss = model(input_ids=batch).logits.square().sum()
    loss.backward()
    return loss.detach(), {n: m.B.grad.clone() for n, m in adapted_modules(model).items()}


@pytest.mark.parametrize("reentrant", [False, True])
def test_activation_checkpointing_gives_the_same_gradients(tiny_model, token_batch, reentrant):
    model = inject(tiny_model("bert"), AdapterConfig(rank=4, alpha=8, dropout=0.3, init_B="gaussian"))
    assert model.config.hidden_dropout_prob > 0                      # the model's own dropout is on too
    loss, plain = _gradients(model, token_batch, checkpointing=False, reentrant=reentrant)
    loss_ckpt, checkpointed = _gradients(model, token_batch, checkpointing=True, reentrant=reentrant)
    # (reentrant checkpointing runs the first forward without grad, through the dense-mask path:
    # the same mask, rounded differently from the sparse correction of the lean path)
    torch.testing.assert_close(loss_ckpt, loss, rtol=1e-6, atol=0)
    for name, grad in plain.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-6)
