"""DDP: `asymlora train` under `torchrun --nproc_per_node 2` (gloo, CPU) equals one process with the
same global batch.

Setup: a tiny BERT (hidden 32, 2 layers) saved as a local folder with every dropout at 0 (dropout
masks are per process, so they cannot match), B-only r=4, 4 optimiser steps. One process uses
batch 8; two processes use batch 4 each (global batch 8: accelerate gives rank k the batches
k, k+2, ... of the same seeded permutation, so each step sees the same 8 examples and DDP averages
the two half-batch gradients). Tolerance: trained tensors agree to 1e-4 absolute (float sums in a
different order, amplified a little by Adam); the final evaluation's metrics agree to 1e-3 absolute.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TOLERANCE = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model_folder(root: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from asymlora.models import model_path

    tokenizer = AutoTokenizer.from_pretrained(model_path("minilm"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    torch.manual_seed(0)
    folder = root / "tiny-bert-nodropout"
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run(command: list[str], cwd: Path) -> None:
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_process_ddp_matches_one_process(tmp_path):
    model = tiny_model_folder(tmp_path)
    common = ["train", "--task", "tweets", "--model", str(model), "--method", "b_only", "--rank", "4", "--dropout", "0",
              "--max-steps", "4", "--train-limit", "64", "--eval-limit", "32", "--max-length", "24", "--learning-rate", "1e-2", "--eval-steps", "4",
              "--threads", "1"]
    run([sys.executable, "-m", "asymlora.cli", *common, "--batch-size", "8", "--out", str(tmp_path / "one")], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "-m", "asymlora.cli", *common, "--batch-size", "4", "--out", str(tmp_path / "two")], tmp_path)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["train_steps"] == two["train_steps"] == 4
    a = load_file(tmp_path / "one" / "adapter" / "adapter.safetensors")
    b = load_file(tmp_path / "two" / "adapter" / "adapter.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    moved = max(t.abs().max().item() for k, t in a.items() if k.endswith(".B"))
    assert moved > 10 * TOLERANCE  # B left zero: the comparison is not trivially true
    for key in a:
        assert torch.allclose(a[key], b[key], atol=TOLERANCE, rtol=0), key
    assert one["final_eval"]["metrics"] == pytest.approx(two["final_eval"]["metrics"], abs=1e-3)
