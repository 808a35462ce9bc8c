"""Losses of the upstream stages, one per file."""

from intern_pretrain.losses.clip import ClipLoss, contrastive_logits
from intern_pretrain.losses.group import GroupSupervisionLoss
from intern_pretrain.losses.mlm import MLMLoss, mlm_loss
from intern_pretrain.losses.similar_text import SimilarTextLoss, TextFeatureQueue
from intern_pretrain.losses.simsiam import SimSiamHead, simsiam_loss
from intern_pretrain.losses.temperature import LogitScale

__all__ = [
    "ClipLoss",
    "GroupSupervisionLoss",
    "LogitScale",
    "MLMLoss",
    "SimSiamHead",
    "SimilarTextLoss",
    "TextFeatureQueue",
    "contrastive_logits",
    "mlm_loss",
    "simsiam_loss",
]
