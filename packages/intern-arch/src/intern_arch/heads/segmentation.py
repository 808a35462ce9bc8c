"""DeepLabv3 at output stride 16 on any intern-arch backbone, and its loss.

DeepLabv3 gets stride-16 features by dilating the backbone's last stage. That works for a ResNet but
not for MetaNet, whose last stages are attention blocks with no dilation to set. Instead, C5 (stride
32) is upsampled bilinearly onto C4's stride-16 grid and concatenated with C4: the ASPP head sees the
deepest features at output stride 16 for every registered backbone, unchanged, with C4 adding the
spatial detail that dilation would have kept. The ASPP rates are DeepLabv3's for output stride 16
(6, 12, 18 for 513 px crops; torchvision's default 12, 24, 36 is for stride 8), scaled down for smaller
inputs by :func:`~intern_arch.heads.geometry.scaled_atrous_rates`. Inputs are normalised images.
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import DeepLabHead
from torchvision.ops import Conv2dNormActivation

from ..necks import PyramidAdapter
from .geometry import DEEPLAB_ATROUS_RATES


class DeepLabV3(nn.Module):
    """C4 + upsampled C5, a 1x1 conv-BN-ReLU reduction, torchvision's ``DeepLabHead`` (ASPP).

    The ASPP image-pooling branch has a BatchNorm over 1x1 maps: train with batches of 2 or more.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Segmentation classes.
        fuse_channels: Channels after the 1x1 reduction of the concatenated C4 and C5.
        atrous_rates: ASPP dilation rates (``scaled_atrous_rates(input_size)`` fits them to an input size).
        freeze_backbone: Train only the fusion and the head.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        fuse_channels: int = 512,
        atrous_rates: Sequence[int] = DEEPLAB_ATROUS_RATES,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.body = PyramidAdapter(backbone, ("C4", "C5"), freeze_backbone)
        self.fuse = Conv2dNormActivation(sum(self.body.out_channels), fuse_channels, kernel_size=1)
        self.head = DeepLabHead(fuse_channels, num_classes, atrous_rates)

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel class logits (N, num_classes, H, W) at the input's size."""
        return _decode(self.fuse, self.head, list(self.body(x).values()), x.shape[-2:])


class ASPPHead(nn.Module):
    """DeepLabV3's decoder alone (the 1x1 fusion of C4 + upsampled C5 and the ASPP head), on features
    computed elsewhere: the per-source heads of a segmentation expert share one backbone pass. A
    hand-over's ``heads/<source>`` part of kind ``aspp_head``.

    Args:
        in_channels: Channels of C4 and C5.
        num_classes: Segmentation classes.
        fuse_channels, atrous_rates: As for :class:`DeepLabV3`.
    """

    handover_kind: ClassVar[str] = "aspp_head"

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        fuse_channels: int = 512,
        atrous_rates: Sequence[int] = DEEPLAB_ATROUS_RATES,
    ) -> None:
        super().__init__()
        self.fuse = Conv2dNormActivation(sum(in_channels), fuse_channels, kernel_size=1)
        self.head = DeepLabHead(fuse_channels, num_classes, atrous_rates)
        self.args = {
            "in_channels": [int(c) for c in in_channels],
            "num_classes": int(num_classes),
            "fuse_channels": int(fuse_channels),
            "atrous_rates": [int(r) for r in atrous_rates],
        }

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """Per-pixel logits (N, num_classes, *size) from ``features`` = (C4, C5)."""
        return _decode(self.fuse, self.head, features, size)


def _decode(fuse: nn.Module, head: nn.Module, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
    """C5 upsampled onto C4's grid, concatenated, fused, ASPP, then upsampled to ``size``."""
    c4, c5 = features
    c5 = F.interpolate(c5, size=c4.shape[-2:], mode="bilinear", align_corners=False)
    logits = head(fuse(torch.cat([c4, c5], dim=1)))
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def segmentation_loss(logits: Tensor, mask: Tensor, ignore_index: int = 255) -> Tensor:
    """Pixel-wise cross-entropy over the labelled pixels.

    Args:
        logits: (N, C, H, W) class logits.
        mask: (N, H, W) int64 labels; ``ignore_index`` marks unlabelled pixels.
        ignore_index: Label of pixels that take no loss.

    Returns:
        The mean loss over labelled pixels; zero when none is labelled (where ``F.cross_entropy``
        would give NaN), without a device sync.
    """
    total = F.cross_entropy(logits, mask, ignore_index=ignore_index, reduction="sum")
    return total / (mask != ignore_index).sum().clamp_min(1)
