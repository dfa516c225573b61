"""Run ``asymlora.cli`` with a probe on ``Trainer.train``: after training, each process writes what
the launch did to the model and the optimiser to ``$FSDP_PROBE_DIR/rank<k>.json`` (used by
test_fsdp.py): accelerate's distributed type and the class wrapping the model, which parameters are
sharded DTensors, the shape each rank holds of every trained parameter, the frozen factors' types,
their gradients, and whether any frozen factor reached the optimiser."""

import json
import os
import sys
from pathlib import Path

import transformers

_original_train = transformers.Trainer.train


def _probed_train(self, *args, **kwargs):
    result = _original_train(self, *args, **kwargs)
    from torch.distributed.tensor import DTensor

    model = self.model
    frozen = {n: b for n, b in model.named_buffers() if n.endswith((".A",))}
    optimised = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
    state_tensors = {id(t) for state in self.optimizer.state.values() for t in state.values()}
    report = {
        "rank": int(os.environ.get("RANK", "0")),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "model_class": type(model).__name__,
        "distributed_type": str(getattr(self.accelerator.distributed_type, "value", self.accelerator.distributed_type)),
        "wrapper_class": type(self.model_wrapped).__name__,
        "trainable_local_shapes": {n: list(p.to_local().shape if isinstance(p, DTensor) else p.shape)
                                   for n, p in model.named_parameters() if p.requires_grad},
        "sharded_params": sorted(n for n, p in model.named_parameters() if isinstance(p, DTensor)),
        "unsharded_params": sorted(n for n, p in model.named_parameters() if not isinstance(p, DTensor)),
        "trainable_params": sorted(n for n, p in model.named_parameters() if p.requires_grad),
        "frozen_factors": sorted(frozen),
        "frozen_factor_types": sorted({type(b).__name__ for b in frozen.values()}),
        "frozen_factor_grads": sorted(n for n, b in frozen.items() if b.grad is not None),
        "frozen_factors_in_optimizer": sorted(n for n, b in frozen.items() if id(b) in optimised | state_tensors),
        "trainable_shard_shapes": {n: list(p.to_local().shape) for n, p in model.named_parameters()
                                   if p.requires_grad and isinstance(p, DTensor)},
    }
    folder = Path(os.environ["FSDP_PROBE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{report['rank']}.json").write_text(json.dumps(report, indent=2))
    return result


transformers.Trainer.train = _probed_train

if __name__ == "__main__":
    from asymlora.cli import main

    main(sys.argv[1:])
