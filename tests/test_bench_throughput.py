"""``asymlora bench --rows``: the rebuttal's throughput tables, rows timed interleaved in one process.

The figures themselves are the benchmark's job (committed under docs/results/bench/); these tests
check the protocol (interleaving, repeats built afresh, the arithmetic of the summary) and bad input."""

from __future__ import annotations

import json
import os
import statistics

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.bench import throughput  # noqa: E402
from asymlora.bench.suite import SuiteOptions  # noqa: E402
from asymlora.bench.throughput import Row, parse_rows, run_throughput, throughput_markdown  # noqa: E402
from helpers import run_cli  # noqa: E402

TINY = dict(model="bert-tiny", batch=4, length=16, threads=1, steps=2, warmup=1, memory=False, svd=False)


def test_rows_are_timed_interleaved_and_rebuilt_for_every_repeat(monkeypatch):
    order, built = [], []
    real_step, real_build = throughput.Trainer.timed_step, throughput.build

    def spy_step(self, record=True):
        order.append((self.built.label, record))
        return real_step(self, record)

    def spy_build(name, model, settings):
        result = real_build(name, model, settings)
        result.label = f"{name}:{settings.rank}"
        built.append((result.label, settings.seed))
        return result

    monkeypatch.setattr(throughput.Trainer, "timed_step", spy_step)
    monkeypatch.setattr(throughput, "build", spy_build)
    rows = parse_rows("peft_lora:4,asymlora_b_only:4,asymlora_b_only:8")
    document = run_throughput(SuiteOptions(**TINY), rows, repeats=2)
    names = ["peft_lora:4", "asymlora_b_only:4", "asymlora_b_only:8"]
    assert built == [(n, 0) for n in names] + [(n, 1) for n in names]   # fresh rows, seed + repeat
    rounds = [order[i:i + 3] for i in range(0, len(order), 3)]
    assert len(rounds) == 2 * (1 + 2)                                    # repeats × (warm-up + timed)
    assert all([name for name, _ in r] == names for r in rounds)        # a, b, c, a, b, c, …
    assert [r[0][1] for r in rounds] == [False, True, True] * 2          # warm-up rounds are not recorded
    first, _, b8 = document["rows"]
    assert [len(t) for t in first["step_times_s"]] == [2, 2]
    for entry in document["rows"]:
        rates = [4 / statistics.median(t) for t in entry["step_times_s"]]
        assert entry["samples_per_s"] == pytest.approx(rates)
        assert entry["samples_per_s_mean"] == pytest.approx(statistics.fmean(rates))
        assert entry["samples_per_s_std"] == pytest.approx(statistics.stdev(rates))
        reference = [4 / statistics.median(t) for t in first["step_times_s"]]
        assert entry["ratio_to_reference"] == pytest.approx([a / b for a, b in zip(rates, reference)])
    assert first["ratio_mean"] == pytest.approx(1.0) and first["ratio_std"] == pytest.approx(0.0)
    # B-only at twice LoRA's rank trains LoRA's parameter count on square layers (d x 2r = d x r + r x d)
    assert b8["trainable_params"] == first["trainable_params"]
    assert b8["label"] == "B-only r=8" and document["reference"] == "LoRA (PEFT) r=4"
    table = throughput_markdown(document)
    assert "| samples/s |" in table and f"{b8['samples_per_s_mean']:.2f} ({b8['samples_per_s_std']:.2f})" in table


def test_parse_rows_names_the_bad_item():
    assert parse_rows(" peft_adalora:8 , b_only:16 ") == [Row("peft_adalora", 8), Row("asymlora_b_only", 16)]
    assert parse_rows("asymlora_b_only:16") == [Row("asymlora_b_only", 16)]  # the key bench.json records
    for text, message in (("peft_lora:8,dora:8", "unknown configuration 'dora'"),
                          ("peft_lora", "needs a rank >= 1"), ("peft_lora:0", "needs a rank >= 1"),
                          ("peft_lora:8,peft_lora:8", "names a row twice"), (" , ", "--rows is empty")):
        with pytest.raises(ValueError, match=message):
            parse_rows(text)


@pytest.mark.parametrize("args, message", [
    (["--rows", "peft_lora:x"], "needs a rank >= 1"),
    (["--rows", "peft_lora:8", "--repeats", "0"], "--repeats must be at least 1"),
    (["--rows", "peft_lora:8", "--model", "tiny-brt"], "unknown model 'tiny-brt'"),
    (["--rows", "head_only:1", "--task", "causal_lm", "--model", "tiny-llama"], "head_only needs a task head"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", "throughput", *args, "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_command_writes_its_table(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["bench", "throughput", "--model", "bert-tiny", "--batch-size", "2", "--max-length",
                                 "8", "--steps", "1", "--warmup", "0", "--threads", "1", "--repeats", "1",
                                 "--rows", "peft_lora:2,b_only:2", "--out", str(out)], capsys)
    assert code == 0, err
    document = json.loads((out / "throughput.json").read_text())
    assert [r["label"] for r in document["rows"]] == ["LoRA (PEFT) r=2", "B-only r=2"]
    assert document["command"].startswith("asymlora bench ")  # the process's own arguments
    assert (out / "throughput.md").read_text() == throughput_markdown(document) and "B-only r=2" in stdout
