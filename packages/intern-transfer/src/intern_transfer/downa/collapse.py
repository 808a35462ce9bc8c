"""Sample-based contrastive learning beside the task loss, against supervision collapse (paper 8.2).

A training batch ``x`` (already augmented by the data transform) is the query view ``x_q``; a second
augmentation of it is the key view ``x_k``. The online network (the adapter's own backbone and a new
projection head) embeds the queries, a momentum copy of both embeds the keys, and InfoNCE against a
queue of past keys is added to the task loss with weight ``weight``. The instance is, per task type:

==============  =========================================  ===========================================
task            instance                                    network after the backbone
==============  =========================================  ===========================================
classification  the image                                   pooled features, a 2-layer MLP (MoCo v2)
detection       each ground-truth box (RoIAlign on the FPN)  the detector's FPN, one linear layer
segmentation    the pixels of one class in one image (C3)   two 1x1 convolutions with ReLU
==============  =========================================  ===========================================

Dense tasks' key views change colours only, so boxes and masks hold for both views; classification's
also crop and flip (MoCo v2's views). The weight is our choice (the paper gives none): 0.1 keeps the
term an order of magnitude below the task loss at the start (InfoNCE starts near ``log(queue)``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from intern_transfer.adapt import AdaptModule
from intern_transfer.downa.contrastive import (
    ImageProjector,
    MomentumEncoder,
    PixelProjector,
    RoIProjector,
    SampleContrast,
    class_pixel_instances,
)

__all__ = ["ContrastSettings", "SampleContrastTerm", "attach_contrast"]

SEGMENTATION_LEVEL = "C3"
"""The pyramid level whose pixels segmentation's instances pool (stride 8: 8 x 8 at 64 px)."""


@dataclass(frozen=True)
class ContrastSettings:
    """The term's weight, embedding width, queue length, InfoNCE temperature and momentum decay."""

    weight: float = 0.1
    dim: int = 128
    queue_size: int = 1024
    temperature: float = 0.2
    momentum: float = 0.99


def _key_view(task_type: str, size: int) -> v2.Transform:
    photometric = [v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(0.2)]
    if task_type != "classification":
        return v2.Compose(photometric)
    crop = [v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    return v2.Compose(crop + photometric)


class _Online(nn.Module):
    """The online network's parts, grouped so the momentum copy mirrors them (owns nothing itself)."""

    def __init__(self, encoder: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector


class SampleContrastTerm(nn.Module):
    """The weighted InfoNCE term of one adapter; :func:`attach_contrast` builds and installs it."""

    def __init__(
        self, task_type: str, encoder: nn.Module, projector: nn.Module, size: int, settings: ContrastSettings
    ) -> None:
        super().__init__()
        self.task_type = task_type
        self.weight = settings.weight
        self.projector = projector
        self.momentum = MomentumEncoder(_Online(encoder, projector), settings.momentum)
        self.contrast = SampleContrast(settings.dim, settings.queue_size, settings.temperature)
        self.key_view = _key_view(task_type, size)

    def _views(self, images: Tensor | list[Tensor]) -> list[Tensor]:
        return [self.key_view(image) for image in images]

    def _embed(self, adapter: AdaptModule, online: nn.Module, batch: dict[str, Any], images: Any) -> Tensor:
        """The instances of ``images`` through ``online`` (the adapter's or the momentum copy's parts)."""
        if self.task_type == "classification":
            backbone = online.encoder
            pooled = backbone.forward_head(backbone.forward_features(adapter.preprocess(images)), True)
            return online.projector(pooled)
        if self.task_type == "segmentation":
            level = online.encoder.forward_pyramid(adapter.preprocess(images))[SEGMENTATION_LEVEL]
            embeddings = online.projector(level)
            return class_pixel_instances(embeddings, batch["mask"])[0]
        targets = [
            {"boxes": t["boxes"].float().reshape(-1, 4), "labels": t["labels"]} for t in batch["targets"]
        ]
        image_list, resized = adapter.model.transform(list(images), targets)
        features = online.encoder(image_list.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        boxes = [t["boxes"] for t in resized]
        return online.projector(features, boxes, image_list.image_sizes)

    def forward(self, adapter: AdaptModule, batch: dict[str, Any]) -> Tensor:
        """``weight`` x InfoNCE of the batch's instances (0 when the batch has none)."""
        online = _Online(self.online_encoder(adapter), self.projector)
        queries = self._embed(adapter, online, batch, batch["image"])
        keys_in = self._views(batch["image"])
        if isinstance(batch["image"], Tensor):
            keys_in = torch.stack(keys_in)
        with torch.no_grad():
            keys = self._embed(adapter, self.momentum.module, batch, keys_in)
        if len(queries) == 0:
            return queries.sum() * 0.0
        return self.weight * self.contrast.loss(queries, keys)

    def online_encoder(self, adapter: AdaptModule) -> nn.Module:
        """The online encoder: the backbone (classification, segmentation) or the detector's backbone
        with its FPN (detection)."""
        return adapter.model.backbone if self.task_type == "detection" else adapter.backbone

    def update(self, adapter: AdaptModule) -> None:
        """The momentum step after an optimiser step."""
        self.momentum.update(_Online(self.online_encoder(adapter), self.projector))


def attach_contrast(adapter: AdaptModule, task_type: str, size: int, settings: ContrastSettings) -> None:
    """Give ``adapter`` the sample-based contrastive term of its task type (trained with it from then on)."""
    if task_type == "classification":
        projector: nn.Module = ImageProjector(adapter.backbone.num_features, settings.dim)
        encoder = adapter.backbone
    elif task_type == "segmentation":
        channels = {info["name"]: info["num_chs"] for info in adapter.backbone.feature_info}
        projector = PixelProjector(channels[SEGMENTATION_LEVEL], settings.dim)
        encoder = adapter.backbone
    elif task_type == "detection":
        encoder = adapter.model.backbone
        pool = adapter.model.roi_heads.box_roi_pool  # the levels and RoI size the detector's box head reads
        projector = RoIProjector(
            encoder.out_channels, pool.output_size[0], settings.dim, pool.featmap_names, pool.sampling_ratio
        )
    else:
        raise ValueError(f"no sample-based contrastive term for {task_type!r} tasks")
    adapter.auxiliary = SampleContrastTerm(task_type, encoder, projector, size, settings)
