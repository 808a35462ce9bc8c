"""Up-E (S), the segmentation expert (paper 6.4): one backbone pass, one DeepLabv3 head per source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassJaccardIndex

from intern_arch.heads import ASPPHead, segmentation_loss
from intern_arch.heads.geometry import scaled_atrous_rates
from intern_arch.necks import PyramidAdapter
from intern_data.schema import IGNORE_INDEX
from intern_pretrain.upe.base import ExpertModule
from intern_pretrain.upe.heads import SourceHeads

__all__ = ["SegmentationExpert"]


class SegmentationExpert(ExpertModule):
    """C4 and C5 of every sub-batch in one backbone pass, then each source's DeepLabv3 decoder
    (:class:`~intern_arch.heads.ASPPHead`, output stride 16) and pixel-wise cross-entropy over its
    labelled pixels. Validation: mIoU per source in its own classes (``val/miou/<source>``).

    Args:
        img_size: Training image side; ASPP rates are DeepLabv3's scaled to it unless given.
        fuse_channels: Channels after the 1x1 fusion of C4 and C5 (paper's DeepLabv3: 256 in ASPP).
        atrous_rates: ASPP rates (default: ``scaled_atrous_rates(img_size)``).
        **kwargs: :class:`~intern_pretrain.upe.base.ExpertModule`'s.
    """

    metric_name = "miou"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        img_size: int,
        fuse_channels: int = 256,
        atrous_rates: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, **kwargs)
        self.body = PyramidAdapter(backbone, ("C4", "C5"))
        rates = tuple(atrous_rates) if atrous_rates is not None else scaled_atrous_rates(img_size)
        channels = self.body.out_channels
        self.heads = SourceHeads(
            self.labels, lambda classes: ASPPHead(channels, classes, fuse_channels, rates)
        )
        self.metrics = nn.ModuleDict(
            {
                s: MulticlassJaccardIndex(len(self.labels.index_maps[s]), ignore_index=IGNORE_INDEX)
                for s in self.sources
            }
        )

    def head_modules(self) -> nn.Module:
        return self.heads

    def logits(self, source: str, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        return self.heads.head(source)(features, size)

    def source_losses(self, batch: Mapping[str, Any]) -> dict[str, tuple[Tensor, int]]:
        names = list(batch)
        images = torch.cat([batch[s]["image"] for s in names])
        sizes = [len(batch[s]["image"]) for s in names]
        pyramids = [level.split(sizes) for level in self.body(images).values()]
        losses = {}
        for i, source in enumerate(names):
            logits = self.logits(source, [level[i] for level in pyramids], images.shape[-2:])
            target = self.heads.targets(source, batch[source]["mask"])
            losses[source] = (segmentation_loss(self.heads.source_logits(source, logits), target), sizes[i])
        return losses

    def update_metric(self, source: str, batch: Mapping[str, Any]) -> None:
        images = batch["image"]
        logits = self.logits(source, list(self.body(images).values()), images.shape[-2:])
        self.metrics[source].update(self.heads.own_logits(source, logits).argmax(1), batch["mask"])
