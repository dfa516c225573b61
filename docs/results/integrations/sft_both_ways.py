"""SmolLM2-135M-Instruct (packaged) on ShareGPT pairs through TRL's SFTTrainer, both ways in.

    python docs/results/integrations/sft_both_ways.py --out docs/results/integrations

For each way (``native``: asymlora.inject + asymlora.integrations.adapter_only(SFTTrainer);
``peft``: asymlora.peft.b_only, a stock PeftModel): the validation loss on held-out ShareGPT pairs
before and after training, the training losses TRL logged, whether A stayed bit-identical, the
bytes of the saved folder and of one checkpoint, and the wall time. Writes ``sft_both_ways.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import torch


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def frozen_factors(model) -> dict[str, torch.Tensor]:
    import asymlora as al
    from peft.tuners.lora import LoraLayer

    if al.adapted_modules(model):
        return {n: m.A.clone() for n, m in al.adapted_modules(model).items()}
    return {n: m.lora_A["default"].weight.detach().clone() for n, m in model.base_model.model.named_modules()
            if isinstance(m, LoraLayer)}


def run_way(name: str, model, trainer_class, data, tokenizer, settings, work: Path) -> dict:
    import trl

    args = trl.SFTConfig(output_dir=str(work / name), report_to="none", use_cpu=True, disable_tqdm=True,
                         save_strategy="steps", logging_steps=1, **settings)
    trainer = trainer_class(model=model, args=args, train_dataset=data["train"], processing_class=tokenizer)
    frozen = frozen_factors(model)
    started = time.perf_counter()
    before = trainer.evaluate(data["validation"])["eval_loss"]
    trainer.train()
    after = trainer.evaluate(data["validation"])["eval_loss"]
    trainer.save_model(str(work / name / "final"))
    checkpoint = work / name / f"checkpoint-{settings['max_steps']}"
    now = frozen_factors(model)
    return {"validation_loss_before": before, "validation_loss_after": after,
            "train_losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
            "frozen_A_bit_identical": all(torch.equal(now[k], frozen[k]) for k in frozen),
            "saved_folder_bytes": folder_bytes(work / name / "final"),
            "checkpoint_bytes": folder_bytes(checkpoint), "wall_seconds": time.perf_counter() - started}


def main() -> None:
    import datasets
    import trl

    import asymlora as al
    from asymlora.integrations import adapter_only
    from asymlora.peft import b_only
    from asymlora.tasks.instructions import load_sharegpt

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="docs/results/integrations")
    parser.add_argument("--work", default="runs/integrations")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--validation", type=int, default=4, help="held-out pairs scored before and after")
    parser.add_argument("--max-length", type=int, default=64)
    options = parser.parse_args()
    torch.set_num_threads(2)
    splits = load_sharegpt()
    pick = lambda split, n: split.select(range(n))  # noqa: E731
    chosen = {"train": pick(splits["train"], 2 * options.steps),
              "validation": pick(splits["validation"], options.validation)}
    data = {k: datasets.Dataset.from_dict({"prompt": s["instruction"], "completion": s["output"]})
            for k, s in chosen.items()}
    settings = dict(max_steps=options.steps, per_device_train_batch_size=2, per_device_eval_batch_size=4,
                    learning_rate=1e-3, lr_scheduler_type="constant", max_length=options.max_length, seed=0,
                    data_seed=0, save_steps=options.steps, gradient_checkpointing=True)
    tokenizer = al.load_tokenizer("smollm2")
    base = al.load_for_causal_lm("smollm2")
    base_bytes = sum(t.numel() * t.element_size() for t in base.state_dict().values())
    targets = ["q_proj", "v_proj"]
    ways = {"native": (al.inject(copy.deepcopy(base), al.AdapterConfig(rank=8, seed=0, targets=targets)),
                       adapter_only(trl.SFTTrainer)),
            "peft": (b_only(base, rank=8, seed=0, target_modules=targets), trl.SFTTrainer)}
    work = Path(options.work)
    results = {name: run_way(name, model, trainer_class, data, tokenizer, settings, work)
               for name, (model, trainer_class) in ways.items()}
    record = {"command": "python docs/results/integrations/sft_both_ways.py --out docs/results/integrations",
              "model": "smollm2 (SmolLM2-135M-Instruct, packaged, fp32)", "targets": targets, "rank": 8,
              "data": {"train_pairs": len(data["train"]), "validation_pairs": len(data["validation"]),
                       "source": "ShareGPT first-turn pairs (asymlora.tasks.instructions.load_sharegpt)"},
              "settings": settings, "base_state_dict_bytes": base_bytes, "ways": results,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "versions": {m.__name__: m.__version__ for m in (torch, trl, __import__('transformers'),
                                                                __import__('peft'))}}
    Path(options.out).mkdir(parents=True, exist_ok=True)
    (Path(options.out) / "sft_both_ways.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: {m: v[m] for m in ("validation_loss_before", "validation_loss_after")}
                      for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
