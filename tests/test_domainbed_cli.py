"""``asymlora domainbed``: dry runs of the shipped configs, bad input (exit 2, one line, nothing
written) and one end-to-end sweep + collect on a tiny random ViT and a fixture image tree."""

import json
from pathlib import Path

import pytest
import yaml

from helpers import run_cli
from test_domainbed_data import make_tree

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("domainbed_*.yaml"))


def test_there_are_configs_for_the_four_datasets():
    names = {p.stem for p in CONFIGS}
    assert {"domainbed_vlcs", "domainbed_pacs", "domainbed_officehome", "domainbed_terraincognita"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_configs_dry_run(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["domainbed", "sweep", str(config), "--dry-run"], capsys)
    assert code == 0, err
    assert "dry run: nothing loaded or written" in out and "random search" in out
    assert list(tmp_path.iterdir()) == []


def tiny_config(tmp_path, **extra):
    data = {"name": "tiny", "dataset": "VLCS", "data_dir": str(tmp_path / "data"), "model": "tiny-vit",
            "variants": ["lora", "b_only"], "rank": 2, "test_envs": [0], "n_hparams": 2, "n_trials": 1,
            "steps": 3, "checkpoint_freq": 2, "eval_examples": 2, "tune": "lora"}
    data.update(extra)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--n-trials", "0"], "--n-trials must be an integer >= 1"),
    (["--test-envs", "7"], "test environment 7 does not exist in VLCS"),
    (["--test-envs", "Sketch"], "test environment Sketch does not exist in VLCS"),
    (["--tune", "both"], "--tune must be one of"),
])
def test_bad_options_exit_2_with_one_line(args, message, tmp_path, capsys):
    make_tree(tmp_path / "data")
    out = tmp_path / "out"
    code, _, err = run_cli(["domainbed", "sweep", tiny_config(tmp_path), "--out", str(out)] + args, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_data_folders_exit_2_naming_the_problem(tmp_path, capsys):
    import shutil

    make_tree(tmp_path / "data")
    out = tmp_path / "out"
    cfg = tiny_config(tmp_path)
    bad = tmp_path / "data" / "VLCS" / "LabelMe" / "bird" / "0.png"
    bad.write_bytes(b"\x89PNG broken")
    code, _, err = run_cli(["domainbed", "sweep", cfg, "--out", str(out)], capsys)
    assert code == 2 and "LabelMe/bird/0.png: not a readable image" in err and len(err.strip().splitlines()) == 1
    bad.unlink()
    shutil.rmtree(tmp_path / "data" / "VLCS" / "SUN09")
    code, _, err = run_cli(["domainbed", "sweep", cfg, "--out", str(out)], capsys)
    assert code == 2 and "['SUN09'] missing" in err
    assert not out.exists()


def test_sweep_and_collect_end_to_end_on_tiny_vit(tmp_path, capsys):
    make_tree(tmp_path / "data", per_class=4)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["domainbed", "sweep", tiny_config(tmp_path), "--out", str(out)], capsys)
    assert code == 0, err
    lora = sorted((out / "VLCS" / "lora").glob("*/result.json"))
    assert [p.parent.name for p in lora] == ["env0_h0_t0", "env0_h1_t0"]
    (b_only,) = (out / "VLCS" / "b_only").glob("*/result.json")
    record = json.loads(b_only.read_text())
    assert [c["step"] for c in record["checkpoints"]] == [0, 2]  # step % 2 == 0, and the last step
    assert set(record["checkpoints"][0]["accs"]) == {f"env{e}_{p}_acc" for e in range(4) for p in ("in", "out")}
    assert record["info"]["eval_sizes"]["env1_in"] == 2 and record["info"]["hparams_from"] == "lora"
    chosen = record["key"]["hparams_seed"]
    assert record["hparams"] == json.loads((out / "VLCS" / "lora" / f"env0_h{chosen}_t0" / "result.json").read_text())["hparams"]
    # a second sweep finds everything done
    code, stdout, _ = run_cli(["domainbed", "sweep", tiny_config(tmp_path), "--out", str(out)], capsys)
    assert code == 0 and "0 run(s) now, 3 done before" in stdout
    # seeded: the same run in another folder measures the same accuracies
    from asymlora.experiments.domainbed.config import read_config
    from asymlora.experiments.domainbed.driver import train_run
    from asymlora.experiments.domainbed.records import RunKey

    again = train_run(RunKey("VLCS", "b_only", 0, chosen, 0), read_config(tiny_config(tmp_path)), log=lambda *_: None)
    assert [c.accs for c in again.checkpoints] == [c["accs"] for c in record["checkpoints"]]
    code, stdout, err = run_cli(["domainbed", "collect", str(out)], capsys)
    assert code == 0, err
    tables = (out / "tables.md").read_text()
    assert "training-domain validation set" in tables and "oracle" in tables and "| b_only |" in tables
    data = json.loads((out / "tables.json").read_text())
    assert data["VLCS"]["training_domain"][0]["n_trials"] == [1]
    code, _, err = run_cli(["domainbed", "collect", str(out), "--test-envs", "9"], capsys)
    assert code == 2 and "VLCS's environments are 0=Caltech101" in err


def test_collect_of_an_empty_folder_is_a_user_error(tmp_path, capsys):
    code, _, err = run_cli(["domainbed", "collect", str(tmp_path)], capsys)
    assert code == 2 and "no finished run" in err
