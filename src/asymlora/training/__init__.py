"""Training: one fine-tuning run on the Hugging Face Trainer (:func:`train`) and its callbacks."""

from asymlora.training.callbacks import AdaLoRACallback, BestEvalCallback, ThroughputCallback
from asymlora.training.config import TrainConfig, resolve
from asymlora.training.record import RunRecord
from asymlora.run_folder import save_trained
from asymlora.training.runner import train, train_run

__all__ = ["AdaLoRACallback", "BestEvalCallback", "RunRecord", "ThroughputCallback", "TrainConfig", "resolve",
           "save_trained", "train", "train_run"]
