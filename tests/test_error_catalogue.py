"""Every case of the bad-input catalogue (tests/error_cases.py), through the CLI and the Python API.

The contract (docs/errors.md): the catalogued exit status, ONE line on stderr naming the problem and
the fix, no traceback, no file created or changed; the API raises a ValueError / FileNotFoundError
with the same message. A handful of cases also run as a real ``python -m asymlora.cli`` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from error_cases import CASES, DOC, render
from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _prepared(case, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / "case"
    folder.mkdir()
    if case.setup is not None:
        case.setup(folder)
    return folder, _snapshot(folder)


def _check_line(case, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{case.id}: expected one line on stderr, got {stderr!r}"
    assert case.message in lines[0] and case.fix in lines[0], f"{case.id}: {lines[0]!r}"
    assert "Traceback" not in stderr


def _check_untouched(case, folder: Path, before: dict[str, bytes]) -> None:
    """Every file that was there is unchanged; an error creates none but the ones it names
    (``case.writes``: a failed run's error.txt); a warning lets the command write its outputs."""
    after = _snapshot(folder)
    changed = [name for name, data in before.items() if after.get(name) != data]
    created = sorted(set(after) - set(before))
    assert not changed, f"{case.id}: changed {changed}"
    unexpected = [name for name in created if Path(name).name not in case.writes]
    assert case.code == 0 or not unexpected, f"{case.id}: wrote {unexpected}"


@pytest.mark.parametrize("case", [c for c in CASES if c.cli is not None], ids=lambda c: c.id)
def test_cli(case, tmp_path, capsys, monkeypatch):
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    folder, before = _prepared(case, tmp_path)
    monkeypatch.chdir(folder)  # a command that falls back to runs/... writes inside the case folder
    code, _, err = run_cli(case.cli(folder), capsys)
    assert code == case.code, f"{case.id}: exit {code}, stderr {err!r}"
    _check_line(case, err)
    _check_untouched(case, folder, before)


@pytest.mark.parametrize("case", [c for c in CASES if c.api is not None], ids=lambda c: c.id)
def test_api(case, tmp_path, monkeypatch):
    """The API raises ValueError / FileNotFoundError with the catalogued line (a warning case warns)."""
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    folder, before = _prepared(case, tmp_path)
    if case.code == 0:
        with pytest.warns(UserWarning) as caught:
            case.api(folder)
        message = str(caught[0].message)
    else:
        with pytest.raises((ValueError, FileNotFoundError)) as caught:
            case.api(folder)
        message = str(caught.value)
    assert "\n" not in message.strip() and case.message in message and case.fix in message, f"{case.id}: {message!r}"
    _check_untouched(case, folder, before)


def _subprocess(args: list[str], cwd: Path, extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(extra or {}), "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("ASYMLORA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "asymlora.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("case", [c for c in CASES if c.subprocess], ids=lambda c: c.id)
def test_subprocess(case, tmp_path):
    folder, before = _prepared(case, tmp_path)
    result = _subprocess(case.cli(folder), folder, dict(case.env))
    assert result.returncode == case.code, f"{case.id}: {result.stderr}"
    _check_line(case, result.stderr)
    _check_untouched(case, folder, before)


def test_debug_shows_the_traceback(tmp_path, capsys):
    """--debug re-raises the error, so its traceback shows (here: the UserError itself)."""
    from asymlora.cli import main
    from asymlora.errors import UserError

    with pytest.raises(UserError, match="unknown method 'b_onyl'"):
        main(["train", "--task", "tweets", "--model", "tiny-bert", "--method", "b_onyl", "--debug",
              "--out", str(tmp_path / "x")])


def test_the_catalogue_is_big_enough_and_covers_every_area():
    from error_cases import AREAS

    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert {c.area for c in CASES} == set(AREAS)
    assert sum(c.subprocess for c in CASES) >= 5
    assert all(c.cli is not None or c.api is not None for c in CASES)
    assert all(c.code in (0, 1, 2) for c in CASES)


def test_docs_errors_md_is_generated_from_the_catalogue():
    assert DOC.read_text() == render(), "docs/errors.md is stale: run `python tests/error_cases.py`"
