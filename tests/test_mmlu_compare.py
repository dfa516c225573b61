"""``asymlora eval mmlu-table``: evaluations side by side with paired bootstrap differences."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from asymlora.evaluation.mmlu.compare import compare, compare_markdown, paired_difference, read_tree
from asymlora.tasks.mmlu import CATEGORIES

SUBJECTS = ["philosophy", "astronomy", "sociology", "marketing"]   # one per category


def write_eval(folder, correct: list[int], fmt="cloze", shots=0):
    """An evaluation folder where question i of subject i % 4 is right iff correct[i]."""
    folder.mkdir(parents=True)
    rows = [{"subject": SUBJECTS[i % 4], "index": i // 4, "predicted": "A" if c else "B", "gold": "A",
             "scores": [0, 0, 0, 0], "shots": shots, "truncated": False} for i, c in enumerate(correct)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_category = {}
    for category, subject in zip(CATEGORIES, SUBJECTS):
        mine = [r for r in rows if r["subject"] == subject]
        by_category[category] = {"micro": 100.0 * sum(r["predicted"] == "A" for r in mine) / len(mine)}
    by_category["Average"] = {"micro": 100.0 * sum(correct) / len(correct)}
    (folder / "summary.json").write_text(json.dumps({"format": fmt, "shots": shots, "categories": by_category}))


def test_paired_difference_is_exact_and_its_interval_excludes_zero_only_for_a_real_gap(tmp_path):
    n = 80
    write_eval(tmp_path / "base" / "cloze_0shot", [i % 4 == 0 for i in range(n)])            # 25%
    write_eval(tmp_path / "better" / "cloze_0shot", [i % 4 != 3 for i in range(n)])          # 75%
    write_eval(tmp_path / "same" / "cloze_0shot", [i % 4 == 1 for i in range(n)])            # 25%, other questions
    found = {e.label: e for e in read_tree(tmp_path)}
    better = paired_difference(found["better"], found["base"])
    assert better["difference"] == pytest.approx(50.0) and better["questions"] == n
    assert better["low"] > 0
    same = paired_difference(found["same"], found["base"])
    assert same["difference"] == pytest.approx(0.0) and same["low"] < 0 < same["high"]


def test_table_has_the_paper_layout_per_format(tmp_path):
    for label, value in (("base", 0), ("b_only", 1)):
        for shots in (0, 5):
            write_eval(tmp_path / label / f"harness_{shots}shot", [value] * 8, fmt="harness", shots=shots)
    document = compare(read_tree(tmp_path), "base", ["base", "b_only"])
    text = compare_markdown(document)
    assert "0-shot Humanities" in text and "5-shot Average" in text and "5-shot Δ avg (95% CI)" in text
    b_only_row = [line for line in text.splitlines() if line.startswith("| b_only |")][0]
    assert "100.0" in b_only_row and "+100.0 [+100.0, +100.0]" in b_only_row
    assert [line for line in text.splitlines() if line.startswith("| base |")][0].rstrip().endswith("| – |")


def test_different_question_sets_are_refused(tmp_path):
    write_eval(tmp_path / "base" / "cloze_0shot", [1] * 8)
    write_eval(tmp_path / "other" / "cloze_0shot", [1] * 12)
    with pytest.raises(ValueError, match="scored different questions"):
        compare(read_tree(tmp_path), "base")


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "not a folder of MMLU evaluations"),
    (lambda root: (root / "x" / "cloze_0shot").mkdir(parents=True), "summary.json: missing"),
    (lambda root: root.mkdir(), "no <label>/<format>_<k>shot evaluation folders"),
])
def test_cli_bad_input_is_one_line(tmp_path, setup, message):
    root = tmp_path / "evals"
    setup(root)
    result = subprocess.run([sys.executable, "-m", "asymlora.cli", "eval", "mmlu-table", str(root)],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (root / "mmlu_table.md").exists()


def test_cli_unknown_reference_is_refused(tmp_path):
    write_eval(tmp_path / "base" / "cloze_0shot", [1] * 8)
    result = subprocess.run([sys.executable, "-m", "asymlora.cli", "eval", "mmlu-table", str(tmp_path),
                             "--reference", "lora"], capture_output=True, text=True)
    assert result.returncode == 2 and "reference 'lora' is not among the labels (base)" in result.stderr
