"""End to end through the CLI: `asymlora train` and `asymlora reproduce` on a tiny model, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli

SMALL = ["--train-limit", "48", "--eval-limit", "32", "--max-length", "32", "--batch-size", "8"]


def test_train_writes_metrics_and_adapter(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only",
                                 "--rank", "4", "--max-steps", "4", "--out", str(out), *SMALL], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "b_only" and metrics["rank"] == 4 and metrics["train_steps"] == 4
    assert set(metrics["metrics"]) == {"accuracy", "macro_f1"} and 0 <= metrics["metrics"]["accuracy"] <= 100
    assert metrics["selection"] == "test@best-validation" and metrics["test_examples"] == 32
    # B only: 4 adapted modules (query, value × 2 layers) × d_out·r = 32·4, plus the 32×3+3 head
    assert metrics["trainable_params"] == 4 * 32 * 4 + 99
    assert metrics["trainable_percent"] == pytest.approx(100 * metrics["trainable_params"] / metrics["total_params"])
    adapter = out / "adapter" / "adapter.safetensors"
    assert metrics["adapter_bytes"] == adapter.stat().st_size > 0
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert not (out / "checkpoints").exists()  # removed after success
    assert metrics["samples_per_second"] > 0 and metrics["versions"]["torch"]
    assert len(metrics["history"]) >= 2 and '"accuracy"' in stdout


def test_train_resume_continues_from_the_checkpoint(tmp_path, capsys, trainer_runs):
    out = tmp_path / "run"
    base = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "lora", "--rank", "2",
            "--eval-steps", "2", "--out", str(out), "--keep-checkpoints", *SMALL]
    assert run_cli(base + ["--max-steps", "2"], capsys)[0] == 0
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert run_cli(base + ["--max-steps", "4", "--resume"], capsys)[0] == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_steps"] == 4
    first, resumed = trainer_runs
    assert (first.start_step, first.steps) == (0, [1, 2])
    assert (resumed.start_step, resumed.steps) == (2, [3, 4])  # started at the checkpoint: steps 1-2 not re-run
    # step 2's evaluation comes back from the checkpoint (it still competes for the best); steps 1-2
    # were not re-run, so it is the same record
    first = json.loads((out / "checkpoints" / "checkpoint-2" / "asymlora_best.json").read_text())["history"]
    assert [h["step"] for h in metrics["history"]] == [2, 4]
    assert metrics["history"][0]["metrics"]["accuracy"] == pytest.approx(first[0]["metrics"]["eval_accuracy"])


def test_resume_refuses_checkpoints_of_another_run(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "2",
            "--eval-steps", "2", "--out", str(out), "--keep-checkpoints", "--max-steps", "2", *SMALL]
    assert run_cli(base, capsys)[0] == 0
    before = sorted(p.name for p in (out / "checkpoints" / "checkpoint-2").iterdir())
    code, _, err = run_cli(base[:8] + ["4"] + base[9:] + ["--resume"], capsys)  # rank 4, not 2
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "belong to a different run (differs in rank)" in err
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-2").iterdir()) == before  # nothing touched


@pytest.mark.parametrize("args, message", [
    (["--method", "b_onyl"], "did you mean 'b_only'"),
    (["--task", "tweet"], "did you mean 'tweets'"),
    (["--model", "tiny-brt"], "did you mean 'tiny-bert'"),
])
def test_train_bad_names_exit_2_with_a_hint(tmp_path, capsys, args, message):
    defaults = {"--task": "tweets", "--model": "tiny-bert", "--method": "b_only"}
    for flag, value in zip(args[::2], args[1::2]):
        defaults[flag] = value
    flat = [x for pair in defaults.items() for x in pair]
    code, _, err = run_cli(["train", *flat, "--max-steps", "1", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_reproduce_runs_the_grid_then_skips_it(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text("name: tiny\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [b_only, linear_probe]\n"
                      "ranks: [2]\nseeds: [0, 1]\noverrides: {train_limit: 32, eval_limit: 16, max_length: 24, "
                      "batch_size: 8, evals_per_run: 1}\n")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["reproduce", str(config), "--max-steps", "2", "--out", str(out), "--seeds", "1",
                                 "--shard", "0/1"], capsys)
    assert code == 0, err
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(x["run_id"] for x in lines) == ["tweets/b_only-r2-s0", "tweets/linear_probe-r0-s0"]
    for line in lines:
        assert line["experiment"] == "tiny" and line["family"] == "sequence_classification"
        assert "git_commit" in line  # None outside a git checkout, else the commit (with +dirty if modified)
        assert {"metrics", "trainable_params", "samples_per_second", "wall_seconds", "versions",
                "config", "history"} <= set(line)
        assert (out / "runs" / line["run_id"] / "metrics.json").is_file()
    assert (out / "report" / "report.md").is_file() and "mean (std)" in stdout
    code, stdout, _ = run_cli(["reproduce", str(config), "--max-steps", "2", "--out", str(out), "--seeds", "1"],
                              capsys)
    assert code == 0 and "0 runs to do, 2 already" in stdout
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    code, stdout, _ = run_cli(["reproduce", str(config), "--max-steps", "2", "--out", str(out), "--dry-run"],
                              capsys)
    assert code == 0 and "tweets/b_only-r2-s1" in stdout and "2 to do, 2 already done" in stdout
    code, stdout, _ = run_cli(["report", str(out / "results.jsonl"), "--out", str(tmp_path / "rep")], capsys)
    assert code == 0 and (tmp_path / "rep" / "report.png").stat().st_size > 0


def test_reproduce_resumes_an_unfinished_run_from_its_own_checkpoint_only(tmp_path, capsys, trainer_runs):
    """A run stopped after its step-2 checkpoint is resumed by the next `reproduce` and ends bit for bit
    like an uninterrupted run; a checkpoint stamped by another run's identity is removed, not resumed."""
    import dataclasses
    import shutil

    from safetensors.torch import load_file

    from asymlora.experiments.grid import expand
    from asymlora.experiments.reproduce import train_config
    from asymlora.experiments.spec import load_spec
    from asymlora.training import train

    config = tmp_path / "grid.yaml"
    config.write_text("name: tiny\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [b_only]\nranks: [2]\nseeds: [0]\n"
                      "overrides: {train_limit: 48, eval_limit: 16, max_length: 24, batch_size: 8, eval_steps: 2, "
                      "save_checkpoints: true, dropout: 0.3}\n")
    spec = load_spec(config)
    (run,) = expand(spec)
    whole = tmp_path / "whole"
    record = train(dataclasses.replace(train_config(spec, run, whole, max_steps=4, progress=False),
                                       keep_checkpoints=True))
    folder = whole / "runs" / run.run_id
    for kind, stamp_edit, resumed in (("own", None, True), ("other", {"learning_rate": 0.5}, False)):
        out = tmp_path / kind
        target = out / "runs" / run.run_id
        shutil.copytree(folder / "checkpoints" / "checkpoint-2", target / "checkpoints" / "checkpoint-2")
        stamp = json.loads((folder / "run_identity.json").read_text())
        (target / "run_identity.json").write_text(json.dumps({**stamp, **(stamp_edit or {})}))
        code, stdout, err = run_cli(["reproduce", str(config), "--max-steps", "4", "--out", str(out)], capsys)
        assert code == 0, err
        assert ("resuming from checkpoint-2" in stdout) is resumed
        # its own checkpoint: steps 1-2 skipped, only 3-4 taken; another run's: all four from step 0
        last = trainer_runs[-1]
        assert (last.start_step, last.steps) == ((2, [3, 4]) if resumed else (0, [1, 2, 3, 4]))
        (line,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert line["metrics"] == record["metrics"] and line["best_eval"] == record["best_eval"]
        a = load_file(str(folder / "adapter" / "adapter.safetensors"))
        b = load_file(str(target / "adapter" / "adapter.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not (target / "checkpoints").exists()  # removed after success, as for any run


def test_reproduce_bad_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [lora]\nseed: [0]\n")
    code, _, err = run_cli(["reproduce", str(config), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown config key 'seed' (did you mean 'seeds'?)" in err
    config.write_text("name: [unclosed\n")
    code, _, err = run_cli(["reproduce", str(config)], capsys)
    assert code == 2 and "malformed YAML" in err and len(err.strip().splitlines()) == 1
    config.write_text("name: x\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [lora]\n")
    code, _, err = run_cli(["reproduce", str(config), "--shard", "3/2", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "shard" in err


def test_a_bug_exits_1_with_its_traceback_in_the_run_folder(tmp_path, capsys, monkeypatch):
    import asymlora.training as training

    def broken(config, plan=None):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(training, "train", broken)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--task", "tweets", "--model", "tiny-bert", "--out", str(out)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "internal error (RuntimeError: simulated bug)" in err and str(out / "error.txt") in err
    assert "Traceback" in (out / "error.txt").read_text() and "simulated bug" in (out / "error.txt").read_text()


@pytest.mark.parametrize("args, message", [
    (["--rank", "0"], "--rank must be an integer >= 1"),
    (["--rank", "-4"], "--rank must be an integer >= 1"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--eval-limit", "0"], "--eval-limit must be >= 1"),
    (["--dropout", "1.0"], "dropout must be in [0, 1)"),
    (["--model", "roberta-large"], "pass its folder with --model"),
    (["--task", "rte"], "pass a local copy with --data-dir"),
    (["--task", "aclsum_summary", "--model", "tiny-llama", "--method", "linear_probe"], "has none"),
])
def test_bad_arguments_fail_before_anything_is_created(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code, _, err = run_cli(["train", "--task", "tweets", "--model", "tiny-bert", "--out", str(out), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_finished_run_is_not_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code, _, err = run_cli(["train", "--task", "tweets", "--model", "tiny-bert", "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err and (out / "metrics.json").read_text() == "{}"


def test_a_results_file_that_is_not_utf8_is_named(tmp_path, capsys):
    bad = tmp_path / "results.jsonl"
    bad.write_bytes(b'{"run_id": "\xff\xfe"}\n')
    code, _, err = run_cli(["report", str(bad), "--out", str(tmp_path / "rep")], capsys)
    assert code == 2 and str(bad) in err and "utf-8" in err and len(err.strip().splitlines()) == 1


def test_checkpoints_carry_the_dropout_mask_stream(tmp_path, capsys):
    """Each checkpoint records every adapted layer's mask-stream position, and resuming puts it back
    (so a resumed run does not replay the masks it already used)."""
    from asymlora.adapters.inject import adapted_modules
    from asymlora.methods import prepare
    from asymlora.models import load_for_sequence_classification
    from asymlora.training.callbacks import restore_mask_state

    out = tmp_path / "run"
    args = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "2", "--dropout",
            "0.3", "--eval-steps", "2", "--keep-checkpoints", "--max-steps", "2", "--out", str(out), *SMALL]
    assert run_cli(args, capsys)[0] == 0
    checkpoint = out / "checkpoints" / "checkpoint-2"
    saved = json.loads((checkpoint / "asymlora_mask_state.json").read_text())
    assert len(saved) == 4 and all(v["calls"] >= 2 for v in saved.values())  # 2 training forwards at least
    model = prepare(load_for_sequence_classification("tiny-bert", 3), "b_only", rank=2, dropout=0.3,
                    targets=["query", "value"], seed=0)
    assert all(m.mask_state()["calls"] == 0 for m in adapted_modules(model).values())
    assert restore_mask_state(model, str(checkpoint))
    assert {n: m.mask_state() for n, m in adapted_modules(model).items()} == saved
    assert not restore_mask_state(model, None)


def test_checkpoints_hold_only_trained_tensors_and_no_pickle(tmp_path, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    args = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "2", "--dropout",
            "0.1", "--eval-steps", "2", "--keep-checkpoints", "--max-steps", "2", "--out", str(out), *SMALL]
    assert run_cli(args, capsys)[0] == 0
    checkpoint = out / "checkpoints" / "checkpoint-2"
    names = sorted(p.name for p in checkpoint.iterdir())
    assert not [n for n in names if n.endswith((".pt", ".pth", ".bin", ".pkl"))], names
    keys = set(load_file(str(checkpoint / "trainable.safetensors")))
    # B of query and value in 2 layers, and the classifier head: nothing frozen (no A, no base weight)
    assert keys == {f"bert.encoder.layer.{i}.attention.self.{m}.B" for i in (0, 1) for m in ("query", "value")} | \
        {"classifier.weight", "classifier.bias"}
    optimizer = load_file(str(checkpoint / "optimizer.safetensors"))
    assert {k.rsplit(".", 1)[1] for k in optimizer} == {"exp_avg", "exp_avg_sq", "step"}  # AdamW, per tensor
    assert len(optimizer) == 3 * len(keys)


def test_resume_after_an_interruption_is_bit_identical(tmp_path, capsys, trainer_runs):
    """A run stopped right after its step-2 checkpoint (simulated: only that checkpoint is kept) and
    resumed ends with the same trained tensors as the uninterrupted run, dropout on: the data order,
    optimiser, scheduler, RNG states and adapter mask streams all continue."""
    import shutil

    from safetensors.torch import load_file

    common = ["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_only", "--rank", "2", "--dropout",
              "0.3", "--eval-steps", "2", "--keep-checkpoints", "--max-steps", "4", *SMALL]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli(common + ["--out", str(whole)], capsys)[0] == 0
    (split / "checkpoints").mkdir(parents=True)
    shutil.copytree(whole / "checkpoints" / "checkpoint-2", split / "checkpoints" / "checkpoint-2")
    assert run_cli(common + ["--resume", "--out", str(split)], capsys)[0] == 0
    whole_run, resumed = trainer_runs
    assert (whole_run.start_step, whole_run.steps) == (0, [1, 2, 3, 4])
    assert (resumed.start_step, resumed.steps) == (2, [3, 4])  # the checkpoint's step 2, then only steps 3-4
    a = load_file(str(whole / "checkpoints" / "checkpoint-4" / "trainable.safetensors"))
    b = load_file(str(split / "checkpoints" / "checkpoint-4" / "trainable.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole_record, split_record = (json.loads((f / "metrics.json").read_text()) for f in (whole, split))
    assert whole_record["metrics"] == split_record["metrics"]
    # the evaluation before the interruption is restored: same curve, same choice of the best
    assert whole_record["history"] == split_record["history"] and len(whole_record["history"]) == 2
    assert whole_record["best_eval"] == split_record["best_eval"]
