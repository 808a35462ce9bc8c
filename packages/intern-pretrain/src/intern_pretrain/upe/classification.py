"""Up-E (C), the classification expert (paper 6.2): one backbone pass, one linear head per source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from intern_arch.heads import LinearHead
from intern_pretrain.upe.base import ExpertModule
from intern_pretrain.upe.heads import SourceHeads

__all__ = ["ClassificationExpert"]


class ClassificationExpert(ExpertModule):
    """The backbone's pooled features of every sub-batch in one pass (so BatchNorm sees the whole
    batch, as synchronised BatchNorm does across ranks), then each source's linear head and
    cross-entropy in its label space. Validation: top-1 per source (``val/top1/<source>``).

    Arguments as :class:`~intern_pretrain.upe.base.ExpertModule`.
    """

    metric_name = "top1"

    def __init__(self, backbone: nn.Module, **kwargs: Any) -> None:
        super().__init__(backbone, **kwargs)
        backbone.reset_classifier(0)
        features = int(backbone.num_features)
        self.heads = SourceHeads(self.labels, lambda classes: LinearHead(features, classes))
        self.metrics = nn.ModuleDict(
            {s: MulticlassAccuracy(len(self.labels.index_maps[s]), average="micro") for s in self.sources}
        )

    def head_modules(self) -> nn.Module:
        return self.heads

    def features(self, images: Tensor) -> Tensor:
        return self.backbone.forward_head(self.backbone.forward_features(images), pre_logits=True)

    def source_losses(self, batch: Mapping[str, Any]) -> dict[str, tuple[Tensor, int]]:
        names = list(batch)
        features = self.features(torch.cat([batch[s]["image"] for s in names])).split(
            [len(batch[s]["label"]) for s in names]
        )
        losses = {}
        for source, feats in zip(names, features, strict=True):
            logits = self.heads.source_logits(source, self.heads.head(source)(feats))
            target = self.heads.targets(source, batch[source]["label"])
            losses[source] = (F.cross_entropy(logits, target), len(target))
        return losses

    def update_metric(self, source: str, batch: Mapping[str, Any]) -> None:
        logits = self.heads.head(source)(self.features(batch["image"]))
        self.metrics[source].update(self.heads.own_logits(source, logits), batch["label"])
