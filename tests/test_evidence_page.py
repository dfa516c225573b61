"""docs/evidence.md and the claims table are generated from the committed result files
(``asymlora evidence``); the committed copies must be what the generator writes today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli

from asymlora.experiments.evidence_page import SECTIONS, embedded, machine_sentence, render_page

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "evidence.md"
CLAIMS = REPO / "docs" / "results" / "claims"
FIX = "run `asymlora evidence --out docs/evidence.md` from the repository root"


@pytest.fixture(scope="module")
def page():
    return render_page(REPO, PAGE, CLAIMS)


def test_committed_evidence_page_is_not_stale(page):
    assert PAGE.read_text(encoding="utf-8") == page.markdown, f"docs/evidence.md is stale: {FIX}"


def test_committed_claims_table_is_not_stale(page):
    assert (CLAIMS / "claims.md").read_text(encoding="utf-8") == page.claims_markdown, f"claims.md is stale: {FIX}"
    assert (CLAIMS / "claims.json").read_text(encoding="utf-8") == page.claims_json, f"claims.json is stale: {FIX}"


def test_every_table_is_copied_from_its_committed_file(page):
    """A number changed in any committed table changes the page (so the staleness test sees it)."""
    for section in SECTIONS:
        assert f"## {section.title}" in page.markdown
        for table in section.tables:
            text = (REPO / table).read_text(encoding="utf-8")
            assert embedded(text) in page.markdown, table
            assert f"[`{table}`]" in page.markdown


def test_the_page_states_the_verdict_of_every_claim(page):
    for verdict in json.loads(page.claims_json)["claims"]:
        assert f"| {verdict['claim']} | " in page.markdown and f"**{verdict['verdict']}**" in page.markdown


@pytest.mark.parametrize("text, sentence", [
    ("Intro. More.\n\nRuns took long. **Machine** a 2-vCPU VM, no GPU. Then more.\n",
     "**Machine** a 2-vCPU VM, no GPU."),
    ("# Title\n\nCommand: x.\n\nThis project's 2-vCPU AMD EPYC VM, no GPU, one core per run: load-dependent.\n",
     "This project's 2-vCPU AMD EPYC VM, no GPU, one core per run: load-dependent."),
    ("Target met.\nMachine: x86_64, 2 logical cores, load average [2.0, 1.9].\n",
     "Machine: x86_64, 2 logical cores, load average [2.0, 1.9]."),
    ("Nothing here about hardware.\n", None),
])
def test_machine_sentence_quotes_the_labelled_sentence_else_the_one_naming_the_hardware(text, sentence):
    assert machine_sentence(text) == sentence


def test_machine_of_a_results_file_is_its_records_device():
    lines = "\n".join(json.dumps({"run_id": f"r{i}", "device": d}) for i, d in enumerate(["cpu (2 cores)", "cuda:0"]))
    assert machine_sentence(lines + "\n") == "the run records' device: cpu (2 cores); cuda:0"


def test_headings_of_a_copied_table_are_demoted():
    assert embedded("# Title\n\n## Part\n\n| a |\n|---|\n| 1 |\n") == "#### Title\n\n#### Part\n\n| a |\n|---|\n| 1 |"


def test_command_writes_the_page_and_the_claims_table_then_check_passes(tmp_path, capsys):
    out = tmp_path / "docs" / "evidence.md"
    code, _, err = run_cli(["evidence", "--out", str(out), "--root", str(REPO), "--check"], capsys)
    assert code == 1 and "stale: " in err and not out.exists()
    code, _, err = run_cli(["evidence", "--out", str(out), "--root", str(REPO)], capsys)
    assert code == 0, err
    claims = tmp_path / "docs" / "results" / "claims"
    assert (claims / "claims.md").read_text() == (CLAIMS / "claims.md").read_text()
    assert "](results/claims/claims.md)" in out.read_text()
    advice = tmp_path / "src" / "asymlora" / "choosing_advice.py"  # beside the page's folder, not in the repo
    assert advice.read_text() == (REPO / "src" / "asymlora" / "choosing_advice.py").read_text()
    code, _, err = run_cli(["evidence", "--out", str(out), "--root", str(REPO), "--check"], capsys)
    assert code == 0, err


def test_command_refuses_an_out_that_is_not_a_markdown_file(tmp_path, capsys):
    code, _, err = run_cli(["evidence", "--out", str(tmp_path), "--root", str(REPO)], capsys)
    assert code == 2 and "must be a markdown file path" in err


def test_command_refuses_a_root_without_results(tmp_path, capsys):
    code, _, err = run_cli(["evidence", "--out", str(tmp_path / "e.md"), "--root", str(tmp_path)], capsys)
    assert code == 2 and "no docs/results" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.md").exists()


def test_committed_choosing_page_is_not_stale():
    from asymlora.experiments.choosing_page import render_choosing

    assert (REPO / "docs" / "choosing.md").read_text(encoding="utf-8") == render_choosing(REPO), \
        f"docs/choosing.md is stale: {FIX}"
