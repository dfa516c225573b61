"""MMLU scoring: prompt texts, prefix-KV reuse gives the scores of full forwards, letter scores equal
a direct next-token computation, shots are dropped (and counted) when a prompt exceeds the context."""

from dataclasses import replace

import pytest
import torch

from asymlora.evaluation.mmlu.formats import FORMATS, get_format
from asymlora.evaluation.mmlu.model import load_causal_lm
from asymlora.evaluation.mmlu.run import Encoder, MMLUOptions, evaluate_mmlu
from asymlora.tasks.mmlu import load_local
from mmlu_fixtures import FIXTURES, save_tiny_bpe_llama


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_causal_lm(save_tiny_bpe_llama(tmp_path_factory.mktemp("bpe") / "model", max_positions=512))


@pytest.fixture(scope="module")
def data():
    return load_local(FIXTURES)


def test_prompt_texts(data):
    q, shot = data.test["astronomy"][1], data.shots["astronomy"][0]
    paper = get_format("paper").context(q, [shot])
    assert paper == ("Question: Which planet is closest to the Sun?\nA. Venus\nB. Mercury\nC. Mars\nD. Earth\n"
                     "Answer: B\n\nQuestion: What is a light-year a unit of?\nA. Time\nB. Brightness\nC. Distance\n"
                     "D. Mass\nAnswer:")
    harness = get_format("harness").context(q, [])
    assert harness == ("The following are multiple choice questions (with answers) about astronomy.\n\n"
                       "What is a light-year a unit of?\nA. Time\nB. Brightness\nC. Distance\nD. Mass\nAnswer:")
    cloze = get_format("cloze")
    assert cloze.context(q, [shot]).endswith("Answer: Mercury\n\nQuestion: What is a light-year a unit of?\nAnswer:")
    assert cloze.continuations(q) == (" Time", " Brightness", " Distance", " Mass")
    with pytest.raises(ValueError, match="did you mean 'cloze'"):
        get_format("clozee")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_prefix_reuse_gives_the_scores_of_full_forwards(lm, data, name):
    model, tokenizer = lm
    options = MMLUOptions(format=name, shots=3, batch_size=4)
    reused = evaluate_mmlu(model, tokenizer, data, options)
    full = evaluate_mmlu(model, tokenizer, data, replace(options, reuse=False))
    assert [p.predicted for p in reused.predictions] == [p.predicted for p in full.predictions]
    for a, b in zip(reused.predictions, full.predictions):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert reused.stats.prefix > 0 and full.stats.prefix == 0
    assert reused.stats.forwarded < full.stats.forwarded


def test_prefix_boundary_token_is_not_reused(lm, data):
    """Byte-level BPE encodes the prefix's final blank line differently once a question follows: the
    cached length stops before it (the fixture tokenizer is built to show this)."""
    _, tokenizer = lm
    encoder, fmt = Encoder(tokenizer), get_format("harness")
    shots, q = data.shots["anatomy"][:2], data.test["anatomy"][0]
    prefix, full = encoder.encode(fmt.prefix("anatomy", shots)), encoder.encode(fmt.context(q, shots))
    assert full[: len(prefix) - 1] == prefix[:-1] and full[len(prefix) - 1] != prefix[-1]


def test_letter_scores_equal_a_direct_forward(lm, data):
    model, tokenizer = lm
    run = evaluate_mmlu(model, tokenizer, data, MMLUOptions(format="paper", shots=2))
    letters = [tokenizer.encode(f" {x}", add_special_tokens=False)[-1] for x in "ABCD"]
    for prediction in run.predictions[:4]:
        q = next(x for x in data.test[prediction.subject] if x.index == prediction.index)
        ids = tokenizer(get_format("paper").context(q, data.shots[q.subject][:2]), return_tensors="pt").input_ids
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0, -1], dim=-1)
        assert list(prediction.scores) == pytest.approx(logprobs[letters].tolist(), abs=1e-5)
        assert prediction.predicted == "ABCD"[int(logprobs[letters].argmax())]


def test_shots_are_dropped_until_the_prompt_fits(lm, data):
    model, tokenizer = lm
    encoder, fmt = Encoder(tokenizer), get_format("paper")
    limit = 200
    run = evaluate_mmlu(model, tokenizer, data, MMLUOptions(format="paper", shots=5, max_length=limit))
    dropped = 0
    for prediction in run.predictions:
        q = next(x for x in data.test[prediction.subject] if x.index == prediction.index)
        pool = data.shots[q.subject]
        fits = [k for k in range(6) if len(encoder.encode(fmt.context(q, pool[:k]))) <= limit]
        assert prediction.shots == max(fits)
        dropped += 5 - prediction.shots
    assert dropped == run.shots_dropped > 0
    assert run.questions_short_of_shots == sum(p.shots < 5 for p in run.predictions)
    assert run.truncated == 0
    harness = evaluate_mmlu(model, tokenizer, data, MMLUOptions(format="harness", shots=5, max_length=limit))
    assert harness.shots_dropped == 0 and harness.truncated > 0  # the harness truncates instead
