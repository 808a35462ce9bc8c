"""A RetinaFace-style face detector: torchvision's RetinaNet (focal loss) over the FPN neck (P2-P6).

Anchors follow RetinaFace (Deng et al., 2019): square anchors from 16 to 406 px on P2..P6, three
scales per level, so faces down to about 10 px are matched on the stride-4 level (inputs under 256 px
scale them down, :mod:`intern_arch.heads.geometry`). Used by the GV-B
face task (WIDER FACE). Images go in as float tensors in [0, 1], normalised inside with the backbone's
``pretrained_cfg`` mean and std.
"""

from collections.abc import Sequence
from typing import Any

from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator

from ..necks import FPN
from .geometry import FACE_ANCHOR_SIZES, scaled_anchor_sizes

FACE_ANCHOR_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))


def build_face_detector(
    backbone: nn.Module,
    num_classes: int = 2,
    min_size: int = 840,
    max_size: int = 840,
    anchor_sizes: Sequence[float] | None = None,
    anchor_scales: Sequence[float] = FACE_ANCHOR_SCALES,
    aspect_ratios: Sequence[float] = (1.0,),
    fpn_channels: int = 256,
    freeze_backbone: bool = False,
    **kwargs: Any,
) -> RetinaNet:
    """RetinaNet with an FPN over the backbone's C2..C5 and anchors for small faces.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Classes including torchvision's background label 0; faces are label 1.
        min_size: Shorter image side after torchvision's resize (RetinaFace trains on 840 px crops).
        max_size: Longest image side after the resize.
        anchor_sizes: Base anchor size in pixels on each of P2..P6 (default: RetinaFace's 16..256
            scaled to ``min_size``, :func:`~intern_arch.heads.geometry.scaled_anchor_sizes`).
        anchor_scales: Multipliers of the base size; every level gets each of them.
        aspect_ratios: Anchor aspect ratios (height / width), the same on every level.
        fpn_channels: Channels of the FPN levels.
        freeze_backbone: Train only the FPN and the RetinaNet head.
        **kwargs: Further ``RetinaNet`` arguments (e.g. ``score_thresh``, ``detections_per_img``).

    Returns:
        The model: in train mode ``model(images, targets)`` gives the ``classification`` (focal) and
        ``bbox_regression`` losses, in eval mode ``model(images)`` one detection dict per image.
    """
    neck = FPN(backbone, fpn_channels, freeze_backbone=freeze_backbone)
    if anchor_sizes is None:
        anchor_sizes = scaled_anchor_sizes(min_size, FACE_ANCHOR_SIZES)
    if len(anchor_sizes) != len(neck.names):
        raise ValueError(f"need one anchor size per level {neck.names}, got {list(anchor_sizes)}")
    sizes = tuple(tuple(size * scale for scale in anchor_scales) for size in anchor_sizes)
    anchors = AnchorGenerator(sizes, (tuple(aspect_ratios),) * len(sizes))
    return RetinaNet(
        neck,
        num_classes,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(backbone.pretrained_cfg["mean"]),
        image_std=list(backbone.pretrained_cfg["std"]),
        anchor_generator=anchors,
        **kwargs,
    )
