"""Summarisation scoring and data: ROUGE against hand-computed values and rouge-score's own scorer,
bootstrap intervals, the local-file loaders of XSum / CNN-DM on fixtures and their bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asymlora.errors import UserError
from asymlora.evaluation.bootstrap import bootstrap_means
from asymlora.tasks import get_task
from asymlora.tasks.rouge import ROUGE_TYPES, rouge, rouge_per_example, with_newlines

FIXTURES = Path(__file__).parent / "fixtures" / "summarisation" / "xsum"


def test_rouge_lsum_differs_from_rouge_l_by_hand():
    # reference sentences [alpha beta] [gamma delta]; prediction [delta gamma] [alpha beta]
    # ROUGE-1: all 4 unigrams shared -> 100. ROUGE-2: reference bigrams ab, bg, gd; prediction dg, ga, ab:
    # 1 shared of 3 each -> P = R = 1/3. ROUGE-L: LCS(a b g d, d g a b) = 2 -> 50.
    # ROUGE-Lsum: [a b] gets its union LCS 2 (from [a b]), [g d] gets 1 (from [d g]) -> 3 of 4 -> 75.
    scores = rouge(["delta gamma. alpha beta."], ["alpha beta. gamma delta."])
    assert scores == pytest.approx({"rouge1": 100.0, "rouge2": 100 / 3, "rougeL": 50.0, "rougeLsum": 75.0})


def test_rouge_uses_the_porter_stemmer_and_averages_pairs():
    # "cats running" / "cat runs": stems cat, run on both sides -> every ROUGE-1 100 (bigram "cat run" too)
    assert rouge(["cats running"], ["cat runs"])["rouge1"] == pytest.approx(100.0)
    # mean of the pairs: (100 + 0) / 2
    assert rouge(["a b", "dogs bark"], ["a b", "cats meow"])["rouge1"] == pytest.approx(50.0)


def test_rouge_matches_rouge_score_scorer_on_multi_sentence_texts():
    from rouge_score import rouge_scorer

    pairs = [("The storm hit the coast on Monday. Thousands lost power! Repairs start soon?",
              "A storm hit the coast. Thousands of homes lost power and repairs will start soon."),
             ("Prices rose by 3% in May.", "Inflation climbed to 3% in May, the highest this year."),
             ("nothing in common here", "completely different words")]
    predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
    ours = rouge_per_example(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    for i, (pred, ref) in enumerate(pairs):
        # rouge-score's summary-level LCS reads one sentence per line: split by hand here
        theirs = scorer.score(ref.replace(". ", ".\n").replace("! ", "!\n"),
                              pred.replace(". ", ".\n").replace("! ", "!\n").replace("? ", "?\n"))
        for name in ROUGE_TYPES:
            assert ours[name][i] == pytest.approx(100 * theirs[name].fmeasure)
    assert with_newlines("One. Two!  Three? four") == "One.\nTwo!\nThree?\nfour"
    with pytest.raises(ValueError, match="empty set"):
        rouge([], [])


def test_bootstrap_interval_by_hand_and_shared_resamples():
    # two examples scoring 0 and 100: a resample's mean is 0, 50 or 100 with probability 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles are 0 and 100 (with 2,000 resamples each extreme is drawn ~500 times)
    interval = bootstrap_means({"x": np.array([0.0, 100.0])}, resamples=2000)["x"]
    assert (interval.mean, interval.low, interval.high) == (50.0, 0.0, 100.0)
    constant = bootstrap_means({"x": np.full(7, 42.0)})["x"]
    assert constant.low == constant.high == constant.mean == 42.0
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, size=200)
    both = bootstrap_means({"a": a, "b": a.copy()}, seed=3)
    assert both["a"] == both["b"] and both["a"].low < a.mean() < both["a"].high  # same resamples for every type
    assert bootstrap_means({"a": a}, seed=3)["a"] == both["a"]  # deterministic in the seed
    wide = bootstrap_means({"a": a[:20]}, seed=3)["a"]
    assert wide.high - wide.low > both["a"].high - both["a"].low  # fewer examples, wider interval
    with pytest.raises(ValueError, match="one length"):
        bootstrap_means({"a": a, "b": a[:5]})


def test_local_files_in_three_formats_load_with_ids():
    data = get_task("xsum").load(str(FIXTURES), 0)
    assert {k: len(v) for k, v in data.items()} == {"train": 2, "validation": 1, "test": 2}
    assert data["validation"][0] == {"id": "v1", "document": "The team won the cup final after extra time.",
                                     "summary": "The team won the cup in extra time."}
    assert data["test"]["id"] == ["c1", "c2"] and "moon" in data["test"][1]["document"]
    source, target = get_task("xsum").pair(data["train"][0])
    assert source.startswith("The council") and target.startswith("A council")
    prompt, response = get_task("xsum_lm").pair(data["train"][0])
    assert prompt.startswith("Summarise this article in one sentence.") and prompt.endswith("Summary:")
    assert response == target


def _copy_fixtures(tmp_path, **replace):
    folder = tmp_path / "data"
    folder.mkdir()
    for path in FIXTURES.iterdir():
        (folder / path.name).write_text(replace.get(path.name, path.read_text()))
    return folder


def test_cnn_dailymail_needs_article_and_highlights(tmp_path):
    with pytest.raises(UserError, match=r"train\.jsonl: no 'article' column .*'article' -> 'highlights'"):
        get_task("cnn_dailymail").load(str(FIXTURES), 0)


@pytest.mark.parametrize("name, text, message", [
    ("test.csv", "id,document,summary\n", r"test\.csv: the test split is empty"),
    ("val.json", "[]", r"val\.json: the validation split is empty"),
    ("train.jsonl", json.dumps({"document": "x", "summary": " "}) + "\n",
     r"row 1 of the train split has an empty 'summary'"),
    ("train.jsonl", "{not json\n", r"train\.jsonl: line 1 is not valid JSON"),
])
def test_bad_local_files_raise_one_line(tmp_path, name, text, message):
    folder = _copy_fixtures(tmp_path, **{name: text})
    with pytest.raises(UserError, match=message):
        get_task("xsum").load(str(folder), 0)


def test_missing_split_file_names_what_was_looked_for(tmp_path):
    folder = _copy_fixtures(tmp_path)
    (folder / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"no test file \(looked for test\.jsonl, test\.json, test\.csv\)"):
        get_task("xsum").load(str(folder), 0)


def test_paper_decoding_settings_per_corpus():
    xsum, cnn = get_task("xsum").generation, get_task("cnn_dailymail").generation
    assert (xsum.num_beams, cnn.num_beams) == (8, 4)
    assert (xsum.no_repeat_ngram_size, cnn.no_repeat_ngram_size, cnn.length_penalty) == (3, 3, 2.0)
    assert get_task("xsum").hub_dataset == "EdinburghNLP/xsum" and get_task("xsum_lm").family == "causal_lm"
    from asymlora.tasks import Generation

    with pytest.raises(ValueError, match="num_beams must be an integer >= 1"):
        Generation(num_beams=0)
    with pytest.raises(ValueError, match="min_new_tokens=9 exceeds max_new_tokens=8"):
        Generation(max_new_tokens=8, min_new_tokens=9)


def test_table3_config_lists_the_papers_runs(capsys):
    from helpers import run_cli

    config = Path(__file__).parents[1] / "configs" / "table3_summarisation.yaml"
    code, out, err = run_cli(["reproduce", str(config), "--dry-run"], capsys)
    assert code == 0, err
    runs = [line for line in out.splitlines() if "/" in line]
    expected = {f"{task}/{row}-s{seed}" for task in ("xsum", "cnn_dailymail") for seed in (0, 1, 2)
                for row in ("full-r0", "lora-r2", "b_only-r16", "a_only-r16")}
    assert set(runs) == expected and "24 to do" in out
