"""asymlora inside other people's training loops.

* :class:`AdapterOnlyCheckpoints` / :func:`adapter_only`: a ``transformers.Trainer`` or TRL trainer
  on an injected model saves only the adapter folder at each checkpoint and in ``save_model``
  (:mod:`asymlora.integrations.adapter_checkpoints`).
* :func:`report_adapter_config` / :class:`AdapterConfigReporter`: the adapter's method, rank and
  frozen factor in the wandb / mlflow / tensorboard run the Trainer reports to
  (:mod:`asymlora.training.tracking`).

The PEFT-native way in (a stock ``PeftModel`` with asymlora's frozen A) is :mod:`asymlora.peft`.
docs/integrations.md shows each with TRL's ``SFTTrainer``.
"""

from asymlora.integrations.adapter_checkpoints import AdapterOnlyCheckpoints, adapter_only
from asymlora.training.tracking import AdapterConfigReporter, AdapterRecord, report_adapter_config

__all__ = ["AdapterOnlyCheckpoints", "adapter_only", "AdapterConfigReporter", "AdapterRecord",
           "report_adapter_config"]
