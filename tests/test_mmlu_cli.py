"""``asymlora eval mmlu`` end to end on tiny-llama and the fixture CSVs: files, table, adapters, and
bad input as one line with exit status 2 and no output folder."""

import json
import shutil

import pytest
import torch

from asymlora.adapters.config import AdapterConfig
from asymlora.adapters.inject import adapted_modules, inject
from asymlora.adapters.io import save_adapter
from asymlora.cli import main
from asymlora.evaluation.mmlu.model import load_causal_lm
from mmlu_fixtures import FIXTURES, save_tiny_bpe_llama


def cli(*args):
    with pytest.raises(SystemExit) as stop:
        main(["eval", "mmlu", *args])
    return stop.value.code


def run_ok(*args):
    try:
        main(["eval", "mmlu", *args])
    except SystemExit as stop:  # typer may exit 0 explicitly
        assert stop.code in (0, None)


def _adapter(base: str, folder, seed: int = 3) -> str:
    model, _ = load_causal_lm(base)
    inject(model, AdapterConfig(rank=4, targets=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            module.B.copy_(torch.randn(module.B.shape, generator=generator))
    save_adapter(model, folder)
    return str(folder)


def test_eval_writes_predictions_summary_and_table(tmp_path, capsys):
    out = tmp_path / "out"
    run_ok("--model", "tiny-llama", "--data", str(FIXTURES), "--format", "paper", "--shots", "2",
           "--limit", "3", "--out", str(out))
    printed = capsys.readouterr().out
    assert "| micro (over questions) |" in printed and "Humanities | STEM | Social sciences | Other | Average" in printed
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and {r["subject"] for r in rows} == {"anatomy", "astronomy", "philosophy"}
    assert set(rows[0]) >= {"subject", "index", "predicted", "gold", "scores"} and len(rows[0]["scores"]) == 4
    summary = json.loads((out / "summary.json").read_text())
    correct = sum(r["predicted"] == r["gold"] for r in rows)
    assert summary["categories"]["Average"]["micro"] == pytest.approx(100 * correct / 9)
    assert summary["categories"]["Other"]["questions"] == 3  # anatomy is "Other" in the paper's map
    assert summary["category_map"] == "paper" and "anatomy" in summary["category_map_note"]
    assert (out / "table.md").read_text() == summary["table_markdown"]


def test_adapter_changes_scores_and_wrong_base_is_refused(tmp_path, capsys):
    from asymlora.models import model_path

    own = _adapter(model_path("tiny-llama"), tmp_path / "own")
    common = ["--model", "tiny-llama", "--data", str(FIXTURES), "--format", "harness", "--shots", "1", "--limit", "2"]
    run_ok(*common, "--out", str(tmp_path / "base"))
    run_ok(*common, "--adapter", own, "--out", str(tmp_path / "adapted"))
    base = (tmp_path / "base" / "predictions.jsonl").read_text()
    assert base != (tmp_path / "adapted" / "predictions.jsonl").read_text()
    capsys.readouterr()
    other = _adapter(save_tiny_bpe_llama(tmp_path / "other-base"), tmp_path / "other")
    assert cli(*common, "--adapter", other, "--out", str(tmp_path / "refused")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: progress bars of the set-up
    assert err.startswith("error: ") and "base model mismatch" in err
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("mutate,args,message", [
    (lambda root: shutil.rmtree(root / "test"), [], "no test/ folder"),
    (lambda root: (root / "dev" / "anatomy_dev.csv").write_text("q,a,b,c,d\n"), [],
     "anatomy_dev.csv: row 1 has 5 columns"),
    (lambda root: (root / "test" / "astronomy_test.csv").write_text("q,a,b,c,d,Z\n"), [],
     "astronomy_test.csv: row 1: answer 'Z'"),
    (lambda root: None, ["--subjects", "anatomy,cooking"], "'cooking' is not an MMLU subject"),
    (lambda root: None, ["--format", "papr"], "did you mean 'paper'"),
    (lambda root: None, ["--adapter", "/nonexistent/adapter"], "not an asymlora adapter folder"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, mutate, args, message):
    root = tmp_path / "mmlu"
    shutil.copytree(FIXTURES, root)
    mutate(root)
    out = tmp_path / "out"
    assert cli("--model", "tiny-llama", "--data", str(root), "--out", str(out), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()
