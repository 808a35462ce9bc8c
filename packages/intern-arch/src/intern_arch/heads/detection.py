"""Faster R-CNN (torchvision) on an intern-arch backbone through the FPN neck (P2-P6).

Used by the detection experts (Up-E D) and the GV-B detection and pedestrian tasks. Images go in as
float tensors in [0, 1]; torchvision's transform resizes them and normalises with the backbone's
``pretrained_cfg`` mean and std.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

from ..necks import FPN
from .geometry import FPN_ANCHOR_SIZES, scaled_anchor_sizes


class BoxHead(FastRCNNConvFCHead):
    """Faster R-CNN v2's box head: ``num_convs`` x (3x3 conv, BN, ReLU) on the RoIAlign output,
    flattened, then FC + ReLU. Up-A-L trains one by local BYOL; a hand-over's ``heads/box`` part is one.

    Args:
        in_channels: Channels of the pooled features (the FPN's).
        resolution: Side of the pooled features (RoIAlign's output size).
        conv_dim: Channels of each conv.
        num_convs: Number of convs.
        fc_dim: Output features.
    """

    handover_kind: ClassVar[str] = "box_head"

    def __init__(
        self,
        in_channels: int = 256,
        resolution: int = 7,
        conv_dim: int = 256,
        num_convs: int = 4,
        fc_dim: int = 1024,
    ) -> None:
        super().__init__(
            (in_channels, resolution, resolution), [conv_dim] * num_convs, [fc_dim], norm_layer=nn.BatchNorm2d
        )
        self.args = {
            "in_channels": in_channels,
            "resolution": resolution,
            "conv_dim": conv_dim,
            "num_convs": num_convs,
            "fc_dim": fc_dim,
        }
        self.out_features = fc_dim


def build_faster_rcnn(
    backbone: nn.Module,
    num_classes: int,
    min_size: int = 800,
    max_size: int = 1333,
    anchor_sizes: Sequence[float] | None = None,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    fpn_channels: int = 256,
    freeze_backbone: bool = False,
    neck: FPN | None = None,
    box_head: BoxHead | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN with an FPN over the backbone's C2..C5, optionally started from a hand-over's neck
    and box head (``load_handover(folder).neck`` / ``.heads["box"]``): RPN and box predictor start fresh.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Classes including the background (label 0).
        min_size: Shorter image side after torchvision's resize.
        max_size: Longest image side after the resize.
        anchor_sizes: Anchor size in pixels on each of P2..P6 (default: FPN's 32..512 scaled to
            ``min_size``, :func:`~intern_arch.heads.geometry.scaled_anchor_sizes`).
        aspect_ratios: Anchor aspect ratios (height / width), the same on every level.
        fpn_channels: Channels of the FPN levels.
        freeze_backbone: Train only the FPN, RPN and box head.
        neck: An FPN whose weights the detector's FPN starts from (its channels win over ``fpn_channels``;
            P6 is a parameter-free max pool either way).
        box_head: The box head to use (with a box predictor on its ``out_features``) instead of
            torchvision's default two-layer MLP head.
        **kwargs: Further ``FasterRCNN`` arguments (e.g. ``box_detections_per_img``).

    Returns:
        The model: in train mode ``model(images, targets)`` gives the loss dict, in eval mode
        ``model(images)`` gives one dict of ``boxes``, ``scores`` and ``labels`` per image.
    """
    fpn = FPN(
        backbone, neck.out_channels if neck is not None else fpn_channels, freeze_backbone=freeze_backbone
    )
    if neck is not None:
        fpn.fpn.load_state_dict(neck.fpn.state_dict())
    if anchor_sizes is None:
        anchor_sizes = scaled_anchor_sizes(min_size, FPN_ANCHOR_SIZES)
    classes: int | None = num_classes
    if box_head is not None:
        kwargs.update(box_head=box_head, box_predictor=FastRCNNPredictor(box_head.out_features, num_classes))
        classes = None  # FasterRCNN takes them from the box predictor
    return assemble_faster_rcnn(
        fpn, classes, anchor_sizes, aspect_ratios, min_size=min_size, max_size=max_size, **kwargs
    )


def assemble_faster_rcnn(
    fpn: FPN,
    num_classes: int | None,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    **kwargs: Any,
) -> FasterRCNN:
    """torchvision's Faster R-CNN on ``fpn`` (P2-P6) with one anchor size per level and RoIAlign 7x7 on
    P2-P5; normalisation from the backbone's ``pretrained_cfg``. Several detectors may share one
    ``fpn`` (a detection expert's per-source heads); ``kwargs`` (``rpn_head``, ``box_head``,
    ``box_predictor``, ``min_size``...) go to ``FasterRCNN``."""
    if len(anchor_sizes) != len(fpn.names):
        raise ValueError(f"need one anchor size per level {fpn.names}, got {list(anchor_sizes)}")
    sizes = tuple((float(size),) for size in anchor_sizes)
    anchors = AnchorGenerator(sizes, (tuple(float(r) for r in aspect_ratios),) * len(sizes))
    roi_pool = MultiScaleRoIAlign(featmap_names=["P2", "P3", "P4", "P5"], output_size=7, sampling_ratio=2)
    backbone = fpn.body.backbone
    return FasterRCNN(
        fpn,
        num_classes,
        image_mean=list(backbone.pretrained_cfg["mean"]),
        image_std=list(backbone.pretrained_cfg["std"]),
        rpn_anchor_generator=anchors,
        box_roi_pool=roi_pool,
        **kwargs,
    )


class DetectorHead(nn.Module):
    """What one source's Faster R-CNN adds to a shared FPN: RPN head, box head (:class:`BoxHead`) and box
    predictor. A detection expert's ``heads/<source>`` part (kind ``faster_rcnn_head``).

    Args:
        in_channels: Channels of the FPN levels.
        num_classes: Classes including the background (label 0).
        num_anchors: Anchors per location (the number of aspect ratios).
        resolution, conv_dim, num_convs, fc_dim: The box head's (:class:`BoxHead`).
    """

    handover_kind: ClassVar[str] = "faster_rcnn_head"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_anchors: int = 3,
        resolution: int = 7,
        conv_dim: int = 256,
        num_convs: int = 4,
        fc_dim: int = 1024,
    ) -> None:
        super().__init__()
        self.rpn_head = RPNHead(in_channels, num_anchors)
        self.box_head = BoxHead(in_channels, resolution, conv_dim, num_convs, fc_dim)
        self.box_predictor = FastRCNNPredictor(fc_dim, num_classes)
        self.args = {
            "in_channels": int(in_channels),
            "num_classes": int(num_classes),
            "num_anchors": int(num_anchors),
            "resolution": int(resolution),
            "conv_dim": int(conv_dim),
            "num_convs": int(num_convs),
            "fc_dim": int(fc_dim),
        }
