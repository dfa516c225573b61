"""``asymlora export`` and ``asymlora verify --for``: a run folder exported for each engine loads in stock
PEFT with the run's logits, verifies on the model it was trained on, and bad input is one line."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli

from asymlora.adapters.inject import adapted_modules
from asymlora.adapters.io import load_adapter, save_adapter
from asymlora.commands.adapter_source import base_model

MODEL, TASK = "tiny-llama", "aclsum_summary"
INPUT = torch.randint(3, 90, (2, 10), generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder (``adapter/`` + ``metrics.json``) of a B-only rank-3 adapter with random B."""
    from asymlora.methods import prepare

    root = tmp_path_factory.mktemp("run")
    model = prepare(base_model(MODEL, TASK), "b_only", rank=3, alpha=5.0, targets=["q_proj", "v_proj", "o_proj"],
                    seed=0, head_modules=())
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for module in adapted_modules(model).values():
            module.B.copy_(torch.randn(module.B.shape, generator=generator))
    save_adapter(model, root / "adapter")
    (root / "metrics.json").write_text(json.dumps({"model": MODEL, "task": TASK}))
    return root


def logits(model):
    with torch.no_grad():
        return model.eval()(input_ids=INPUT).logits


@pytest.mark.parametrize("engine, pad, rank", [("vllm", "8", 8), ("sglang", None, 3), ("peft", None, 3)])
def test_export_then_verify_each_engine(run_folder, tmp_path, capsys, engine, pad, rank):
    from peft import PeftModel

    out = tmp_path / engine
    code, stdout, stderr = run_cli(["export", str(run_folder), "--for", engine, "--out", str(out),
                                    *(["--pad-rank", pad] if pad else [])], capsys)
    assert code == 0, stderr
    assert f"ok: wrote {out}: " in stdout and f"6 modules, rank {rank}, task_type CAUSAL_LM" in stdout
    ours = load_adapter(base_model(MODEL, TASK), run_folder / "adapter")
    theirs = PeftModel.from_pretrained(base_model(MODEL, TASK), out)
    torch.testing.assert_close(logits(theirs), logits(ours), atol=1e-5, rtol=0)
    code, stdout, stderr = run_cli(["verify", str(out), "--for", engine, "--model", MODEL], capsys)
    assert code == 0, stderr
    assert f"accepts it: 6 modules, rank {rank}; applies to 6 of 6 modules of {MODEL}" in stdout


def test_verify_for_refuses_with_one_line(run_folder, tmp_path, capsys):
    out = tmp_path / "vllm"
    assert run_cli(["export", str(run_folder), "--for", "vllm", "--out", str(out)], capsys)[0] == 0
    data = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**data, "use_rslora": True}))
    code, stdout, stderr = run_cli(["verify", str(out), "--for", "vllm", "--model", MODEL], capsys)
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert "use_rslora=true" in stderr and "vLLM issue 10798" in stderr
    code, _, stderr = run_cli(["verify", str(run_folder), "--for", "sglang"], capsys)
    assert code == 2 and "export it first: asymlora export" in stderr
    (out / "adapter_config.json").write_text(json.dumps(data))
    code, _, stderr = run_cli(["verify", str(out), "--for", "vllm", "--lora-target-modules", "o_proj", "--model",
                               MODEL], capsys)
    assert code == 2 and "leave out 4 of the adapter's 6 modules" in stderr


def test_export_bad_input_writes_nothing(run_folder, tmp_path, capsys):
    out = tmp_path / "out"
    cases = [(["--for", "tgi"], "unknown engine 'tgi'; choose one of vllm, sglang, peft"),
             (["--for", "vllm", "--pad-rank", "12"], "--pad-rank 12 is not a vLLM --max-lora-rank value; choose one "
                                                     "of 8, 16"),
             (["--for", "sglang", "--pad-rank", "2"], "--pad-rank 2 is below the adapter's rank 3")]
    for extra, words in cases:
        code, _, stderr = run_cli(["export", str(run_folder), "--out", str(out), *extra], capsys)
        assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = run_cli(["export", str(run_folder / "adapter"), "--for", "vllm", "--out", str(out)], capsys)
    assert code == 2 and "give --model and --task" in stderr
    assert not out.exists()
