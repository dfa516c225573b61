"""Experiments: spec validation, grid and sharding, results store, report rendering, a tiny reproduce."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from asymlora.experiments import expand, load_spec, parse_shard, read_results, seeds_for, shard, validate
from asymlora.experiments.report import build, fmt, render, to_markdown
from asymlora.experiments.store import append_result, done_keys

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "t", "model": "tiny-bert", "tasks": ["tweets"], "methods": ["lora", "b_only"], "ranks": [2],
        "seeds": [0]}


def spec_of(**changes):
    data = dict(BASE)
    data.update(changes)
    return validate(data, "test")


# ------------------------------------------------------------------ spec
@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    if path.name.startswith("domainbed_"):  # a DomainBed sweep, with its own schema
        from asymlora.experiments.domainbed.config import read_config

        assert read_config(path)
        return
    spec = load_spec(path)
    assert spec.name and expand(spec)


def test_demo_yaml_matches_the_embedded_demo():
    from asymlora.experiments.demo import DEMO

    on_disk = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    assert validate(on_disk).to_dict() == validate(dict(DEMO)).to_dict()


def test_shipped_ablations_cover_the_papers_rows():
    inits = load_spec(ROOT / "configs" / "ablation_inits.yaml")
    assert {"lora_svd_A", "lora_rand_A", "lora_svd_B", "lora_rand_B", "a_only_km", "lora_km_B"} <= set(inits.methods)
    structured = load_spec(ROOT / "configs" / "ablation_structured.yaml")
    assert structured.tasks == ["rte"]
    assert {"lora", "b_only", "b_only_banded", "b_only_dep_rows", "b_only_dep_cols"} == set(structured.methods)


@pytest.mark.parametrize("changes, message", [
    ({"methdos": ["lora"]}, "unknown config key 'methdos' (did you mean 'methods'?)"),
    ({"methods": ["b_onyl"]}, "did you mean 'b_only'"),
    ({"tasks": ["rtee"]}, "did you mean 'rte'"),
    ({"model": "robreta-large"}, "did you mean 'roberta-large'"),
    ({"overrides": {"max_step": 3}}, "unknown override 'max_step' (did you mean 'max_steps'?)"),
    ({"overrides": {"max_steps": "3"}}, "wrong type"),
    ({"ranks": [0]}, "'ranks' must be a non-empty list of integers >= 1"),
    ({"adapter_seeds": "sme"}, "did you mean 'same'"),
    ({"runs": [{"method": "lora", "rnak": 4}]}, "runs[0]"),
])
def test_spec_errors_are_one_clear_line(changes, message):
    with pytest.raises(ValueError) as err:
        spec_of(**changes)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_key_and_malformed_yaml(tmp_path):
    with pytest.raises(ValueError, match="missing required key 'tasks'"):
        validate({"name": "x", "model": "tiny-bert", "methods": ["lora"]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethods: [lora, b_only\n")
    with pytest.raises(ValueError, match=r"malformed YAML at line \d+"):
        load_spec(bad)
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ grid
def test_grid_expansion_rankless_methods_and_extra_runs():
    spec = spec_of(tasks=["tweets", "rte"], methods=["lora", "b_only", "linear_probe"], ranks=[8, 16],
                   seeds=[0, 1], runs=[{"method": "adalora", "rank": 8}, {"method": "lora", "rank": 8}])
    runs = expand(spec)
    # per task: lora×2 ranks + b_only×2 + linear_probe×1 + adalora×1 (lora r8 duplicate dropped) = 6, × 2 seeds
    assert len(runs) == 2 * 6 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.rank for r in runs if r.method == "linear_probe"} == {0}
    assert "tweets/b_only-r16-s1" in {r.run_id for r in runs}
    same = expand(spec_of(seeds=[0, 1, 2], adapter_seeds="same"))
    assert {r.adapter_seed for r in same} == {0} and {r.seed for r in same} == {0, 1, 2}
    assert seeds_for(spec_of(seeds=[0, 1, 2]), 2) == [0, 1] and seeds_for(spec_of(seeds=[5]), 3) == [5, 6, 7]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_shards_are_disjoint_and_cover_the_grid(n):
    runs = expand(spec_of(tasks=["tweets", "rte", "mrpc"], methods=["lora", "b_only", "a_only"], ranks=[8, 16],
                          seeds=[0, 1, 2]))
    parts = [shard(runs, (i, n)) for i in range(n)]
    ids = [r.run_id for part in parts for r in part]
    assert sorted(ids) == sorted(r.run_id for r in runs) and len(ids) == len(set(ids))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shards(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None


# ------------------------------------------------------------------ store
def record(run_id, task="rte", method="lora", rank=8, seed=0, value=80.0, fp="f", **extra):
    out = {"run_id": run_id, "fingerprint": fp, "task": task, "method": method, "rank": rank, "seed": seed,
           "model": "m", "label": method, "main_metric": "accuracy", "metrics": {"accuracy": value},
           "trainable_params": 100, "trainable_percent": 1.0, "samples_per_second": 10.0, "adapter_bytes": 2048,
           "selection": "best-validation"}
    out.update(extra)
    return out


def test_store_appends_lines_and_knows_what_is_done(tmp_path):
    path = tmp_path / "results.jsonl"
    assert read_results(path) == [] and done_keys(path) == set()
    append_result(path, record("rte/lora-r8-s0"))
    append_result(path, record("rte/lora-r8-s1", seed=1))
    assert len(path.read_text().splitlines()) == 2
    assert done_keys(path) == {("rte/lora-r8-s0", "f"), ("rte/lora-r8-s1", "f")}
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"results.jsonl:3: not a JSON line"):
        read_results(path)


def test_plan_skips_runs_with_the_same_fingerprint_only(tmp_path):
    from asymlora.experiments.reproduce import plan, run_fingerprint, train_config

    spec = spec_of(seeds=[0, 1])
    runs = expand(spec)
    first = runs[0]
    append_result(tmp_path / "results.jsonl",
                  record(first.run_id, fp=run_fingerprint(train_config(spec, first, tmp_path))))
    todo, skipped = plan(spec, tmp_path)
    assert [r.run_id for r in skipped] == [first.run_id] and len(todo) == len(runs) - 1
    todo, skipped = plan(spec, tmp_path, max_steps=7)  # a different budget is a different run
    assert skipped == [] and len(todo) == len(runs)


# ------------------------------------------------------------------ report
def test_report_mean_std_average_and_files(tmp_path):
    path = tmp_path / "results.jsonl"
    values = {("lora", "rte"): [80.0, 82.0, 84.0], ("lora", "cola"): [60.0, 60.0, 63.0],
              ("b_only", "rte"): [81.0, 81.0, 81.0], ("b_only", "cola"): [58.0, 59.0, 60.0]}
    for (method, task), vals in values.items():
        for seed, v in enumerate(vals):
            append_result(path, record(f"{task}/{method}-r8-s{seed}", task=task, method=method, seed=seed, value=v,
                                       main_metric="matthews" if task == "cola" else "accuracy",
                                       metrics={"matthews" if task == "cola" else "accuracy": v}))
    rendered = render(path, tmp_path / "out", title="T")
    report = rendered["report"]
    assert report["tasks"] == ["cola", "rte"]  # the paper's column order
    lora = next(r for r in report["rows"] if r["method"] == "lora")
    assert lora["cells"]["rte"]["accuracy"]["mean"] == pytest.approx(82.0)
    assert lora["cells"]["rte"]["accuracy"]["std"] == pytest.approx(2.0)  # sample std, ddof=1
    assert lora["average"] == pytest.approx((82.0 + 61.0) / 2)
    md = rendered["markdown"]
    assert "82.00 (2.00)" in md and "81.00 (0.00)" in md and "unweighted mean over the 2 task columns" in md
    assert "Avg" in md and "% params" in md
    for name in ("report.md", "report.json", "report.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["rows"][0]["label"]


def test_single_task_report_shows_every_metric_and_sizes():
    recs = [record(f"tweets/b_only-r8-s{s}", task="tweets", method="b_only", seed=s,
                   metrics={"accuracy": 70.0 + s, "macro_f1": 60.0}) for s in range(2)]
    recs.append(record("tweets/b_only-r8-s0", task="tweets", method="b_only", seed=0,
                       metrics={"accuracy": 50.0, "macro_f1": 40.0}))  # a rerun: the last line wins
    report = build(recs)
    md = to_markdown(report)
    assert report["layout"] == "single"
    assert "Macro-F1" in md and "Adapter file" in md and "2.0 KB" in md
    cell = report["rows"][0]["cells"]["tweets"]["accuracy"]
    assert cell["values"] == [50.0, 71.0] and cell["n"] == 2
    assert fmt({"mean": 1.0, "std": None}) == "1.00 (-)"
    assert cell["mean"] == pytest.approx(60.5) and cell["std"] == pytest.approx(statistics.stdev([50.0, 71.0]))


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        render(tmp_path / "missing.jsonl", tmp_path / "o")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no runs"):
        render(empty, tmp_path / "o")


def test_plain_labels_replace_latex_in_reports():
    from asymlora.methods import METHODS, plain_label

    assert plain_label(METHODS["b_only"].label) == "B\u0302\u2080 A_rand"
    assert plain_label(METHODS["a_only"].label) == "B_rand A\u0302\u2080"
    report = build([record("tweets/b_only-r8-s0", task="tweets", method="b_only", label=METHODS["b_only"].label)])
    assert "$" not in to_markdown(report) and "\\hat" not in to_markdown(report)
