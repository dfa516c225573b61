"""Summarisation with tiny random BART and Llama: label masking, counted target cuts, generation with
beams (deterministic, batch-independent), the ``asymlora eval rouge`` command on a base model and on
a run trained through the runner, the Table 3 layout, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli
from asymlora.models import load_tokenizer, resolve_model
from asymlora.tasks import Generation, get_family, get_task

FIXTURES = "tests/fixtures/summarisation/xsum"


@pytest.fixture(scope="module")
def bart():
    task, family = get_task("xsum"), get_family("seq2seq")
    ref = resolve_model("tiny-bart")
    return family.load_model(ref, task, 0).eval(), load_tokenizer(ref), task, family


@pytest.fixture(scope="module")
def llama():
    task, family = get_task("xsum_lm"), get_family("causal_lm")
    ref = resolve_model("tiny-llama")
    return family.load_model(ref, task, 0).eval(), load_tokenizer(ref), task, family


def test_seq2seq_labels_pad_to_minus_100_and_long_targets_are_counted(bart):
    model, tok, task, family = bart
    data = task.load(FIXTURES, 0)
    short = Generation(max_target_length=6)
    prepared = family.preprocess(data, tok, type(task)(**{**task.__dict__, "generation": short}), 64)
    notes = prepared.notes["truncation"]
    full = [len(tok(text_target=t)["input_ids"]) for t in data["train"]["summary"]]
    assert notes["train"] == {"examples": 2, "target_cut": sum(n > 6 for n in full)} and notes["train"]["target_cut"] > 0
    labels = prepared.splits["train"]["labels"]
    assert all(len(ids) <= 6 and ids[-1] == tok.sep_token_id for ids in labels)  # cut keeps the end token
    keys = ("input_ids", "attention_mask", "labels")
    batch = family.collator(tok, model)([{k: prepared.splits["validation"][0][k] for k in keys},
                                         {k: prepared.splits["train"][0][k] for k in keys}])
    lengths = [len(prepared.splits["validation"][0]["labels"]), len(prepared.splits["train"][0]["labels"])]
    short_row = lengths.index(min(lengths))
    if lengths[0] != lengths[1]:
        assert (batch["labels"][short_row, min(lengths):] == -100).all()
    assert (batch["labels"][short_row, :min(lengths)] != -100).all()


def test_causal_prompt_tokens_are_masked_and_the_response_ends_with_eos(llama):
    model, tok, task, family = llama
    data = task.load(FIXTURES, 0)
    prepared = family.preprocess(data, tok, task, 256)
    row = prepared.splits["train"][0]
    prompt, response = task.pair(data["train"][0])
    n_prompt = len(tok(prompt)["input_ids"])
    assert row["labels"][:n_prompt] == [-100] * n_prompt
    end = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id  # MiniLM's WordPiece: [SEP]
    assert end is not None and row["labels"][n_prompt:] == tok(" " + response, add_special_tokens=False)["input_ids"] + [end]
    assert row["input_ids"][:n_prompt] == tok(prompt)["input_ids"]


def test_response_tokens_are_those_that_follow_the_prompt_in_running_text():
    from asymlora.tasks.families.causal_lm import response_ids

    tok = load_tokenizer("smollm2")  # byte-level BPE: a word after a space is a different token ("ĠThe")
    prompt = "Summarise this.\n\nSummary:"
    p = tok(prompt)["input_ids"]
    ids = response_ids(tok, prompt, "The cat sat.", p)
    assert tok(prompt + " The cat sat.")["input_ids"] == p + ids
    assert ids != tok("The cat sat.", add_special_tokens=False)["input_ids"]  # not the text tokenised alone
    assert tok.decode(ids) == " The cat sat."
    assert response_ids(tok, "Answer:\n", "Yes", tok("Answer:\n")["input_ids"]) == tok("Yes", add_special_tokens=False)[
        "input_ids"]  # after white space: no extra space


def test_beam_generation_is_deterministic_and_respects_the_settings(bart):
    model, tok, task, family = bart
    sources = task.load(FIXTURES, 0)["test"]["document"]
    settings = Generation(num_beams=3, max_new_tokens=7, no_repeat_ngram_size=2)
    torch.manual_seed(0)
    first = family.generate(model, tok, sources, settings, 32, batch_size=2)
    torch.manual_seed(123)
    again = family.generate(model, tok, sources, settings, 32, batch_size=1)
    assert first == again and len(first.texts) == 2
    assert all(1 <= n <= 7 for n in first.new_tokens) and first.sources_cut == 0
    cut = family.generate(model, tok, sources, settings, 8, batch_size=2)
    assert cut.sources_cut == 2  # both sources are longer than 8 tokens: counted


def test_requested_settings_win_over_the_model_generation_config(bart):
    model, tok, task, family = bart
    assert model.generation_config.num_beams == 8  # the task's settings were applied on loading
    sources = task.load(FIXTURES, 0)["test"]["document"]
    greedy = family.generate(model, tok, sources, Generation(num_beams=1, max_new_tokens=5), 32, batch_size=2)
    enc = tok(list(sources), truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], num_beams=1,
                                  do_sample=False, max_new_tokens=5, min_new_tokens=0, no_repeat_ngram_size=0,
                                  length_penalty=1.0)
    assert greedy.texts == [t.strip() for t in tok.batch_decode(expected, skip_special_tokens=True)]
    assert model.generation_config.num_beams == 8  # and the model's own config is left as it was


def test_decoder_only_generation_continues_left_padded_prompts(llama):
    model, tok, task, family = llama
    data = task.load(FIXTURES, 0)
    prompts = [task.pair(r)[0] for r in data["test"]] + [task.pair(data["validation"][0])[0]]
    settings = Generation(num_beams=2, max_new_tokens=5)
    batched = family.generate(model, tok, prompts, settings, 200, batch_size=3)
    single = family.generate(model, tok, prompts, settings, 200, batch_size=1)
    assert batched.texts == single.texts and batched.new_tokens == single.new_tokens
    assert all(1 <= n <= 5 for n in batched.new_tokens)
    assert all("Summary" not in t for t in batched.texts)  # only the continuation is decoded


def test_summarise_a_trained_run_and_tabulate(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--task", "xsum_lm", "--model", "tiny-llama", "--method", "b_only", "--rank", "2",
                            "--data-dir", FIXTURES, "--max-steps", "1", "--max-length", "128", "--batch-size", "2",
                            "--threads", "1", "--out", str(run)], capsys)
    assert code == 0, err
    outs = []
    sources = (("trained", ["--run", str(run)]), ("base", ["--model", "tiny-llama", "--task", "xsum_lm"]))
    for name, source in sources:
        out = tmp_path / name
        code, stdout, err = run_cli(["eval", "rouge", *source, "--data-dir", FIXTURES, "--beams", "2",
                                     "--max-new-tokens", "4", "--min-new-tokens", "0", "--max-source-length", "120", "--bootstrap", "50",
                                     "--threads", "1", "--out", str(out)], capsys)
        assert code == 0, err
        outs.append(out)
        records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        assert [r["id"] for r in records] == ["c1", "c2"]
        assert set(records[0]) >= {"id", "source", "reference", "prediction", "rouge1", "rougeLsum"}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["examples"] == 2 and summary["whole_split"] and summary["generation"]["num_beams"] == 2
        for name_ in ("rouge1", "rougeL"):
            mean = sum(r[name_] for r in records) / 2
            band = summary["rouge"][name_]
            assert band["mean"] == pytest.approx(mean, abs=1e-3) and band["low"] <= band["mean"] <= band["high"]
        assert summary["generated_tokens_per_second"] > 0 and summary["peak_memory_mib"] > 0
    trained = json.loads((outs[0] / "summary.json").read_text())
    assert trained["method"] == "b_only" and trained["rank"] == 2 and trained["trainable_params"] > 0
    assert trained["train_samples_per_second"] > 0
    # without a time.txt beside the run, the training peak comes from the runner's own record
    peak = json.loads((run / "metrics.json").read_text())["peak_memory_bytes"]
    assert trained["train_peak_rss_mib"] == pytest.approx(peak / 2**20)
    code, stdout, err = run_cli(["report", str(outs[0]), str(outs[1]), "--out", str(tmp_path / "t")],
                                capsys)
    assert code == 0, err
    lines = (tmp_path / "t" / "table.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| base") or line.startswith("| B-only")]
    assert rows[0].startswith("| base model, no tuning") and rows[1].startswith("| B-only \\hat B_0 A_rand r=2")
    assert json.loads((tmp_path / "t" / "table.json").read_text())["rows"][1]["seeds"] == [0]


@pytest.mark.parametrize("args, message", [
    (["--task", "xsum", "--model", "tiny-bart", "--beams", "0"], "--beams must be >= 1 (got 0)"),
    (["--task", "xsum", "--model", "tiny-llama"], "needs an encoder-decoder model (BART, T5); 'tiny-llama' is a llama"),
    (["--task", "tweets", "--model", "tiny-bart"], "'tweets' is not a summarisation task"),
    (["--task", "xsum", "--model", "tiny-bart", "--run", "somewhere"], "exactly one of --model"),
    (["--task", "cnn_dailymail", "--model", "tiny-bart"], "no 'article' column"),
    (["--task", "xsum", "--model", "tiny-bart", "--split", "dev"], "has no 'dev' split"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run_cli(["eval", "rouge", *args, "--data-dir", FIXTURES, "--out", str(out)], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 2 and len(errors) == 1 and message in errors[0] and err.rstrip().endswith(errors[0]), err
    assert not out.exists()


def test_training_a_seq2seq_task_on_a_decoder_only_model_is_a_user_error(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--task", "xsum", "--model", "tiny-llama", "--method", "lora", "--data-dir",
                            FIXTURES, "--max-steps", "1", "--out", str(out)], capsys)
    assert code == 2 and "needs an encoder-decoder model" in err, err
    assert not (out / "metrics.json").exists()


def test_training_peak_prefers_gnu_time_over_the_runners_record(tmp_path):
    from asymlora.evaluation.summarise import _train_peak_mib

    record = {"peak_memory_bytes": 3 * 2**20}
    assert _train_peak_mib(tmp_path, record) == pytest.approx(3.0)
    (tmp_path / "time.txt").write_text("wall_s 12\nmax_rss_kib 2048\n")
    assert _train_peak_mib(tmp_path, record) == pytest.approx(2.0)
    assert _train_peak_mib(tmp_path / "elsewhere", {}) is None
