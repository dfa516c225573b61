"""``asymlora claims``: each rule on hand-made result files where it holds, fails, or cannot be tested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asymlora.experiments.claims import FAILS, HOLDS, NOT_MEASURED, evaluate, load_inputs
from asymlora.experiments.claims.evidence import kind_of

REPO = Path(__file__).resolve().parents[1]


def write_runs(path: Path, accuracies: dict[tuple[str, int], list[float]], task: str = "tweets") -> Path:
    """A results.jsonl with one record per (method, rank, seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for (method, rank), values in accuracies.items():
        for seed, value in enumerate(values):
            lines.append({"run_id": f"{task}/{method}-r{rank}-s{seed}", "task": task, "model": "minilm",
                          "method": method, "rank": rank, "seed": seed, "main_metric": "accuracy",
                          "metrics": {"accuracy": value, "macro_f1": value - 5}})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def write_ood(path: Path, ood: dict[str, list[float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"run_id": f"tweets/{m}-r8-s{s}", "task": "tweets", "model": "minilm", "method": m, "rank": 8, "seed": s,
              "ood_accuracy": v, "in_domain_binary_accuracy": 80.0, "gap": 80.0 - v}
             for m, values in ood.items() for s, v in enumerate(values)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def write_theory(path: Path, z: float = 0.5, frozen_a: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    curves = [{"spectrum": "isotropic", "rank": r, "frozen_A": frozen_a, "frozen_A_se": 0.05, "frozen_B": 20.0,
               "frozen_B_se": 0.05, "frozen_B_formula": 20.0 - z * 0.05, "frozen_B_z": z} for r in (1, 2)]
    path.write_text(json.dumps({"curves": curves, "gradient_fit": [{"rel_gap": 0.004}]}))
    return path


def write_similarity(folder: Path, steps: int, b_same_task: float, a_kept: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    row = lambda comparison, factor, mean: {"method": "lora", "comparison": comparison, "factor": factor,  # noqa: E731
                                            "count": 36, "finite": 36, "mean": mean, "std": 0.03}
    summary = [row("same_task_diff_init", "B", b_same_task), row("diff_task_same_init", "B", 0.09),
               row("learned_vs_init", "A", a_kept)]
    (folder / "similarity.json").write_text(json.dumps({"summary": summary}))
    record = {"run_id": "tweets/lora-r8-s0", "train_steps": steps}
    (folder / "study_results.jsonl").write_text(json.dumps(record) + "\n")
    return folder / "similarity.json"


def write_bench(path: Path, b_only_step: float, steps: int = 12, b_only_bytes: int = 400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)

    def config(step, saved):
        times = [step + 0.001 * i for i in range(steps)]
        return {"step_time_median_s": times[steps // 2], "step_times_s": times, "saved_activation_bytes": saved}

    path.write_text(json.dumps({"configurations": {"asymlora_b_only": config(b_only_step, b_only_bytes),
                                                   "peft_lora": config(0.8, 500), "peft_adalora": config(0.85, 510)}}))
    return path


def verdicts_of(*paths) -> dict[int, object]:
    return {v.claim: v for v in evaluate(load_inputs(paths))}


# ------------------------------------------------------------------------------ claims 1-3 (training runs)
def test_claim_1_holds_fails_or_is_not_measured(tmp_path):
    clear = write_runs(tmp_path / "a" / "results.jsonl", {("b_only", 8): [62, 63, 64], ("a_only", 8): [58, 59, 60]})
    within_noise = write_runs(tmp_path / "b" / "results.jsonl",
                              {("b_only", 8): [60, 63, 66], ("a_only", 8): [59, 62, 65]})
    one_seed = write_runs(tmp_path / "c" / "results.jsonl", {("b_only", 8): [70], ("a_only", 8): [50]})
    assert verdicts_of(clear)[1].verdict == HOLDS
    assert verdicts_of(within_noise)[1].verdict == FAILS  # +1 point against a pooled std of 3
    assert verdicts_of(one_seed)[1].verdict == NOT_MEASURED
    both = verdicts_of(clear, within_noise)[1]  # any failed comparison decides
    assert both.verdict == FAILS and [e.passed for e in both.evidence] == [True, False]
    assert both.evidence[0].source.endswith("a/results.jsonl")
    assert "63.00 (1.00) vs 59.00 (1.00)" in both.evidence[0].numbers


def test_claim_2_needs_both_parts(tmp_path):
    near = write_runs(tmp_path / "r" / "results.jsonl", {("b_only", 8): [66, 67, 68], ("lora", 8): [67, 68, 69]})
    far = write_runs(tmp_path / "f" / "results.jsonl", {("b_only", 8): [60, 61, 62], ("lora", 8): [67, 68, 69]})
    better = write_ood(tmp_path / "o1" / "ood.jsonl", {"b_only": [75, 76, 77], "lora": [70, 71, 72]})
    worse = write_ood(tmp_path / "o2" / "ood.jsonl", {"b_only": [70, 71, 72], "lora": [75, 76, 77]})
    assert verdicts_of(near, better)[2].verdict == HOLDS
    assert verdicts_of(near, worse)[2].verdict == FAILS
    assert verdicts_of(far, better)[2].verdict == FAILS
    only_in_distribution = verdicts_of(near)[2]
    assert only_in_distribution.verdict == NOT_MEASURED
    assert only_in_distribution.note == "not measured: (b) out of distribution"


def test_claim_2_margin_is_one_point_or_the_pooled_std(tmp_path):
    # LoRA ahead by 1.5 points: fails with tight seeds (margin 1), holds with noisy seeds (pooled std 2)
    tight = write_runs(tmp_path / "t" / "results.jsonl", {("b_only", 8): [65.5, 66.5, 67.5], ("lora", 8): [67, 68, 69]})
    noisy = write_runs(tmp_path / "n" / "results.jsonl", {("b_only", 8): [64.5, 66.5, 68.5], ("lora", 8): [66, 68, 70]})
    assert verdicts_of(tight)[2].evidence[0].passed is False
    assert verdicts_of(noisy)[2].evidence[0].passed is True


def test_claim_3_rank_deficient_factor(tmp_path):
    # collapse = clearly below B-only and no better than the linear probe (recorded at its own nominal rank)
    probe = {("linear_probe", 1): [44, 45, 46]}
    collapsed = write_runs(tmp_path / "c" / "results.jsonl",
                           {("b_only", 8): [62, 63, 64], ("b_only_dep_rows", 8): [45, 46, 47],
                            ("b_only_dep_cols", 8): [44, 45, 46], **probe})
    fine = write_runs(tmp_path / "f" / "results.jsonl",
                      {("b_only", 8): [62, 63, 64], ("b_only_dep_rows", 8): [62, 63, 64], **probe})
    # clearly worse than B-only, yet far above the head alone: worse, not collapsed
    dented = write_runs(tmp_path / "d" / "results.jsonl",
                        {("b_only", 8): [62, 63, 64], ("b_only_dep_rows", 8): [58, 59, 60], **probe})
    no_probe = write_runs(tmp_path / "p" / "results.jsonl",
                          {("b_only", 8): [62, 63, 64], ("b_only_dep_rows", 8): [45, 46, 47]})
    collapse = verdicts_of(collapsed)[3]
    assert collapse.verdict == HOLDS and len(collapse.evidence) == 4
    assert verdicts_of(fine)[3].verdict == FAILS
    dent = verdicts_of(dented)[3]
    assert dent.verdict == FAILS
    assert [e.passed for e in dent.evidence] == [True, False]
    assert verdicts_of(no_probe)[3].verdict == NOT_MEASURED
    assert verdicts_of(write_runs(tmp_path / "n" / "results.jsonl", {("b_only", 8): [1, 2]}))[3].verdict == NOT_MEASURED


# ------------------------------------------------------------------------------ claims 4-6 (analysis files)
def test_claim_4_uses_the_longest_study(tmp_path):
    short_fails = write_similarity(tmp_path / "short", steps=40, b_same_task=0.08, a_kept=0.98)
    long_holds = write_similarity(tmp_path / "long", steps=200, b_same_task=0.15, a_kept=0.8)
    verdict = verdicts_of(short_fails, long_holds)[4]
    assert verdict.verdict == HOLDS
    assert [e.passed for e in verdict.evidence] == [True, None, True, None]
    assert verdicts_of(short_fails)[4].verdict == FAILS
    a_moved = write_similarity(tmp_path / "moved", steps=400, b_same_task=0.15, a_kept=0.3)
    assert verdicts_of(long_holds, a_moved)[4].verdict == FAILS


def test_claim_5_theory_rows(tmp_path):
    assert verdicts_of(write_theory(tmp_path / "ok" / "theory.json"))[5].verdict == HOLDS
    assert verdicts_of(write_theory(tmp_path / "z" / "theory.json", z=5.0))[5].verdict == FAILS
    assert verdicts_of(write_theory(tmp_path / "order" / "theory.json", frozen_a=21.0))[5].verdict == FAILS


def test_claim_6_bench(tmp_path):
    assert verdicts_of(write_bench(tmp_path / "fast" / "bench.json", 0.7))[6].verdict == HOLDS
    slower = verdicts_of(write_bench(tmp_path / "slow" / "bench.json", 0.9))[6]
    assert slower.verdict == FAILS and "Mann-Whitney" in slower.evidence[0].numbers
    heavier = verdicts_of(write_bench(tmp_path / "heavy" / "bench.json", 0.7, b_only_bytes=600))[6]
    assert heavier.verdict == FAILS
    few = verdicts_of(write_bench(tmp_path / "few" / "bench.json", 0.7, steps=3, b_only_bytes=None))[6]
    assert few.verdict == NOT_MEASURED


def write_throughput(path: Path, b_only: list[float], adalora: list[float] = (3.0, 3.1, 2.9)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"configuration": "peft_lora", "rank": 8, "samples_per_s": [5.0, 5.1, 4.9]},
            {"configuration": "peft_adalora", "rank": 8, "samples_per_s": list(adalora)},
            {"configuration": "asymlora_b_only", "rank": 8, "samples_per_s": b_only},
            {"configuration": "asymlora_b_only", "rank": 16, "samples_per_s": [6.0, 6.1, 5.9]}]  # no rank-16 peer
    path.write_text(json.dumps({"kind": "throughput", "rows": rows}))
    return path


def test_a_loss_is_compared_the_right_way_round(tmp_path):
    """On a lower-is-better metric, B-only "beats" A-only when its loss is clearly LOWER."""
    def write(folder, b_only, a_only):
        path = tmp_path / folder / "results.jsonl"
        path.parent.mkdir(parents=True)
        lines = [{"run_id": f"t/{m}-r8-s{s}", "task": "t", "model": "m", "method": m, "rank": 8, "seed": s,
                  "main_metric": "loss", "metrics": {"loss": v}}
                 for m, values in (("b_only", b_only), ("a_only", a_only)) for s, v in enumerate(values)]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        return path

    lower = verdicts_of(write("lower", [1.0, 1.1, 1.0], [2.0, 2.1, 2.0]))[1]
    assert lower.verdict == HOLDS and "lower is better" in lower.evidence[0].numbers
    higher = verdicts_of(write("higher", [2.0, 2.1, 2.0], [1.0, 1.1, 1.0]))[1]
    assert higher.verdict == FAILS


def test_claim_6_throughput_tables(tmp_path):
    faster = verdicts_of(write_throughput(tmp_path / "fast" / "throughput.json", [7.0, 7.2, 6.9]))[6]
    assert faster.verdict == HOLDS and len(faster.evidence) == 2  # LoRA and AdaLoRA at r=8 only
    assert "PEFT AdaLoRA r=8" in faster.evidence[1].what and "pooled std" in faster.evidence[1].numbers
    # faster than AdaLoRA but not clearly faster than LoRA (within the repeats' spread): does not hold
    close = verdicts_of(write_throughput(tmp_path / "close" / "throughput.json", [5.1, 4.8, 5.3]))[6]
    assert close.verdict == FAILS and [e.passed for e in close.evidence] == [False, True]
    one = verdicts_of(write_throughput(tmp_path / "one" / "throughput.json", [7.0], adalora=[3.0]))[6]
    assert one.verdict == NOT_MEASURED and "fewer than 2 repeats" in one.evidence[1].numbers
    # together with a bench.json, one failed test anywhere fails the claim
    both = verdicts_of(write_bench(tmp_path / "b" / "bench.json", 0.7), tmp_path / "close" / "throughput.json")[6]
    assert both.verdict == FAILS


def write_frontier(path: Path, arms: dict[tuple[str, int], tuple[int, list[float]]]) -> Path:
    """A frontier.json as ``asymlora report --frontier`` writes it: per arm (peak MiB, accuracies over seeds)."""
    import statistics

    points = [{"method": m, "rank": r, "measured_bytes": mib << 20,
               "accuracy": {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None,
                            "values": v}} for (m, r), (mib, v) in arms.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metric": "accuracy", "points": points}))
    return path


def test_claim_7_equal_memory(tmp_path):
    lora = {("lora", 8): (835, [78.0, 79.0, 80.0])}
    # r=16 fits and is within a point; r=128 would be better still but costs more than LoRA r=8: not eligible
    close = verdicts_of(write_frontier(tmp_path / "close" / "frontier.json", lora | {
        ("b_only", 16): (761, [78.0, 78.5, 79.0]), ("b_only", 8): (758, [70.0, 71.0, 72.0]),
        ("b_only", 128): (900, [90.0, 91.0, 92.0])}))[7]
    assert close.verdict == HOLDS and "b_only r=16 (761 MiB)" in close.evidence[0].what
    far = verdicts_of(write_frontier(tmp_path / "far" / "frontier.json", lora | {
        ("b_only", 16): (761, [74.0, 75.0, 76.0]), ("b_only", 128): (900, [90.0, 91.0, 92.0])}))[7]
    assert far.verdict == FAILS and "shortfall +4.00" in far.evidence[0].numbers
    one_seed = verdicts_of(write_frontier(tmp_path / "one" / "frontier.json", lora | {("b_only", 32): (764, [79.0])}))[7]
    assert one_seed.verdict == NOT_MEASURED and "not tested" in one_seed.evidence[0].numbers
    nothing_fits = verdicts_of(write_frontier(tmp_path / "none" / "frontier.json", lora | {
        ("b_only", 128): (900, [90.0, 91.0])}))[7]
    assert nothing_fits.verdict == NOT_MEASURED and not nothing_fits.evidence


def test_nothing_measured_and_unknown_files(tmp_path):
    verdicts = verdicts_of(write_runs(tmp_path / "results.jsonl", {("lora", 8): [60, 61]}))
    assert [v.verdict for v in verdicts.values()] == [NOT_MEASURED] * 7
    other = tmp_path / "notes.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="cannot tell what this file is"):
        kind_of(other)


# ------------------------------------------------------------------------------ the command
def test_claims_command_writes_markdown_and_json(tmp_path):
    from typer.testing import CliRunner

    from asymlora.cli import app

    write_runs(tmp_path / "in" / "results.jsonl", {("b_only", 8): [62, 63, 64], ("a_only", 8): [58, 59, 60]})
    write_theory(tmp_path / "in" / "theory" / "theory.json", z=5.0)
    result = CliRunner().invoke(app, ["claims", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert [c["verdict"] for c in data["claims"]] == [HOLDS, NOT_MEASURED, NOT_MEASURED, NOT_MEASURED, FAILS,
                                                      NOT_MEASURED, NOT_MEASURED]
    assert len(data["inputs"]) == 2
    table = (tmp_path / "out" / "claims.md").read_text()
    assert table.count("\n| ") == 8 and "**does not hold**" in table and "mean(b_only) − mean(a_only)" in table


def test_default_inputs_are_the_committed_results(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from asymlora.cli import app

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["claims", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "claims.json").read_text())
    assert "docs/results/theory/theory.json" in data["inputs"] and len(data["claims"]) == 7
