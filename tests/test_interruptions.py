"""Interruption and concurrency: the results file survives SIGKILL and concurrent shards.

* ``asymlora reproduce`` killed (SIGKILL, no chance to clean up) mid-grid, twice, then restarted:
  every run of the grid ends in ``results.jsonl`` exactly once, and a torn last line (what a crash
  in the middle of an append leaves) is reported, skipped, and set aside to ``results.jsonl.torn``.
* Two processes appending to one results file at once lose no line and interleave none.
* A malformed line in the middle stays an error; a torn last line is a warning.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from asymlora.experiments.store import ResultsWarning, append_result, read_results
from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
GRID = ("name: killed\nmodel: tiny-bert\ntasks: [tweets]\nmethods: [b_only, lora]\nranks: [2]\nseeds: [0, 1]\n"
        "overrides: {train_limit: 32, eval_limit: 16, max_length: 24, batch_size: 8, evals_per_run: 1}\n")
RUN_IDS = {"tweets/b_only-r2-s0", "tweets/b_only-r2-s1", "tweets/lora-r2-s0", "tweets/lora-r2-s1"}


def _valid_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n")[:-1] if line.strip())


def _start(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "asymlora.cli", "reproduce", str(config), "--out", str(out),
                             "--max-steps", "3", "--no-report"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill_after(process: subprocess.Popen, results: Path, lines: int, timeout: float = 400) -> str:
    """SIGKILL ``process`` as soon as ``results`` holds ``lines`` complete lines; its stderr."""
    deadline = time.monotonic() + timeout
    while _valid_lines(results) < lines:
        if process.poll() is not None:
            raise AssertionError(f"reproduce ended before the kill: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("reproduce made no progress")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return err


@pytest.mark.slow
def test_reproduce_killed_twice_mid_grid_completes_every_run_exactly_once(tmp_path, capsys):
    config, out = tmp_path / "grid.yaml", tmp_path / "out"
    config.write_text(GRID)
    results = out / "results.jsonl"

    _kill_after(_start(config, out), results, 1)                  # interruption 1: after the first run
    done = _valid_lines(results)
    assert 1 <= done < len(RUN_IDS)
    torn = b'{"run_id": "tweets/lora-r2-s1", "fingerpri'          # a crash in the middle of an append
    with open(results, "ab") as handle:
        handle.write(torn)

    err = _kill_after(_start(config, out), results, done + 1)     # interruption 2: one more run, then kill
    assert f"line {done + 1} is incomplete" in err                # the torn line was reported, not fatal
    assert "Traceback" not in err
    assert (out / "results.jsonl.torn").read_bytes() == torn + b"\n"  # set aside by the next append
    assert _valid_lines(results) < len(RUN_IDS)

    code, stdout, err = run_cli(["reproduce", str(config), "--out", str(out), "--max-steps", "3", "--no-report"],
                                capsys)
    assert code == 0, err
    left = len(RUN_IDS) - (done + 1)
    assert f"{left} runs to do, {done + 1} already in" in stdout  # only the missing runs ran
    records = read_results(results)
    assert sorted(r["run_id"] for r in records) == sorted(RUN_IDS)  # every run exactly once
    assert len(results.read_bytes().splitlines()) == len(RUN_IDS)  # and nothing else in the file


def _append_many(path: str, worker: int, count: int, barrier) -> None:
    barrier.wait()
    for i in range(count):
        padding = "x" * (37 * ((i * 7919 + worker) % 400))  # lines from 0.1 to 15 KB
        append_result(path, {"run_id": f"w{worker}-{i}", "metrics": {"i": i}, "padding": padding})


def test_two_processes_appending_at_once_lose_no_line(tmp_path):
    path, count = tmp_path / "results.jsonl", 300
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(str(path), w, count, barrier)) for w in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == 2 * count                # every line ends, none lost
    ids = [json.loads(line)["run_id"] for line in lines[:-1]]              # none interleaved (all parse)
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in (0, 1) for i in range(count))
    order = [i for i in ids if i.startswith("w0-")]
    assert order == [f"w0-{i}" for i in range(count)]                      # each writer's lines in order


def test_a_torn_last_line_is_skipped_with_one_warning_and_a_middle_one_is_an_error(tmp_path):
    path = tmp_path / "results.jsonl"
    good = json.dumps({"run_id": "a", "metrics": {}}) + "\n"
    path.write_text(good + '{"run_id": "b", "met')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert [r["run_id"] for r in read_results(path)] == ["a"]
        assert [r["run_id"] for r in read_results(path)] == ["a"]
    messages = [str(w.message) for w in caught if issubclass(w.category, ResultsWarning)]
    assert messages == [f"{path}: line 2 is incomplete (a run was interrupted while writing it); skipped, its run "
                        "counts as not done"]                             # reported once
    path.write_text(good + '{"run_id": "b", "met\n' + good)
    with pytest.raises(ValueError, match=r"results.jsonl:2: not a JSON line .*repair or remove that line"):
        read_results(path)
    path.write_text(good + good.rstrip("\n"))                             # complete but unterminated: kept
    assert len(read_results(path)) == 2


def test_append_after_a_torn_line_keeps_every_record_on_its_own_line(tmp_path):
    path = tmp_path / "results.jsonl"
    append_result(path, {"run_id": "a", "metrics": {}})
    with open(path, "ab") as handle:
        handle.write(b'{"run_id": "b", "metr')
    with pytest.warns(ResultsWarning, match="moved an incomplete last line"):
        append_result(path, {"run_id": "c", "metrics": {}})
    assert [r["run_id"] for r in read_results(path)] == ["a", "c"]
    assert (tmp_path / "results.jsonl.torn").read_bytes() == b'{"run_id": "b", "metr\n'


@pytest.mark.slow
def test_train_killed_mid_run_and_resumed_ends_bit_identical(tmp_path, capsys, trainer_runs):
    """`asymlora train` SIGKILLed after its first checkpoint, then run again with --resume (in this
    process, so that its steps are counted), starts at its last complete checkpoint, takes only the
    steps after it, and ends with the same trained tensors as an uninterrupted run (CPU, same seed,
    adapter dropout 0.3)."""
    from safetensors.torch import load_file

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "asymlora.cli", "train", "--task", "tweets", "--model", "tiny-bert", "--method",
            "b_only", "--rank", "2", "--dropout", "0.3", "--max-steps", "12", "--eval-steps", "2", "--train-limit",
            "96", "--eval-limit", "16", "--max-length", "24", "--batch-size", "8", "--threads", "1",
            "--keep-checkpoints"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(args + ["--out", str(whole)], env=env, check=True, capture_output=True, timeout=600)
    process = subprocess.Popen(args + ["--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "checkpoint-2" / "asymlora_mask_state.json"
    deadline = time.monotonic() + 600
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (killed / "metrics.json").exists()
    complete = [int(c.name.split("-")[1]) for c in (killed / "checkpoints").glob("checkpoint-*")
                if (c / "asymlora_mask_state.json").is_file() and (c / "trainer_state.json").is_file()]
    code, _, err = run_cli(args[3:] + ["--out", str(killed), "--resume"], capsys)
    assert code == 0, err[-3000:]
    (resumed,) = trainer_runs
    assert resumed.start_step == max(complete) >= 2                         # the last complete checkpoint...
    assert resumed.steps == list(range(resumed.start_step + 1, 13))         # ...and only the steps after it
    a = load_file(str(whole / "checkpoints" / "checkpoint-12" / "trainable.safetensors"))
    b = load_file(str(killed / "checkpoints" / "checkpoint-12" / "trainable.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert json.loads((whole / "metrics.json").read_text())["metrics"] == \
        json.loads((killed / "metrics.json").read_text())["metrics"]


def test_an_adapter_save_cut_short_leaves_the_previous_adapter_whole(tmp_path, monkeypatch):
    """A kill while an adapter folder is replaced: before the swap nothing changes; between its two
    renames the previous folder is set aside and the next reader puts it back."""
    import torch

    import asymlora as al
    import asymlora.atomic as atomic
    from helpers import fresh_bert, save_tiny_bert

    base = save_tiny_bert(tmp_path / "base")
    model = al.inject(fresh_bert(base), al.AdapterConfig(rank=2, modules_to_save=["classifier"]))
    folder = tmp_path / "adapter"
    al.save_adapter(model, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    real_replace, calls = os.replace, []

    def killed_between_renames(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the second rename of the swap never happens
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_between_renames)
    with pytest.raises(KeyboardInterrupt):
        al.save_adapter(model, folder)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert not folder.exists()  # the state a kill between the renames leaves
    al.load_adapter(fresh_bert(base), folder)  # the reader recovers the previous adapter...
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # ...byte for byte
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter")]  # and no litter


def test_a_merged_export_that_fails_midway_changes_nothing(tmp_path, monkeypatch):
    import asymlora as al
    from asymlora.adapters import merged
    from helpers import fresh_bert, save_tiny_bert

    base = save_tiny_bert(tmp_path / "base")
    model = al.inject(fresh_bert(base), al.AdapterConfig(rank=2, modules_to_save=["classifier"]))
    out = tmp_path / "merged"
    al.save_merged(model, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(merged, "merged_state_dict", crash)
    with pytest.raises(KeyboardInterrupt):
        al.save_merged(model, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
