"""`asymlora verify`: a good adapter folder passes (alone, against its base, as a run folder, as a PEFT
export); the bad ones are cases of the bad-input catalogue (tests/error_cases.py)."""

import json
import shutil

from error_cases import fresh_base, tiny_adapter
from helpers import run_cli


def test_a_good_adapter_passes_every_check(tmp_path, capsys):
    tiny_adapter()
    capsys.readouterr()  # building the fixture may print a loading bar
    code, out, err = run_cli(["verify", str(tiny_adapter())], capsys)
    assert code == 0 and out.startswith("ok: ") and "asymlora adapter, 4 adapted modules, rank 2, trains B" in out
    assert "loads onto" not in out and not err

    code, out, _ = run_cli(["verify", str(tiny_adapter()), "--model", "tiny-bert", "--task", "tweets"], capsys)
    assert code == 0 and "checked format and hashes; loads onto tiny-bert (tweets)" in out

    run = tmp_path / "run"                                   # a run folder names its model and task
    shutil.copytree(tiny_adapter(), run / "adapter")
    (run / "metrics.json").write_text(json.dumps({"model": "tiny-bert", "task": "tweets"}))
    code, out, _ = run_cli(["verify", str(run)], capsys)
    assert code == 0 and "loads onto tiny-bert (tweets)" in out


def test_a_peft_export_passes_and_half_a_base_is_refused(tmp_path, capsys):
    from asymlora.adapters.io import load_adapter
    from asymlora.adapters.peft_interop import export_peft

    export_peft(load_adapter(fresh_base(), tiny_adapter()), tmp_path / "peft")
    code, out, _ = run_cli(["verify", str(tmp_path / "peft"), "--model", "tiny-bert", "--task", "tweets"], capsys)
    assert code == 0 and "PEFT LoRA adapter, 4 adapted modules, rank 2" in out and "loads onto" in out
    code, _, err = run_cli(["verify", str(tiny_adapter()), "--model", "tiny-bert"], capsys)
    assert code == 2 and "give both --model and --task" in err
