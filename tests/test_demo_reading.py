"""What ``asymlora demo`` prints beside its runs: computed from numbers, the committed ones read from
their files, and no figure that cannot be compared (per-run samples/s)."""

from __future__ import annotations

from pathlib import Path

from asymlora.experiments.demo import (
    COMMITTED,
    EVIDENCE,
    NOT_COMPARABLE,
    accuracy_markdown,
    budget,
    committed_records,
    interpretation,
)
from asymlora.experiments.report import build

ROOT = Path(__file__).resolve().parents[1]


def run(method, value, seed=0, rank=8, steps=150, rate=1e-3):
    return {"run_id": f"tweets/{method}-r{rank}-s{seed}", "task": "tweets", "model": "minilm", "method": method,
            "label": method, "rank": rank, "seed": seed, "main_metric": "accuracy",
            "metrics": {"accuracy": value, "macro_f1": value - 5}, "trainable_params": 100, "trainable_percent": 1.0,
            "samples_per_second": 12.5, "adapter_bytes": 2048, "selection": "test@best-validation",
            "train_steps": steps, "resolved": {"batch_size": 16, "learning_rate": rate}}


def test_reading_is_computed_from_this_run_and_the_committed_grids():
    here = [run("lora", 70.0), run("b_only", 64.5), run("a_only", 60.0)]
    short = [run("lora", 66.0, steps=200), run("b_only", 65.0, steps=200), run("a_only", 60.0, steps=200)]
    tuned = [run("lora", 78.0, steps=1860), run("b_only", 74.0, steps=1860, rate=3e-3),
             run("a_only", 77.0, steps=1860, rate=3e-3)]
    lines = interpretation(here, {"short": short, "tuned": tuned})
    assert lines[0] == ("This run (150 steps of 16, learning rate 0.001): B-only − LoRA -5.50, B-only − A-only "
                        "+4.50 accuracy points (mean of 1 seed(s)).")
    assert lines[1].startswith("Committed, short (200 steps of 16, learning rate 0.001): B-only − LoRA -1.00, "
                               "B-only − A-only +5.00")
    assert "learning rate lora 0.001, b_only 0.003, a_only 0.003" in lines[2]
    assert lines[3].startswith("The last committed grid (tuned) ranks LoRA > A-only > B-only;")


def test_a_run_written_twice_counts_once():
    twice = [run("lora", 70.0), run("b_only", 60.0), run("b_only", 64.0)]
    assert "B-only − LoRA -6.00" in interpretation(twice)[0]


def test_budget_reads_steps_batch_and_rates_from_the_records():
    assert budget([run("lora", 1.0, steps=1860), run("b_only", 1.0, steps=1860)]) == \
        "1860 steps of 16, learning rate 0.001"


def test_committed_reading_is_what_the_committed_files_say():
    """The converged grids: LoRA ahead of B-only, and A-only ahead of B-only (claims.md's numbers)."""
    committed = committed_records(ROOT / "docs")
    assert list(committed) == [label for label, _ in COMMITTED]
    lines = interpretation([], committed)
    assert "B-only − LoRA -5.97, B-only − A-only -3.13" in lines[1]
    assert "B-only − LoRA -3.73, B-only − A-only -2.77" in lines[2]
    assert "ranks LoRA > A-only > B-only > linear probe" in lines[3]
    assert not any("in progress" in line for line in lines)


def test_accuracy_table_leaves_out_the_runs_samples_per_second():
    table = accuracy_markdown(build([run("lora", 70.0), run("b_only", 64.5)]))
    assert "samples" not in table and "12.5" not in table
    assert table.splitlines()[0] == "| Method | Acc | Macro-F1 | Trainable params | Seeds |"
    assert "interleaved in one process" in NOT_COMPARABLE


def test_every_evidence_pointer_exists():
    for _, where, _ in EVIDENCE:
        assert (ROOT / where).exists(), where


def test_efficiency_silences_the_hubs_progress_bar_warning(monkeypatch):
    """bench's model loading turns transformers' progress bars back on, which huggingface_hub refuses
    with a warning when the CLI disabled them; the demo must not print it."""
    import warnings

    import asymlora.bench.suite as suite
    from asymlora.experiments.demo import efficiency

    def run_suite(options):
        warnings.warn("Cannot enable progress bars: environment variable `HF_HUB_DISABLE_PROGRESS_BARS=1` is set "
                      "and has priority.")
        return {"configurations": options.configurations}

    monkeypatch.setattr(suite, "run_suite", run_suite)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert efficiency() == {"configurations": ["asymlora_b_only", "peft_lora", "adapter_floor"]}
