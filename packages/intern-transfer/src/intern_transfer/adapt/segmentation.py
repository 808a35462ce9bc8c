"""Semantic segmentation with DeepLabv3 on the backbone's C4 + C5 (GV-B VOC2012 segmentation).

Batches: ``image`` (B x 3 x H x W, normalised by the data transform unless ``normalize=True``) and
``mask`` (B x H x W int64, ``ignore_index`` = 255 for unlabelled pixels). Metrics get
``update(preds, mask)`` with ``preds`` the arg-max class map (B x H x W), the format of intern-bench's
``SegmentationMIoU`` and torchmetrics' ``MulticlassJaccardIndex``. Train with batches of 2 or more per
device (the ASPP pooling branch has a BatchNorm over 1 x 1 maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from torch import Tensor, nn

from intern_arch.heads import DeepLabV3, segmentation_loss
from intern_transfer.adapt.finetune import AdaptModule, AdaptSettings, MetricSpec


class SegmentationAdapter(AdaptModule):
    """DeepLabv3 (output stride 16) trained with pixel-wise cross-entropy over labelled pixels.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Segmentation classes (background included).
        metrics: Evaluation metrics, updated with ``(preds, mask)``; a single-tensor metric is logged
            as ``val/miou``.
        ignore_index: Mask label of pixels that take no loss.
        fuse_channels: Channels after the 1 x 1 reduction of C4 + C5.
        atrous_rates: ASPP dilation rates.
        **settings: Freezing, normalisation, optimiser and schedule (:class:`AdaptModule`).
    """

    backbone_path = "body.backbone"
    metric_name = "miou"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        metrics: MetricSpec | None = None,
        *,
        ignore_index: int = 255,
        fuse_channels: int = 512,
        atrous_rates: Sequence[int] = (6, 12, 18),
        **settings: Unpack[AdaptSettings],
    ) -> None:
        super().__init__(metrics, **settings)
        self.ignore_index = ignore_index
        self.model = DeepLabV3(
            backbone, num_classes, fuse_channels, tuple(atrous_rates), freeze_backbone=self.freeze_backbone
        )
        self._setup_backbone()

    def forward(self, images: Tensor) -> Tensor:
        """Per-pixel class logits (B x C x H x W) at the input's size."""
        return self.model(self.preprocess(images))

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return segmentation_loss(self(batch["image"]), batch["mask"], self.ignore_index), {}

    def predict_for_metrics(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        logits = self(batch["image"])
        loss = segmentation_loss(logits, batch["mask"], self.ignore_index)
        return logits.argmax(1), batch["mask"], loss
