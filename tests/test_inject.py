"""Injection into tiny random BERT / RoBERTa / Llama / GPT-2 models: freezing, counts, merging, PEFT parity."""

import pytest
import torch

import asymlora as al
from asymlora.adapters.inject import find_targets

TARGETS = {"bert": ["query", "value"], "roberta": ["query", "value"], "llama": ["q_proj", "v_proj"],
           "gpt2": ["c_attn"]}
HEAD = {"bert": ["classifier"], "roberta": ["classifier"], "llama": [], "gpt2": []}


def head_params(model, names):
    return sum(p.numel() for n in names for p in model.get_submodule(n).parameters())


def logits(model, ids):
    return model(input_ids=ids).logits


def step(model, ids, steps=3):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        logits(model, ids).square().mean().backward()
        opt.step()


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_b_only_trains_b_and_leaves_a_bit_identical(arch, tiny_model, token_batch):
    model = al.inject(tiny_model(arch), al.AdapterConfig(rank=4, targets=TARGETS[arch], modules_to_save=HEAD[arch]))
    modules = al.adapted_modules(model)
    assert modules
    expected = sum(m.out_features * m.rank for m in modules.values()) + head_params(model, HEAD[arch])
    assert al.trainable_parameters(model) == expected
    a_before = {n: m.A.clone() for n, m in modules.items()}
    model.train()
    step(model, token_batch)
    for name, module in modules.items():
        assert torch.equal(module.A, a_before[name])
        assert module.B.abs().sum() > 0


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_a_only_trains_a_and_leaves_b_bit_identical(arch, tiny_model, token_batch):
    cfg = al.AdapterConfig(rank=4, train="A", init_A="zero", init_B="orthonormal", targets=TARGETS[arch])
    model = al.inject(tiny_model(arch), cfg)
    modules = al.adapted_modules(model)
    assert al.trainable_parameters(model) == sum(m.in_features * m.rank for m in modules.values())
    b_before = {n: m.B.clone() for n, m in modules.items()}
    step(model.train(), token_batch)
    for name, module in modules.items():
        assert torch.equal(module.B, b_before[name]) and module.A.abs().sum() > 0


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_merged_equals_unmerged_and_disable_gives_base(arch, tiny_model, token_batch):
    base = tiny_model(arch)
    base_out = logits(base, token_batch).detach()
    model = al.inject(base, al.AdapterConfig(rank=4, targets="all-linear", init_B="gaussian"))
    adapted = logits(model, token_batch).detach()
    assert not torch.allclose(adapted, base_out, atol=1e-4)
    al.merge(model)
    assert torch.allclose(logits(model, token_batch), adapted, atol=1e-5)
    with al.disable_adapters(model):
        assert torch.allclose(logits(model, token_batch), base_out, atol=1e-5)
    assert all(m.merged for m in al.adapted_modules(model).values())
    al.unmerge(model)
    assert torch.allclose(logits(model, token_batch), adapted, atol=1e-5)


def test_lora_equals_peft_outputs_and_gradients(tiny_model, token_batch):
    from peft import LoraConfig, get_peft_model

    ours = al.inject(tiny_model("bert"), al.AdapterConfig(rank=4, alpha=8, train="AB", init_A="kaiming",
                                                           targets=["query", "value"]))
    theirs = get_peft_model(tiny_model("bert"), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, module in al.adapted_modules(ours).items():
            module.B.normal_()   # a non-zero B so that A gets a gradient too
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(module.A)
            peft_layer.lora_B["default"].weight.copy_(module.B)
    out_ours, out_theirs = logits(ours, token_batch), logits(theirs, token_batch)
    assert torch.allclose(out_ours, out_theirs, atol=1e-5)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    for name, module in al.adapted_modules(ours).items():
        peft_layer = theirs.base_model.model.get_submodule(name)
        assert torch.allclose(module.A.grad, peft_layer.lora_A["default"].weight.grad, atol=1e-5)
        assert torch.allclose(module.B.grad, peft_layer.lora_B["default"].weight.grad, atol=1e-5)


def test_target_forms_and_head_skipping(tiny_model):
    model = tiny_model("bert")
    linear = find_targets(model, al.AdapterConfig(targets="all-linear"))
    assert "classifier" not in linear and "bert.encoder.layer.0.attention.self.key" in linear
    regex = find_targets(model, al.AdapterConfig(targets=r"re:.*layer\.1\..*(query|key)"))
    assert regex == ["bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.key"]
    llama = tiny_model("llama")
    assert "lm_head" not in find_targets(llama, al.AdapterConfig(targets="all-linear"))


def test_rank_pattern_sets_per_module_rank(tiny_model):
    model = al.inject(tiny_model("bert"), al.AdapterConfig(rank=4, rank_pattern={"value": 2}))
    ranks = {n.rsplit(".", 1)[1]: m.rank for n, m in al.adapted_modules(model).items()}
    assert ranks == {"query": 4, "value": 2}


def test_bad_injections_fail_clearly(tiny_model):
    with pytest.raises(ValueError, match="no module matches.*named.*query"):
        al.inject(tiny_model("bert"), al.AdapterConfig(targets=["q_proj"]))
    with pytest.raises(ValueError, match="not a linear layer"):
        al.inject(tiny_model("bert"), al.AdapterConfig(targets=["attention"]))
    with pytest.raises(ValueError, match=r"rank is 64 and d_in is 32"):
        al.inject(tiny_model("bert"), al.AdapterConfig(rank=64))
    with pytest.raises(ValueError, match="modules_to_save"):
        al.inject(tiny_model("bert"), al.AdapterConfig(modules_to_save=["score"]))
    model = al.inject(tiny_model("bert"), al.AdapterConfig(rank=2))
    with pytest.raises(ValueError, match="already has asymlora adapters"):
        al.inject(model, al.AdapterConfig(rank=2))
    with pytest.raises(ValueError, match="no asymlora adapters"):
        al.merge(tiny_model("bert"))


def test_summary_lists_modules_and_totals(tiny_model):
    model = al.inject(tiny_model("bert"), al.AdapterConfig(rank=4))
    text = al.summary(model)
    assert "bert.encoder.layer.1.attention.self.value" in text
    assert f"trainable {al.trainable_parameters(model):,}" in text
