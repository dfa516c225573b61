"""The typed adapter file: committed format-1 folders still load with their recorded outputs, the
reader verifies every hash, and the records round-trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from asymlora.adapters.adapter_file import (
    CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, AdapterMeta, FrozenFactor, ModuleEntry, read_adapter,
)
from asymlora.adapters.fingerprint import tensor_sha256
from asymlora.adapters.inject import adapted_modules
from asymlora.adapters.io import load_adapter, save_adapter
from asymlora.adapters.recipe import Recipe
from helpers import fresh_bert

FIXTURES = Path(__file__).parent / "fixtures" / "adapters"
QUERY0 = "bert.encoder.layer.0.attention.self.query"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The base model the committed folders were trained on (tests/fixtures/adapters/make_fixtures.py)."""
    from helpers import save_tiny_bert
    return save_tiny_bert(tmp_path_factory.mktemp("fixture_base"), seed=0)


@pytest.mark.parametrize("kind", ["b_only", "lora", "svd"])
def test_format1_folder_loads_with_its_recorded_outputs(base, kind):
    folder = FIXTURES / f"format1_{kind}"
    expected = load_file(FIXTURES / "format1_expected.safetensors")
    model = load_adapter(fresh_bert(base), folder)       # verifies tensor file, fingerprint and frozen hashes
    stored = load_file(folder / WEIGHTS_FILE)
    recorded = json.loads((folder / CONFIG_FILE).read_text())
    assert recorded["format_version"] == 1
    for name, module in adapted_modules(model).items():
        for factor in module.train_mode:
            assert torch.equal(getattr(module, factor), stored[f"{name}.{factor}"])
        for factor in module.frozen_factors:
            assert tensor_sha256(getattr(module, factor)) == recorded["modules"][name]["frozen"][factor]["sha256"]
    assert torch.equal(model.classifier.weight, stored["classifier.weight"])
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"]).logits
    torch.testing.assert_close(logits, expected[f"logits_{kind}"], rtol=0, atol=1e-6)


def test_format1_svd_recipe_keeps_its_legacy_signs_and_resaves_stored(base, tmp_path):
    state = read_adapter(FIXTURES / "format1_svd")
    recipe = state.meta.modules[QUERY0].frozen["A"].recipe
    assert recipe.init == "svd_format1" and f"{QUERY0}.A" not in state.frozen   # needs W0: checked at load
    model = load_adapter(fresh_bert(base), FIXTURES / "format1_svd")
    save_adapter(model, tmp_path / "again")
    again = read_adapter(tmp_path / "again")
    assert again.meta.format_version == FORMAT_VERSION
    assert again.meta.modules[QUERY0].frozen["A"].stored and f"{QUERY0}.A" in again.tensors
    reloaded = load_adapter(fresh_bert(base), tmp_path / "again")
    assert torch.equal(adapted_modules(reloaded)[QUERY0].A, adapted_modules(model)[QUERY0].A)


def test_reader_returns_typed_records_and_verifies_frozen_factors():
    state = read_adapter(FIXTURES / "format1_b_only")
    entry = state.meta.modules[QUERY0]
    assert isinstance(state.meta, AdapterMeta) and isinstance(entry, ModuleEntry)
    assert isinstance(entry.frozen["A"], FrozenFactor) and entry.shape == (32, 32) and entry.trained == "B"
    assert entry.frozen["A"].recipe == Recipe("orthonormal", 0, QUERY0, "A", (4, 32), "float32")
    assert tensor_sha256(state.frozen[f"{QUERY0}.A"]) == entry.frozen["A"].sha256
    assert AdapterMeta.from_dict(state.meta.to_dict()) == state.meta


def test_reader_refuses_a_frozen_factor_whose_hash_differs(tmp_path):
    folder = shutil.copytree(FIXTURES / "format1_b_only", tmp_path / "edited")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    meta["modules"][QUERY0]["frozen"]["A"]["recipe"]["seed"] = 1      # a recipe that draws another A
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"frozen factor {QUERY0}\.A regenerated .*store_frozen=True"):
        read_adapter(folder)
