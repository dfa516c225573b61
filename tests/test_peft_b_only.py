"""``asymlora.peft.b_only``: a stock PeftModel whose lora_A is asymlora's seeded frozen recipe."""

import pytest
import torch

import asymlora as al
from asymlora.errors import UserError
from asymlora.peft import apply_frozen_recipe, b_only, freeze_lora_A

TARGETS = ["q_proj", "v_proj"]


def _factors(peft_model, factor: str, adapter: str = "default") -> dict[str, torch.nn.Parameter]:
    from peft.tuners.lora import LoraLayer

    return {name: getattr(module, f"lora_{factor}")[adapter].weight
            for name, module in peft_model.base_model.model.named_modules()
            if isinstance(module, LoraLayer) and adapter in module.lora_A}


def test_lora_A_is_the_native_layers_frozen_A_bit_for_bit(tiny_model):
    peft_model = b_only(tiny_model("llama"), rank=4, seed=7, target_modules=TARGETS)
    native = al.adapted_modules(al.inject(tiny_model("llama"), al.AdapterConfig(rank=4, seed=7, targets=TARGETS)))
    lora_A = _factors(peft_model, "A")
    assert set(lora_A) == set(native) and len(native) == 4
    for name, module in native.items():
        assert torch.equal(lora_A[name], module.A), name
        assert torch.allclose(lora_A[name] @ lora_A[name].T, torch.eye(4), atol=1e-6)  # A Aᵀ = I_r
    other_seed = _factors(b_only(tiny_model("llama"), rank=4, seed=8, target_modules=TARGETS), "A")
    assert not any(torch.equal(other_seed[n], lora_A[n]) for n in native)


def test_only_lora_B_trains_and_starts_at_zero(tiny_model, token_batch):
    base = tiny_model("llama")
    with torch.no_grad():
        expected = base(token_batch).logits
    peft_model = b_only(base, rank=4, seed=0, target_modules=TARGETS)
    trained = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trained and all(".lora_B." in n for n in trained)
    assert len(trained) == 4 and not any(p.requires_grad for p in _factors(peft_model, "A").values())
    assert all(not p.any() for p in _factors(peft_model, "B").values())
    with torch.no_grad():
        assert torch.equal(peft_model(token_batch).logits, expected)  # B = 0: the base function


def test_a_peft_model_gains_a_b_only_adapter_and_set_adapter_is_undone(tiny_model):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(tiny_model("llama"), LoraConfig(r=2, target_modules=["q_proj"]))
    b_only(peft_model, rank=4, seed=0, target_modules=TARGETS, adapter_name="asym")
    assert peft_model.active_adapter == "asym"
    peft_model.set_adapter("asym")  # PEFT turns requires_grad on for every factor of the active adapter
    assert any(p.requires_grad for p in _factors(peft_model, "A", "asym").values())
    assert freeze_lora_A(peft_model, "asym") == 4
    assert not any(p.requires_grad for p in _factors(peft_model, "A", "asym").values())
    with pytest.raises(ValueError, match="already has an adapter named 'asym'"):
        b_only(peft_model, rank=4, adapter_name="asym")
    with pytest.raises(ValueError, match="no PEFT LoRA layer with an adapter named 'none'"):
        apply_frozen_recipe(peft_model, 0, "none")


def test_a_rank_above_the_input_width_is_refused(tiny_model):
    with pytest.raises(UserError, match="needs rank <= d_in"):
        b_only(tiny_model("llama"), rank=33, target_modules=["q_proj"])


def test_saves_a_normal_peft_folder_that_peft_and_import_peft_read(tiny_model, token_batch, tmp_path):
    from peft import PeftModel

    peft_model = b_only(tiny_model("llama"), rank=4, seed=3, target_modules=TARGETS)
    with torch.no_grad():
        for weight in _factors(peft_model, "B").values():
            weight.normal_(0, 0.1)
        expected = peft_model(token_batch).logits
    peft_model.save_pretrained(tmp_path / "peft")
    assert sorted(p.name for p in (tmp_path / "peft").iterdir()) == ["README.md", "adapter_config.json",
                                                                       "adapter_model.safetensors"]
    reloaded = PeftModel.from_pretrained(tiny_model("llama"), tmp_path / "peft")
    imported = al.import_peft(tiny_model("llama"), tmp_path / "peft", freeze="A")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(token_batch).logits, expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(imported(token_batch).logits, expected, rtol=1e-5, atol=1e-5)
    lora_A = _factors(peft_model, "A")
    assert all(torch.equal(m.A, lora_A[n]) for n, m in al.adapted_modules(imported).items())
