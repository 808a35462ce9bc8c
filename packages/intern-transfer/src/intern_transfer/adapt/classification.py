"""Image classification: a linear classifier on the backbone's pooled features (GV-B classification).

Frozen (``freeze_backbone=True``): the end-to-end linear probe of the released GV-B config (BN in eval
mode); otherwise full fine-tuning. Batches: ``image`` (B x 3 x H x W, normalised by the data transform
unless ``normalize=True``) and ``label`` (B). Metrics get ``update(logits, label)`` with B x C logits,
the format of torchmetrics' multiclass metrics and of intern-bench's ``classification_metric`` and
``FPRAtRecall``.
"""

from __future__ import annotations

from typing import Any, Unpack

import torch.nn.functional as F
from torch import Tensor, nn

from intern_arch.heads import LinearClassifier
from intern_transfer.adapt.finetune import AdaptModule, AdaptSettings, MetricSpec


class ClassificationAdapter(AdaptModule):
    """Backbone + global pooling + ``nn.Linear``, trained with cross-entropy.

    Args:
        backbone: A model with the intern-arch backbone contract (its classifier is replaced).
        num_classes: Classes of the task.
        metrics: Evaluation metrics, updated with ``(logits, label)``; a single-tensor metric is logged
            as ``val/accuracy``.
        pool: timm global pooling type.
        label_smoothing: Cross-entropy label smoothing.
        **settings: Freezing, normalisation, optimiser and schedule (:class:`AdaptModule`).
    """

    backbone_path = "backbone"
    metric_name = "accuracy"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        metrics: MetricSpec | None = None,
        *,
        pool: str = "avg",
        label_smoothing: float = 0.0,
        **settings: Unpack[AdaptSettings],
    ) -> None:
        super().__init__(metrics, **settings)
        self.label_smoothing = label_smoothing
        self.model = LinearClassifier(backbone, num_classes, pool, freeze_backbone=self.freeze_backbone)
        self._setup_backbone()

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (B x C)."""
        return self.model(self.preprocess(images))

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self(batch["image"])
        return F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing), {}

    def predict_for_metrics(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        logits = self(batch["image"])
        return logits, batch["label"], F.cross_entropy(logits, batch["label"])
