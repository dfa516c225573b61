"""``asymlora bench mask-cost``: the v2 mask's cost per engine against F.dropout, and bad input.

The figures are the benchmark's job (docs/results/bench/mask_cost/); these check what is measured,
the derived overheads, and that bad input is refused before anything is written."""

from __future__ import annotations

import json

import pytest

from asymlora.adapters.mask_native import native_available
from asymlora.bench.mask_cost import mask_cost_markdown
from helpers import run_cli


def test_the_command_measures_every_engine_and_the_floor(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["bench", "mask-cost", "--shapes", "2x8x64,3x5x17", "--rank", "4", "--repeats", "2",
                                 "--threads", "1", "--out", str(out)], capsys)
    assert code == 0, err
    document = json.loads((out / "mask_cost.json").read_text())
    assert document["command"].startswith("asymlora bench mask-cost") and document["threads"] == 1
    assert [row["shape"] for row in document["shapes"]] == [[2, 8, 64], [3, 5, 17]]
    row = document["shapes"][0]
    assert set(row["draw_and_zero"]) == {"v2_torch", "v2_numpy", "v2_fused", "v2_native", "v2_auto",
                                         "v2_torch_mask_only", "v2_numpy_mask_only", "v2_native_mask_only",
                                         "peft_dropout"}
    assert row["auto_path"] == ("native" if native_available() else "numpy")   # 1024 elements: below fusion's threshold
    assert document["compile_s"] >= 0
    lean = row["lean_forward_backward"]
    for engine in ("torch", "numpy", "fused", "native", "auto"):
        assert lean["mask_overhead_ms"][engine] == pytest.approx(lean[f"v2_{engine}"]["median_ms"]
                                                                 - lean["without_dropout"]["median_ms"])
        assert lean["ratio"][engine] == pytest.approx(lean[f"v2_{engine}"]["median_ms"]
                                                      / lean["without_dropout"]["median_ms"])
    assert len(document["load_average"]["before"]) == 3
    table = mask_cost_markdown(document)
    assert (out / "mask_cost.md").read_text() == table and f"| 3 × 5 × 17 | {row['auto_path']} |" in table


@pytest.mark.parametrize("args, message", [
    (["--shapes", "2xx"], "--shapes takes comma-separated shapes"),
    (["--shapes", "2x0x64"], "--shapes takes comma-separated shapes"),
    (["--shapes", "2x8x4", "--rank", "8"], "--rank 8 exceeds the narrowest d_in of --shapes (4)"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", "mask-cost", *args, "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
