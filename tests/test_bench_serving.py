"""``asymlora bench --serving``: many B-only adapters in one batch against PEFT's mixed batch and one
forward per adapter. The three ways must compute the same function; the figures are the bench's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from asymlora.bench.serving import (WAYS, ServingOptions, _load_base, build, run_serving,  # noqa: E402
                                    serving_markdown, write_adapters)

TINY = dict(model="tiny-llama", adapters=3, rows=6, length=12, rank=4, alpha=8.0, threads=1)


@pytest.fixture
def folders(tmp_path):
    options = ServingOptions(**TINY)
    base, _, _, targets = _load_base(options)
    return write_adapters(options, base, targets, tmp_path)


def test_every_way_computes_the_same_function_and_the_adapters_matter(folders):
    setup = build(ServingOptions(**TINY), folders)
    assert setup.index.tolist() == [0, 1, 2, 0, 1, 2]
    with torch.inference_mode():
        outputs = {way: call() for way, call in setup.call.items()}
    reference = outputs["asymlora_serve"]
    assert reference.shape[:2] == (6, 1)                       # last-position logits only
    for way in ("peft_mixed", "per_adapter"):
        torch.testing.assert_close(outputs[way], reference, rtol=1e-5, atol=1e-5)
    assert (outputs["base"] - reference).abs().max() > 1e-3     # the adapters change the output
    # rows with different adapters differ even on the same tokens: the per-row B is used
    same_tokens = {"input_ids": torch.full((3, 5), 7, dtype=torch.long), "logits_to_keep": 1}
    from asymlora.adapters.serving import adapter_rows
    with torch.inference_mode(), adapter_rows(setup.models["asymlora_serve"], torch.tensor([0, 1, 2])):
        rows = setup.models["asymlora_serve"](**same_tokens).logits
    assert (rows[0] - rows[1]).abs().max() > 1e-4 and (rows[1] - rows[2]).abs().max() > 1e-4


def test_document_reports_every_way_and_the_serving_model_holds_one_a():
    document = run_serving(ServingOptions(**TINY, rounds=2, warmup=0, memory=False))
    results = document["results"]
    assert set(results) == set(WAYS)
    assert results["peft_mixed"]["speedup_vs_peft_mixed"] == pytest.approx(1.0)
    for way in ("asymlora_serve", "per_adapter"):
        assert results[way]["max_logit_difference"] < 1e-4
        assert len(results[way]["seconds"]) == 2 and results[way]["tokens_per_second"] > 0
    assert results["base"]["max_logit_difference"] > 1e-3
    # n adapters over a shared A hold less than PEFT's n copies of A and B
    assert results["asymlora_serve"]["held_bytes"] < results["peft_mixed"]["held_bytes"]
    text = serving_markdown(document)
    assert "| asymlora_serve |" in text and "PEFT's mixed batch" in text
    json.dumps(document)


def test_peak_memory_is_measured_in_a_fresh_process(folders):
    from asymlora.bench.serving import _memory_in_subprocess

    figures = _memory_in_subprocess(ServingOptions(**TINY), "asymlora_serve", folders)
    assert figures["peak_rss_bytes"] >= figures["rss_after_build_bytes"] > 0
    assert figures["forward_rss_increase_bytes"] == figures["peak_rss_bytes"] - figures["rss_after_build_bytes"]


@pytest.mark.parametrize("field, value, message", [
    ("adapters", 0, "adapters must be >= 1"),
    ("rows", 2, "2 rows cannot mix 3 adapters"),
    ("warmup", -1, "warmup must be >= 0"),
])
def test_bad_options_are_rejected_before_loading(field, value, message):
    with pytest.raises(ValueError, match=message):
        ServingOptions(**{**TINY, field: value}).check()


def test_cli_rejects_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asymlora.cli", "bench", "serving", "--model", "tiny-llama",
                             "--batch-size", "2", "--adapters", "4", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: serving benchmark: 2 rows cannot mix 4 adapters (need rows >= adapters)"
    assert not (tmp_path / "out").exists()
