"""FSDP2 ``fully_shard`` on the CPU with gloo: a tiny random Llama with B-only adapters, trained a
few steps; run under ``torch.distributed.run`` (world size N) or alone (world size 1, no FSDP).

Usage: ``python fsdp_fully_shard.py OUT_DIR``. Every rank takes rows ``rank::world`` of one seeded
global batch (8 × 16 tokens), so N ranks see exactly the global batch a single process sees.
Rank 0 writes ``OUT_DIR/trained.safetensors`` (the full trained tensors, gathered), every rank
``OUT_DIR/adapter_rank<k>`` (``save_adapter`` on the sharded model) and
``OUT_DIR/rank<k>.json``: which parameters are sharded DTensors, the frozen factors' types and
gradients, and whether a frozen factor reached the optimiser.
"""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

STEPS, BATCH, LENGTH = 4, 8, 16


def build_model():
    from transformers import LlamaForCausalLM

    from asymlora.adapters.config import AdapterConfig
    from asymlora.adapters.inject import inject
    from asymlora.models import tiny_config

    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config("llama", vocab_size=97))
    return inject(model, AdapterConfig(rank=4, alpha=8, dropout=0.0, train="B", init_B="zero",
                                       targets=["q_proj", "v_proj", "down_proj"]))


def main(out: Path) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(1)
    model = build_model()
    sharded = world > 1
    if sharded:
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo")
        mesh = init_device_mesh("cpu", (world,))
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    ids = torch.randint(3, 97, (BATCH, LENGTH), generator=torch.Generator().manual_seed(1))
    local = ids[rank::world]
    losses = []
    for _ in range(STEPS):
        loss = model(input_ids=local, labels=local).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))

    from torch.distributed.tensor import DTensor

    frozen = {n: b for n, b in model.named_buffers() if n.endswith(".A")}
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    in_optimizer |= {id(t) for s in optimizer.state.values() for t in s.values()}
    report = {
        "world_size": world, "losses": losses,
        "sharded_trainable": sorted(n for n, p in model.named_parameters()
                                    if p.requires_grad and isinstance(p, DTensor)),
        "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
        "local_shapes": {n: list((p.to_local() if isinstance(p, DTensor) else p).shape)
                         for n, p in model.named_parameters() if p.requires_grad},
        "frozen_factors": sorted(frozen),
        "frozen_factor_types": sorted({type(b).__name__ for b in frozen.values()}),
        "frozen_factor_shapes": {n: list(b.shape) for n, b in frozen.items()},
        "frozen_factor_grads": sorted(n for n, b in frozen.items() if b.grad is not None),
        "frozen_factors_in_optimizer": sorted(n for n, b in frozen.items() if id(b) in in_optimizer),
        "optimizer_state_count": len(optimizer.state),
    }
    full = {n: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
            for n, p in model.named_parameters() if p.requires_grad}
    out.mkdir(parents=True, exist_ok=True)
    report["save_adapter"] = _try_save_adapter(model, out / f"adapter_rank{rank}")
    (out / f"rank{rank}.json").write_text(json.dumps(report, indent=2))
    if rank == 0:
        save_file(full, str(out / "trained.safetensors"))
    if sharded:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def _try_save_adapter(model, folder: Path) -> str:
    """What ``save_adapter`` does with this (possibly sharded) model: "ok" and the B shapes it wrote,
    or the error's first line."""
    from safetensors.torch import load_file

    from asymlora.adapters.io import WEIGHTS_FILE, save_adapter

    try:
        save_adapter(model, str(folder))
    except Exception as error:  # noqa: BLE001 - recorded for the report, not handled
        return f"error: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    shapes = {k: list(v.shape) for k, v in load_file(folder / WEIGHTS_FILE).items()}
    return "ok " + json.dumps(shapes, sort_keys=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
