"""Instruction tuning data: Alpaca files, the template, the holdout split, ShareGPT's truncated dump,
alpha = ratio · rank, and one end-to-end run of a tiny Llama on a local Alpaca file."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli
from asymlora.tasks.instructions import (PROMPT_NO_INPUT, alpaca_pair, conversations, holdout_split,
                                         read_alpaca_file)
from asymlora.training.config import TrainConfig, identity, resolve

RECORDS = [{"instruction": f"Name a colour number {i}.", "input": "" if i % 2 else f"context {i}",
            "output": f"Colour {i} is blue."} for i in range(40)]


def test_alpaca_template_with_and_without_input():
    prompt, response = alpaca_pair({"instruction": " Add 2 and 3. ", "input": "", "output": "5"})
    assert prompt == PROMPT_NO_INPUT.format(instruction="Add 2 and 3.") and response == "5"
    prompt, _ = alpaca_pair({"instruction": "Translate.", "input": "bonjour", "output": "hello"})
    assert prompt.endswith("### Instruction:\nTranslate.\n\n### Input:\nbonjour\n\n### Response:\n")
    assert "paired with an input" in prompt


def test_alpaca_files_json_and_jsonl_and_their_errors(tmp_path):
    array, lines = tmp_path / "a.json", tmp_path / "a.jsonl"
    array.write_text(json.dumps(RECORDS[:3]))
    lines.write_text("\n".join(json.dumps(r) for r in RECORDS[:3]) + "\n")
    assert read_alpaca_file(array) == read_alpaca_file(lines) == [dict(r) for r in RECORDS[:3]]
    lines.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"a.jsonl: line 2: missing field 'output'"):
        read_alpaca_file(lines)
    array.write_text(json.dumps([{"instruction": "x", "output": 5}]))
    with pytest.raises(ValueError, match=r"record 1: field 'output' is a int, not text"):
        read_alpaca_file(array)


def test_holdout_is_fixed_disjoint_and_complete():
    a, b = holdout_split(RECORDS), holdout_split(RECORDS)
    assert list(a["validation"]["instruction"]) == list(b["validation"]["instruction"]) and len(a["validation"]) == 1
    both = list(a["train"]["instruction"]) + list(a["validation"]["instruction"])
    assert sorted(both) == sorted(r["instruction"] for r in RECORDS)


def test_truncated_sharegpt_array_parses_record_by_record():
    text = '[{"id": "1", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},\n' \
           ' {"id": "2", "conversations": [{"from": "gpt", "value": "x"}]}, {"id": "3", "conversa'
    assert [c["id"] for c in conversations(text)] == ["1", "2"]


def test_alpha_ratio_gives_alpha_two_times_rank_and_keeps_old_fingerprints():
    hyper = __import__("asymlora.tasks", fromlist=["get_task"]).get_task("sharegpt").hyper
    config = TrainConfig(task="sharegpt", model="m", method="b_only", rank=32, alpha_ratio=2)
    assert resolve(config, hyper, ("q_proj",), ()).alpha == 64.0
    assert resolve(TrainConfig(task="sharegpt", model="m", method="b_only", rank=32, alpha_ratio=2, alpha=8.0),
                   hyper, ("q_proj",), ()).alpha == 8.0
    plain = TrainConfig(task="sharegpt", model="m", method="b_only")
    assert "alpha_ratio" not in identity(plain) and identity(config)["alpha_ratio"] == 2


def test_tiny_llama_instruction_tunes_on_a_local_alpaca_file(tmp_path, capsys):
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(RECORDS))
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--task", "alpaca", "--data-dir", str(data), "--model", "tiny-llama",
                            "--method", "b_only", "--rank", "4", "--alpha-ratio", "2", "--max-steps", "2",
                            "--batch-size", "4", "--max-length", "64", "--threads", "1", "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads((out / "metrics.json").read_text())
    assert record["family"] == "causal_lm" and record["resolved"]["alpha"] == 8.0
    assert record["preprocessing"]["truncation"]["train"]["examples"] == 39  # 40 records, 1 held out
    # the all-linear variant of the paper's configs: every linear layer of the blocks, not the LM head
    code, _, err = run_cli(["train", "--task", "alpaca", "--data-dir", str(data), "--model", "tiny-llama",
                            "--method", "b_only", "--rank", "4", "--targets", "all-linear", "--max-steps", "1",
                            "--batch-size", "4", "--max-length", "64", "--threads", "1", "--out",
                            str(tmp_path / "all")], capsys)
    assert code == 0, err
    from asymlora.adapters.io import read_adapter
    adapted = read_adapter(tmp_path / "all" / "adapter").meta.modules
    leaves = {name.rsplit(".", 1)[-1] for name in adapted}
    assert leaves == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("lm_head" in name for name in adapted)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "x"}) + "\n")
    code, _, err = run_cli(["train", "--task", "alpaca", "--data-dir", str(bad), "--model", "tiny-llama",
                            "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "bad.jsonl: line 1: missing field 'output'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # nothing left behind
