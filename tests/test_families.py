"""Task families: one runner for every kind of task.

A tiny random BERT (classification), Llama (causal LM), BART (seq2seq) and ViT (images) each train
2 steps and evaluate through `asymlora train`, and each family's own rules are checked directly:
response-only labels and counted truncation for causal LMs, the loss-kwargs policy, metric direction.
"""

from __future__ import annotations

import json

import pytest

from helpers import run_cli
from asymlora.tasks import FAMILIES, get_family, get_task
from asymlora.tasks.families import greater_is_better
from asymlora.tasks.families.causal_lm import IGNORE, encode_pair
from asymlora.tasks.rouge import rouge, sentences

SMALL = ["--max-steps", "2", "--train-limit", "16", "--eval-limit", "8", "--max-length", "64", "--batch-size", "4",
         "--threads", "1"]

CASES = {  # task, model, family, metric names
    "classification": ("tweets", "tiny-bert", "sequence_classification", {"accuracy", "macro_f1"}),
    "causal_lm": ("aclsum_summary", "tiny-llama", "causal_lm", {"loss", "token_accuracy"}),
    "seq2seq": ("aclsum_summary_s2s", "tiny-bart", "seq2seq", {"rouge1", "rouge2", "rougeL", "rougeLsum"}),
    "image": ("digits", "tiny-vit", "image_classification", {"accuracy"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_family_trains_and_evaluates_through_the_same_runner(case, tmp_path, capsys):
    task, model, family, metrics = CASES[case]
    out = tmp_path / case
    code, _, err = run_cli(["train", "--task", task, "--model", model, "--method", "b_only", "--rank", "2",
                            "--out", str(out), *SMALL], capsys)
    assert code == 0, err
    record = json.loads((out / "metrics.json").read_text())
    assert record["family"] == family and record["train_steps"] == 2
    assert set(record["metrics"]) == metrics and record["history"]
    assert record["trainable_params"] > 0 and (out / "adapter" / "adapter.safetensors").stat().st_size > 0
    if family == "causal_lm":  # no head: only B (d_out × r) of q_proj (32 out) and k_proj (1 KV head: 16 out)
        assert record["trainable_params"] == 2 * (32 + 16) * 2  # in 2 layers, r = 2
    if family == "seq2seq":
        assert all(0.0 <= v <= 100.0 for v in record["metrics"].values())


def test_encode_pair_masks_the_prompt_and_counts_what_it_cuts():
    ids, labels, what = encode_pair([1, 2, 3], [7, 8, 9], max_length=10)
    assert ids == [1, 2, 3, 7, 8, 9] and labels == [IGNORE] * 3 + [7, 8, 9] and what == ""
    ids, labels, what = encode_pair(list(range(10, 18)), [7, 8, 9], max_length=8)  # prompt keeps its end
    assert ids == [13, 14, 15, 16, 17, 7, 8, 9] and labels[:5] == [IGNORE] * 5 and what == "prompt"
    ids, labels, what = encode_pair(list(range(10, 18)), list(range(30, 40)), max_length=8)  # both cut
    assert ids == [14, 15, 16, 17, 30, 31, 32, 33] and what == "both"
    assert encode_pair([1, 2], [], 8) == ([], [], "empty")


def test_loss_policy_and_metric_direction_belong_to_the_family():
    assert not get_family("sequence_classification").token_level_loss
    assert not get_family("image_classification").token_level_loss
    assert get_family("causal_lm").token_level_loss and get_family("seq2seq").token_level_loss
    assert not greater_is_better("loss") and greater_is_better("accuracy") and greater_is_better("rouge1")
    assert {get_task(t).family for t, *_ in CASES.values()} == set(FAMILIES)
    with pytest.raises(ValueError, match="did you mean 'seq2seq'"):
        get_family("seq2sec")


def test_rouge_on_known_pairs():
    # identical texts: every F-measure is 100; disjoint words: 0
    assert rouge(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(
        {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0})
    assert rouge(["dogs bark"], ["cats meow"])["rouge1"] == 0.0
    # "the cat sat" vs "the cat ran": unigram P = R = 2/3; bigrams 1 of 2 -> F 1/2; LCS 2 -> 2/3
    scores = rouge(["the cat sat"], ["the cat ran"])
    assert scores["rouge1"] == pytest.approx(200 / 3) and scores["rouge2"] == pytest.approx(50.0)
    assert scores["rougeL"] == pytest.approx(200 / 3)
    assert sentences("One. Two!  Three? four") == ["One.", "Two!", "Three?", "four"]
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        rouge(["a", "b"], ["a"])
