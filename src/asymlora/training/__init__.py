"""Training: one fine-tuning run on the Hugging Face Trainer (:func:`train`) and its callbacks."""

from asymlora.training.callbacks import AdaLoRACallback, BestEvalCallback, ThroughputCallback
from asymlora.training.config import TrainConfig, resolve
from asymlora.training.runner import save_trained, train

__all__ = ["AdaLoRACallback", "BestEvalCallback", "ThroughputCallback", "TrainConfig", "resolve",
           "save_trained", "train"]
