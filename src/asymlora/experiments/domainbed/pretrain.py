"""The foundation model of the embedded runs: a small ViT pretrained once on Fashion-MNIST.

No pretrained ViT installs here, so :func:`pretrain` trains one, seeded, on the 60,000 Fashion-MNIST
training images (10 clothing classes) and saves it as a plain transformers folder (``ViTModel``
weights in safetensors, ``config.json`` and a ``ViTImageProcessor``), so any image command takes it
with ``--model <folder>``. The classification head is *not* saved: fine-tuning on digits starts a
fresh head. ``pretrain.json`` records size, time and test accuracy (10,000 test images).

Architecture (:data:`ARCHITECTURE`): 28×28 inputs in RGB (grey replicated by the image family),
patch 7 (16 patches + [CLS]), hidden 96, 4 layers, 4 heads, MLP 192, no dropout. Image processor:
resize to 28×28 (bilinear), scale to [0, 1], normalise with mean 0.5 and std 0.5 per channel.
Training: AdamW (lr 1e-3, weight decay 0.05), batch 128, linear decay, ``epochs`` passes.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

ARCHITECTURE = dict(image_size=28, patch_size=7, num_channels=3, hidden_size=96, num_hidden_layers=4,
                    num_attention_heads=4, intermediate_size=192, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
PROCESSOR = dict(do_resize=True, size={"height": 28, "width": 28}, resample=2, do_rescale=True,
                 rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])


def pixel_values(processor, images: list, chunk: int = 1024) -> torch.Tensor:
    """The image processor applied to PIL ``images`` (converted to RGB as the image family does):
    float32 ``(N, 3, H, W)``."""
    from asymlora.tasks.families.image_classification import to_rgb

    parts = [processor(images=[to_rgb(im) for im in images[i:i + chunk]], return_tensors="pt")["pixel_values"]
             for i in range(0, len(images), chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, 3, 28, 28)


def _as_pixels(processor, arrays: np.ndarray) -> torch.Tensor:
    from PIL import Image

    return pixel_values(processor, [Image.fromarray(a, mode="L") for a in arrays])


@torch.no_grad()
def _accuracy(model, pixels: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = sum(int((model(pixel_values=pixels[i:i + batch]).logits.argmax(-1) == labels[i:i + batch]).sum())
                  for i in range(0, len(labels), batch))
    model.train()
    return correct / max(1, len(labels))


def pretrain(out: str | Path, epochs: float = 3.0, seed: int = 0, data_dir: str | None = None,
             batch_size: int = 128, lr: float = 1e-3, log=print) -> dict:
    """Pretrain the small ViT on Fashion-MNIST and save it to ``out`` (written under a temporary name,
    then renamed); returns the record also written to ``out/pretrain.json``."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from asymlora.atomic import atomic_write_text
    from asymlora.tasks.domainbed.idx import fashion_mnist

    if epochs <= 0 or batch_size < 1:
        raise ValueError(f"--epochs must be > 0 and --batch-size >= 1 (got {epochs}, {batch_size})")
    out = Path(out)
    started = time.perf_counter()
    train_x, train_y = fashion_mnist("train", data_dir)
    test_x, test_y = fashion_mnist("test", data_dir)
    processor = ViTImageProcessor(**PROCESSOR)
    train_px, test_px = _as_pixels(processor, train_x), _as_pixels(processor, test_x)
    train_t, test_t = torch.as_tensor(train_y), torch.as_tensor(test_y)

    torch.manual_seed(seed)
    config = ViTConfig(**ARCHITECTURE, num_labels=10)
    model = ViTForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps_per_epoch = math.ceil(len(train_t) / batch_size)
    total = max(1, int(round(epochs * steps_per_epoch)))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / total)
    generator = torch.Generator().manual_seed(seed)
    order, position, losses = torch.randperm(len(train_t), generator=generator), 0, []
    train_started = time.perf_counter()
    model.train()
    for step in range(total):
        if position + batch_size > len(order):
            order, position = torch.randperm(len(train_t), generator=generator), 0
        idx = order[position:position + batch_size]
        position += batch_size
        loss = torch.nn.functional.cross_entropy(model(pixel_values=train_px[idx]).logits, train_t[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0 or step + 1 == total:
            log(f"step {step + 1}/{total}  loss {np.mean(losses[-100:]):.4f}")
    train_seconds = time.perf_counter() - train_started
    test_accuracy = _accuracy(model, test_px, test_t)
    train_accuracy = _accuracy(model, train_px[:10000], train_t[:10000])

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.vit.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    backbone = sum(p.numel() for p in model.vit.parameters())
    record = {"data": "Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey)", "seed": seed, "epochs": epochs,
              "steps": total, "batch_size": batch_size, "lr": lr, "weight_decay": 0.05,
              "architecture": ARCHITECTURE, "processor": PROCESSOR,
              "backbone_parameters": int(backbone), "parameters_with_head": int(sum(p.numel() for p in model.parameters())),
              "train_seconds": train_seconds, "wall_seconds": time.perf_counter() - started,
              "threads": torch.get_num_threads(), "final_loss": float(np.mean(losses[-100:])),
              "test_accuracy": test_accuracy, "train_accuracy_first_10k": train_accuracy}
    atomic_write_text(tmp / "pretrain.json", json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return record
