"""The CLI shell: expected failures end in one clear line and exit 2, commands are discovered, writes are atomic."""

import os
import stat
import subprocess
import sys

import pytest

from asymlora.atomic import atomic_write_text
from asymlora.cli import app, main
from asymlora.commands import command_modules


def run(*args):
    return subprocess.run([sys.executable, "-m", "asymlora.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_every_command_module_registers():
    entries = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]  # groups: eval
    names = set(entries)
    assert len(names) == len(entries) >= len(command_modules())
    assert {"demo", "train", "reproduce", "report", "theory", "bounds", "similarity", "bench", "eval"} <= names


def test_usage_error_is_short_and_exits_2():
    result = run("theory", "--no-such-option")
    assert result.returncode == 2
    assert result.stderr == "error: no such option --no-such-option\n"


def test_unknown_option_names_the_closest_one(capsys):
    from helpers import run_cli

    code, _, err = run_cli(["train", "--task", "tweets", "--lrate", "1e-3"], capsys)
    assert (code, err) == (2, "error: no such option --lrate (did you mean --learning-rate?)\n")
    code, _, err = run_cli(["report", "x.jsonl", "--titel", "t"], capsys)
    assert (code, err) == (2, "error: no such option --titel (did you mean --title?)\n")


def test_suggest_option_by_initials_prefix_and_spelling():
    from asymlora.cli import suggest_option

    known = ["--learning-rate", "--batch-size", "--max-length", "--max-steps", "--help"]
    assert suggest_option("--lr", known) == "--learning-rate"
    assert suggest_option("--bs", known) == "--batch-size"
    assert suggest_option("--batch", known) == "--batch-size"
    assert suggest_option("--max-lenght", known) == "--max-length"
    assert suggest_option("--zzz", known) is None


def test_an_old_spelling_still_works_with_one_deprecation_line(tmp_path, capsys):
    from helpers import run_cli

    code, out, err = run_cli(["theory", "--quick", "--ranks", "1,2", "--limit-dims", "8", "--draws", "4",
                              "--gd-steps", "2", "--gd-samples", "8", "--spectra", "power_law", "--alpha", "2",
                              "--out", str(tmp_path / "t")], capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if "deprecated" in line] == \
        ["warning: '--alpha' is deprecated; use '--exponent'"]
    assert (tmp_path / "t" / "theory.json").read_text() == json_of_new_spelling(tmp_path, capsys)


def json_of_new_spelling(tmp_path, capsys) -> str:
    """theory.json of the same command in the new spelling (--exponent 2)."""
    from helpers import run_cli

    code, _, err = run_cli(["theory", "--quick", "--ranks", "1,2", "--limit-dims", "8", "--draws", "4",
                            "--gd-steps", "2", "--gd-samples", "8", "--spectra", "power_law", "--exponent", "2",
                            "--out", str(tmp_path / "new")], capsys)
    assert code == 0 and "deprecated" not in err
    return (tmp_path / "new" / "theory.json").read_text()


def test_old_spellings_are_rewritten_to_the_current_grammar():
    from asymlora.commands.aliases import rewrite

    said = []
    warn = lambda old, new: said.append((old, new))  # noqa: E731
    assert rewrite(["ood", "runs/x", "--out", "o"], warn) == ["eval", "ood", "runs/x", "--out", "o"]
    assert rewrite(["train", "--lr=1e-3", "--bf16"], warn) == ["train", "--learning-rate", "1e-3", "--dtype", "bf16"]
    assert rewrite(["bench", "--batch", "2", "--rows", "peft_lora:2"], warn) == \
        ["bench", "throughput", "--batch-size", "2", "--rows", "peft_lora:2"]
    assert rewrite(["bench", "throughput", "--rows", "b_only:2"], warn) == ["bench", "throughput", "--rows", "b_only:2"]
    assert rewrite(["bounds", "--seed", "3", "--quick", "--rank", "2"], warn) == ["bounds", "--rank", "2"]
    assert rewrite(["summarise", "table", "a", "b"], warn) == ["report", "a", "b"]
    assert said[:3] == [("asymlora ood", "asymlora eval ood"), ("--lr", "--learning-rate"), ("--bf16", "--dtype bf16")]
    assert ("--seed", None) in said
    said.clear()
    assert rewrite(["bench"], warn) == ["bench", "suite"] and rewrite(["bench", "--help"], warn) == ["bench", "--help"]
    assert rewrite(["train", "--learning-rate", "1"], warn) == ["train", "--learning-rate", "1"] and said == []


def test_user_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--task", "rtee", "--model", "tiny-bert", "--method", "b_only", "--out", "/tmp/never"])
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'rte'" in lines[0]


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]      # no temporary left behind
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH


def test_one_method_vocabulary_across_train_bench_and_memory():
    from asymlora.bench.configs import CONFIGURATIONS, configuration_name
    from asymlora.methods import canonical_name, get_method
    from asymlora.planning.trace import METHODS as PLANNED

    assert canonical_name("peft_adalora") == "adalora" == get_method("peft_adalora").name  # run ids keep 'adalora'
    assert canonical_name("b_only") == "b_only" and canonical_name("B-only") == "B-only"  # nothing else renamed
    with pytest.raises(ValueError, match="train its asymlora twin 'lora'"):
        get_method("peft_lora")
    assert [configuration_name(n) for n in ("b_only", "lora", "peft_lora", "asymlora_a_only")] == \
        ["asymlora_b_only", "asymlora_lora", "peft_lora", "asymlora_a_only"]
    assert set(PLANNED) == {"b_only", "peft_lora", "peft_lora_fa", "peft_adalora", "full"}
    assert {c for c in PLANNED.values() if c} <= set(CONFIGURATIONS)


def test_report_renders_any_result_file_by_its_kind(tmp_path, capsys):
    from pathlib import Path

    from helpers import run_cli

    committed = Path(__file__).resolve().parents[1] / "docs" / "results" / "bench" / "rebuttal_throughput" / "causal_lm"
    code, out, err = run_cli(["report", str(committed / "throughput.json"), "--out", str(tmp_path / "t")], capsys)
    assert code == 0, err
    assert (tmp_path / "t" / "throughput.md").read_text() == (committed / "throughput.md").read_text()
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = run_cli(["report", str(tmp_path / "notes.txt")], capsys)
    assert code == 2 and err.startswith("error:") and "not a result file asymlora knows" in err
    code, _, err = run_cli(["report", str(committed / "throughput.json"), str(tmp_path / "notes.txt")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
