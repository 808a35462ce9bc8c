"""Lightning callbacks of the pretraining stages."""

from intern_pretrain.callbacks.loss_guard import LossGuard

__all__ = ["LossGuard"]
