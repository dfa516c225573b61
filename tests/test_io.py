"""Adapter files: round trips, what the file holds, every error through the public API, save_merged."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from asymlora.adapters import init as init_module  # noqa: E402
from asymlora.adapters.config import AdapterConfig  # noqa: E402
from asymlora.adapters.inject import adapted_modules, inject, merge  # noqa: E402
from asymlora.adapters.io import (  # noqa: E402
    CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, fingerprint, load_adapter, save_adapter, save_merged, tensor_sha256,
)
from asymlora.adapters.linear import AdaptedLinear  # noqa: E402

QUERY0 = "bert.encoder.layer.0.attention.self.query"


from helpers import fresh_bert as fresh  # noqa: E402
from helpers import randomise_trained, save_tiny_bert as tiny_bert_folder  # noqa: E402


def trained(path, seed=1, **overrides):
    """A tiny BERT with adapters whose trained factors (and head) hold random 'trained' values."""
    fields = dict(rank=4, alpha=8.0, modules_to_save=["classifier"])
    fields.update(overrides)
    return randomise_trained(inject(fresh(path), AdapterConfig(**fields)), seed)


INPUT = torch.randint(0, 100, (3, 9), generator=torch.Generator().manual_seed(0))


def logits(model):
    with torch.no_grad():
        return model(input_ids=INPUT).logits


# ------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("train", ["B", "A", "AB"])
def test_round_trip_is_bit_identical(tiny, tmp_path, train):
    model = trained(tiny, train=train)
    save_adapter(model, tmp_path / "adapter")
    loaded = load_adapter(fresh(tiny), tmp_path / "adapter")
    for name, module in adapted_modules(model).items():
        other = adapted_modules(loaded)[name]
        for factor in "AB":
            assert torch.equal(getattr(module, factor), getattr(other, factor))
            assert isinstance(getattr(other, factor), torch.nn.Parameter) == (factor in train)
        assert other.scaling == module.scaling
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)
    assert torch.equal(logits(loaded), logits(model))


def test_file_holds_only_trained_tensors(tiny, tmp_path):
    model = trained(tiny)
    save_adapter(model, tmp_path / "adapter")
    keys = set(load_file(tmp_path / "adapter" / WEIGHTS_FILE))
    expected = {f"{name}.B" for name in adapted_modules(model)} | {"classifier.weight", "classifier.bias"}
    assert keys == expected
    meta = json.loads((tmp_path / "adapter" / CONFIG_FILE).read_text())
    frozen = meta["modules"][QUERY0]["frozen"]["A"]
    assert frozen["stored"] is False
    assert frozen["recipe"] == {"init": "orthonormal", "seed": 0, "module": QUERY0, "factor": "A",
                                "shape": [4, 32], "dtype": "float32"}
    assert frozen["sha256"] == tensor_sha256(adapted_modules(model)[QUERY0].A)
    assert meta["format_version"] == FORMAT_VERSION and meta["config"]["rank"] == 4
    assert set(meta["base_model"]["modules"]) == set(adapted_modules(model))
    assert not [p for p in (tmp_path / "adapter").iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE)]


def test_store_frozen_writes_the_frozen_factor(tiny, tmp_path):
    model = trained(tiny)
    save_adapter(model, tmp_path / "adapter", store_frozen=True)
    keys = set(load_file(tmp_path / "adapter" / WEIGHTS_FILE))
    assert {f"{name}.A" for name in adapted_modules(model)} <= keys
    assert torch.equal(logits(load_adapter(fresh(tiny), tmp_path / "adapter")), logits(model))


def test_rank_pattern_rslora_and_svd_round_trip(tiny, tmp_path):
    model = trained(tiny, init_A="svd", use_rslora=True, rank_pattern={"layer.1.attention.self.value": 2})
    save_adapter(model, tmp_path / "adapter")
    loaded = load_adapter(fresh(tiny), tmp_path / "adapter")
    assert adapted_modules(loaded)["bert.encoder.layer.1.attention.self.value"].rank == 2
    assert torch.equal(logits(loaded), logits(model))


def test_merged_model_saves_the_unmerged_fingerprint(tiny, tmp_path):
    model = trained(tiny, init_A="svd")
    expected_fingerprint = fingerprint(model)
    reference = logits(model)
    merge(model)
    assert fingerprint(model) == expected_fingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # svd factors must still match their recipe (from the unmerged W0)
        save_adapter(model, tmp_path / "adapter")
    assert WEIGHTS_FILE in os.listdir(tmp_path / "adapter")
    keys = set(load_file(tmp_path / "adapter" / WEIGHTS_FILE))
    assert {f"{name}.A" for name in adapted_modules(model)} <= keys   # svd factors are stored by default
    loaded = load_adapter(fresh(tiny), tmp_path / "adapter")
    torch.testing.assert_close(logits(loaded), reference, atol=1e-5, rtol=0)


def test_edited_frozen_factor_is_stored_with_a_warning(tiny, tmp_path):
    model = trained(tiny)
    module = adapted_modules(model)[QUERY0]
    module.A.mul_(2.0)
    with pytest.warns(UserWarning, match=QUERY0):
        save_adapter(model, tmp_path / "adapter")
    assert f"{QUERY0}.A" in load_file(tmp_path / "adapter" / WEIGHTS_FILE)
    assert torch.equal(logits(load_adapter(fresh(tiny), tmp_path / "adapter")), logits(model))


# ------------------------------------------------------------------------------- errors
@pytest.fixture()
def saved(tiny, tmp_path):
    model = trained(tiny)
    return save_adapter(model, tmp_path / "adapter")


def _untouched(model):
    return not any(isinstance(m, AdaptedLinear) for m in model.modules())


def test_missing_folder_and_files(tiny, saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_adapter(fresh(tiny), tmp_path / "nowhere")
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        load_adapter(fresh(tiny), saved)
    (saved / CONFIG_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=CONFIG_FILE):
        load_adapter(fresh(tiny), saved)


def test_truncated_and_corrupt_files(tiny, saved):
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    base = fresh(tiny)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_adapter(base, saved)
    assert _untouched(base)
    text = (saved / CONFIG_FILE).read_text()
    (saved / CONFIG_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_adapter(base, saved)


def test_unknown_format_version(tiny, saved):
    meta = json.loads((saved / CONFIG_FILE).read_text())
    meta["format_version"] = 99
    (saved / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format version 99"):
        load_adapter(fresh(tiny), saved)


def test_shape_mismatch_names_the_module(saved, tmp_path):
    other = fresh(tiny_bert_folder(tmp_path / "wide", hidden=48))
    with pytest.raises(ValueError, match=f"module '{QUERY0}': weight is 48×48"):
        load_adapter(other, saved)
    assert _untouched(other)


def test_fingerprint_mismatch_names_the_module(saved, tmp_path):
    other = fresh(tiny_bert_folder(tmp_path / "other", seed=5))
    with pytest.raises(ValueError, match=f"base model mismatch at module '{QUERY0}'.*differ"):
        load_adapter(other, saved)
    assert _untouched(other)
    assert not _untouched(load_adapter(other, saved, check_weights=False))


def test_frozen_hash_mismatch_suggests_store_frozen(tiny, saved, tmp_path, monkeypatch):
    model = load_adapter(fresh(tiny), saved)
    save_adapter(model, tmp_path / "stored", store_frozen=True)
    original = init_module.INITIALISERS["orthonormal"]
    monkeypatch.setitem(init_module.INITIALISERS, "orthonormal", lambda request: original(request) * -1.0)
    base = fresh(tiny)
    with pytest.raises(ValueError, match=rf"frozen factor {QUERY0}\.A .*store_frozen=True"):
        load_adapter(base, saved)
    assert _untouched(base)
    # the same adapter saved with its frozen factor stored still loads, identically
    assert torch.equal(logits(load_adapter(base, tmp_path / "stored")), logits(model))


def test_already_adapted_and_peft_folder_are_refused(tiny, saved, tmp_path):
    with pytest.raises(ValueError, match="already has asymlora adapters"):
        load_adapter(trained(tiny), saved)
    (tmp_path / "peft").mkdir()
    (tmp_path / "peft" / CONFIG_FILE).write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(ValueError, match="import_peft"):
        load_adapter(fresh(tiny), tmp_path / "peft")


def test_overwriting_leaves_no_temporary_files(tiny, saved):
    save_adapter(trained(tiny, seed=7), saved)
    assert sorted(os.listdir(saved)) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------- merged export
def test_save_merged_is_a_plain_transformers_folder(tiny, tmp_path):
    model = trained(tiny)
    reference = logits(model)
    save_merged(model, tmp_path / "merged")
    assert not any(m.merged for m in adapted_modules(model).values())  # left as it was
    keys = set(load_file(tmp_path / "merged" / "model.safetensors"))
    assert f"{QUERY0}.weight" in keys and not any(".base." in k or k.endswith((".A", ".B")) for k in keys)
    plain = BertForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(logits(plain), reference, atol=1e-5, rtol=0)
    assert _untouched(plain)


# ------------------------------------------------------------------------------- sizes command
def test_sizes_command_writes_json_and_table(tmp_path):
    import typer
    from typer.testing import CliRunner

    from asymlora.commands import sizes

    app = typer.Typer()
    sizes.register(app)
    app.command("noop")(lambda: None)  # keep typer in multi-command mode
    result = CliRunner().invoke(app, ["sizes", "--quick", "--rank", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sizes.json").read_text())
    rows = {row["name"]: row for row in data["rows"]}
    assert set(rows) == {"ours_b_only", "ours_lora", "ours_as_peft", "peft_lora"}
    for row in rows.values():
        assert (tmp_path / "files" / row["folder"] / row["tensor_file"]).stat().st_size == row["tensor_bytes"]
    # tiny BERT, r=4, q/v in 2 layers: B-only stores 4 × 32 × 4 numbers, LoRA twice that
    assert rows["ours_b_only"]["stored_numbers"] == 4 * 32 * 4
    assert rows["peft_lora"]["stored_numbers"] == 2 * rows["ours_b_only"]["stored_numbers"]
    assert rows["ours_b_only"]["tensor_bytes"] < 0.55 * rows["peft_lora"]["tensor_bytes"]
    assert "ours_b_only" in (tmp_path / "sizes.md").read_text()


def test_head_of_another_shape_is_refused_before_touching_the_base(tiny, saved, tmp_path):
    folder = tmp_path / "five_labels"
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                             intermediate_size=37, num_labels=5)).save_pretrained(folder)
    other = fresh(folder)
    with pytest.raises(ValueError, match=r"'classifier\.(weight|bias)' .*modules_to_save"):
        load_adapter(other, saved)
    assert _untouched(other)
