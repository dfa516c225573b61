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
    assert "No such option" in result.stderr and "Traceback" not in result.stderr


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
