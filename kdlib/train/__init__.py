"""Training: ``fit`` / ``train_one_epoch`` / ``evaluate`` (trainer.py), optimisers and schedules
(optim.py), atomic resumable checkpoints (checkpoint.py), DDP under torchrun (ddp.py)."""
from kdlib.train.trainer import (NonFiniteLossError, TrainConfig, evaluate, fit,
                                 train_one_epoch)

__all__ = ["NonFiniteLossError", "TrainConfig", "evaluate", "fit", "train_one_epoch"]
