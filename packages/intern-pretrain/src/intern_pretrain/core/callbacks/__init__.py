"""Callbacks of the pretraining stages: the loss guard (paper 5.2.2) and the in-training downstream probe."""

from intern_pretrain.core.callbacks.loss_guard import LossGuard
from intern_pretrain.core.callbacks.probe import DownstreamProbe

__all__ = ["DownstreamProbe", "LossGuard"]
