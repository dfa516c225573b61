"""Size of an adapter-only training checkpoint (what --resume needs), measured and predicted.

Measured: `asymlora train` on the packaged MiniLM (tweets, B-only and LoRA, r=8, query/value,
2 steps, --keep-checkpoints) and the files of checkpoint-2. Predicted: 4 bytes x trained numbers x 3
(the tensor and AdamW's two moments) + 4 bytes per trained tensor (AdamW's step) + the JSON and RNG
files, checked against the MiniLM measurement, then applied to the Llama-2-7B layout (asymlora's
`llama-7b`, 32 layers, 4096 wide) with B-only r=32 / r=64 and LoRA r=32 on q_proj,k_proj (the
paper's instruction-tuning setting). A full-model Trainer checkpoint of the same runs would hold the
whole model: 87 MB for MiniLM in fp32 (the size of its weights), about 27 GB for Llama-2-7B in fp32.

    python docs/results/checkpoint_size/measure.py   # writes checkpoint_size.json beside this file
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measured(method: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "asymlora.cli", "train", "--task", "tweets", "--model", "minilm",
                        "--method", method, "--rank", "8", "--max-steps", "2", "--eval-steps", "2",
                        "--train-limit", "64", "--eval-limit", "32", "--max-length", "32", "--dropout", "0.05",
                        "--keep-checkpoints", "--out", str(out)], check=True, capture_output=True,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
        folder = out / "checkpoints" / "checkpoint-2"
        files = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
        record = json.loads((out / "metrics.json").read_text())
        return {"files": files, "total_bytes": sum(files.values()), "trainable_params": record["trainable_params"],
                "trained_tensors": None}


def predicted_bytes(trainable: int, tensors: int, fixed: int) -> int:
    return 4 * trainable * 3 + 4 * tensors + fixed


def main() -> None:
    from asymlora.models import layout_config

    rows = {}
    for method, tensors in (("b_only", 6 * 2 + 2), ("lora", 6 * 4 + 2)):
        m = measured(method)
        m["trained_tensors"] = tensors
        fixed = m["total_bytes"] - predicted_bytes(m["trainable_params"], tensors, 0)
        m["fixed_bytes"] = fixed  # JSON, RNG states, trainer state: independent of the model's size
        rows[f"minilm_{method}_r8"] = m
    fixed = max(r["fixed_bytes"] for r in rows.values())
    config = layout_config("llama-7b")
    d, layers = config.hidden_size, config.num_hidden_layers
    kv = d * config.num_key_value_heads // config.num_attention_heads
    llama = {}
    for name, rank, per_module in (("b_only_r32", 32, lambda r: (d + kv) * r),
                                   ("b_only_r64", 64, lambda r: (d + kv) * r),
                                   ("lora_r32", 32, lambda r: (d + kv) * r + 2 * d * r)):
        trainable = layers * per_module(rank)
        tensors = layers * (2 if name.startswith("b_only") else 4)
        llama[name] = {"trainable_params": trainable, "predicted_bytes": predicted_bytes(trainable, tensors, fixed)}
    document = {"minilm": rows, "llama_2_7b_q_k": llama,
                "full_model_checkpoint_bytes": {"minilm_fp32": 22_713_216 * 4, "llama_2_7b_fp32": 6_738_415_616 * 4},
                "command": "python docs/results/checkpoint_size/measure.py"}
    (HERE / "checkpoint_size.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
