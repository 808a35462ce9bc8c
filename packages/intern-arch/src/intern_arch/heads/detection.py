"""Faster R-CNN (torchvision) on an intern-arch backbone through the FPN neck (P2-P6).

Used by the detection experts (Up-E D) and the GV-B detection and pedestrian tasks. Images go in as
float tensors in [0, 1]; torchvision's transform resizes them and normalises with the backbone's
``pretrained_cfg`` mean and std.
"""

from collections.abc import Sequence
from typing import Any

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from ..necks import FPN

# One anchor size per level P2..P6: eight times the level's stride (the FPN paper's 32..512 px).
FPN_ANCHOR_SIZES = (32, 64, 128, 256, 512)


def build_faster_rcnn(
    backbone: nn.Module,
    num_classes: int,
    min_size: int = 800,
    max_size: int = 1333,
    anchor_sizes: Sequence[float] = FPN_ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    fpn_channels: int = 256,
    freeze_backbone: bool = False,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN with an FPN over the backbone's C2..C5.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Classes including the background (label 0).
        min_size: Shorter image side after torchvision's resize.
        max_size: Longest image side after the resize.
        anchor_sizes: Anchor size in pixels on each of P2..P6.
        aspect_ratios: Anchor aspect ratios (height / width), the same on every level.
        fpn_channels: Channels of the FPN levels.
        freeze_backbone: Train only the FPN, RPN and box head.
        **kwargs: Further ``FasterRCNN`` arguments (e.g. ``box_detections_per_img``).

    Returns:
        The model: in train mode ``model(images, targets)`` gives the loss dict, in eval mode
        ``model(images)`` gives one dict of ``boxes``, ``scores`` and ``labels`` per image.
    """
    neck = FPN(backbone, fpn_channels, freeze_backbone=freeze_backbone)
    if len(anchor_sizes) != len(neck.names):
        raise ValueError(f"need one anchor size per level {neck.names}, got {list(anchor_sizes)}")
    sizes = tuple((size,) for size in anchor_sizes)
    anchors = AnchorGenerator(sizes, (tuple(aspect_ratios),) * len(sizes))
    roi_pool = MultiScaleRoIAlign(featmap_names=["P2", "P3", "P4", "P5"], output_size=7, sampling_ratio=2)
    return FasterRCNN(
        neck,
        num_classes,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(backbone.pretrained_cfg["mean"]),
        image_std=list(backbone.pretrained_cfg["std"]),
        rpn_anchor_generator=anchors,
        box_roi_pool=roi_pool,
        **kwargs,
    )
