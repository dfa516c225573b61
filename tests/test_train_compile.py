"""``asymlora train --compile``: the Trainer compiles the model (inductor); close to eager, and a
machine that cannot compile is refused before anything is loaded."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from asymlora.adapters.compiled import compile_problem

SMALL = ["--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "4", "--max-steps", "3",
         "--train-limit", "48", "--eval-limit", "16", "--max-length", "16", "--dropout", "0.1",
         "--no-save-checkpoints"]


@pytest.mark.skipif(compile_problem("cpu") is not None, reason="inductor cannot build here (no C++ compiler)")
def test_compiled_training_matches_eager(tmp_path, capsys):
    metrics = {}
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        code, _, err = run_cli(["train", *SMALL, "--out", str(tmp_path / name), *extra], capsys)
        assert code == 0, err
        metrics[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert metrics["compiled"]["config"]["compile"] is True and metrics["eager"]["config"]["compile"] is False
    assert metrics["compiled"]["identity"] == metrics["eager"]["identity"]  # compiling is not part of a run's identity
    assert (tmp_path / "compiled" / "run_identity.json").read_text() == (tmp_path / "eager" / "run_identity.json").read_text()
    # the model's own dropout (BERT's hidden dropout) draws from inductor's RNG once compiled, so the losses are
    # close, not equal; the adapter's masks are a function of their counter in both (tests/test_compile.py)
    assert metrics["compiled"]["train_loss"] == pytest.approx(metrics["eager"]["train_loss"], rel=0.05)


def test_compile_without_a_compiler_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    code, _, err = run_cli(["train", *SMALL, "--out", str(tmp_path / "run"), "--compile"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "or drop --compile" in err, err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
