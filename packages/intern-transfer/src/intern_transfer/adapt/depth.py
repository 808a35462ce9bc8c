"""Monocular depth: the FPN-like depth decoder over C2..C5 with BTS's silog loss (GV-B KITTI, NYUv2).

Batches: ``image`` (B x 3 x H x W, normalised by the data transform unless ``normalize=True``) and
``depth`` (B x H x W metres, 0 = invalid). Metrics get ``update(pred, depth)`` with the predicted depth
in metres at the ground truth's size (B x H x W), the format of intern-bench's ``DepthRMSE`` and
``DepthMetrics`` (which apply the BTS clamping, valid range and crops themselves). The default
optimiser is BTS's AdamW (lr 1e-4, weight decay 1e-2).
"""

from __future__ import annotations

from typing import Any, Unpack

import torch.nn.functional as F
from torch import Tensor, nn

from intern_arch.heads import DepthModel, silog_loss
from intern_transfer.adapt.finetune import AdaptModule, AdaptSettings, MetricSpec

DEPTH_DEFAULTS: AdaptSettings = {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 1e-2}


class DepthAdapter(AdaptModule):
    """``DepthModel`` (depth = ``max_depth * sigmoid(.)``) trained with the scale-invariant log loss.

    Args:
        backbone: A model with the intern-arch backbone contract.
        max_depth: Largest predictable depth in metres (80 for KITTI, 10 for NYUv2).
        metrics: Evaluation metrics, updated with ``(pred, depth)``; a single-tensor metric is logged
            as ``val/rmse``.
        decoder_channels: Channels of the decoder.
        variance_focus: BTS's lambda in the silog loss.
        **settings: Freezing, normalisation, optimiser and schedule (:class:`AdaptModule`); the
            optimiser defaults to :data:`DEPTH_DEFAULTS`.
    """

    backbone_path = "body.backbone"
    metric_name = "rmse"

    def __init__(
        self,
        backbone: nn.Module,
        max_depth: float,
        metrics: MetricSpec | None = None,
        *,
        decoder_channels: int = 128,
        variance_focus: float = 0.85,
        **settings: Unpack[AdaptSettings],
    ) -> None:
        super().__init__(metrics, **{**DEPTH_DEFAULTS, **settings})
        self.variance_focus = variance_focus
        self.model = DepthModel(backbone, max_depth, decoder_channels, freeze_backbone=self.freeze_backbone)
        self._setup_backbone()

    def forward(self, images: Tensor) -> Tensor:
        """Depth in metres (B x H x W) at the input's size."""
        return self.model(self.preprocess(images))

    def _predict(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """Prediction at the ground truth's size (bilinear if they differ), ground truth, silog loss."""
        pred, target = self(batch["image"]), batch["depth"]
        if pred.shape[-2:] != target.shape[-2:]:
            pred = F.interpolate(pred[:, None], size=target.shape[-2:], mode="bilinear")[:, 0]
        return pred, target, silog_loss(pred, target, variance_focus=self.variance_focus)

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return self._predict(batch)[2], {}

    def predict_for_metrics(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        return self._predict(batch)
