"""Dense heads fitted to the input size: anchor sizes, ASPP dilation rates, and anchor coverage of boxes.

The reference settings are made for large inputs: FPN's anchors of 32-512 px on P2..P6, eight times each
level's stride (Lin et al., 2017, ~800 px images), RetinaFace's 16-256 px (840 px), and DeepLabv3's ASPP
rates (6, 12, 18) on the 33 x 33 stride-16 map of a 513 px crop (Chen et al., 2017). Small inputs break
them: at 64 px a 32 px anchor is half the image, no anchor reaches IoU 0.5 with a 17 px object, and a
rate-6 dilation on a 4 x 4 map reads only padding, so every ASPP branch degenerates to its centre tap.

- Anchors keep the ladder's shape (one octave per level) and shift down so that the largest FPN anchor is
  at most twice the input side: every size is multiplied by ``min(1, input / 256)``. No anchor goes below
  three times its level's stride: anchors sit on a grid of that stride, and a box of the anchor's own size
  half a step off the grid in both axes still overlaps it at IoU >= 0.5 only when the anchor is at least
  2.72 strides wide. At 64 px this gives 12, 24, 48, 96, 192 px on P2..P6.
- ASPP rates scale with the input relative to 513 px, rounded, and stay at least 1, 2, 3 so the branches
  keep distinct receptive fields (64 px: 1, 2, 3; 256 px: 3, 6, 9).

Inputs at or above the references keep the published settings unchanged.
"""

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.models.detection import FasterRCNN, RetinaNet
from torchvision.ops import box_iou

FPN_ANCHOR_SIZES = (32, 64, 128, 256, 512)
FACE_ANCHOR_SIZES = (16, 32, 64, 128, 256)
FPN_STRIDES = (4, 8, 16, 32, 64)
"""Strides of the FPN levels P2..P6."""
ANCHOR_REFERENCE_INPUT = 256
"""The input side from which the reference anchors are used unchanged (twice it is FPN's largest)."""
MIN_ANCHOR_STRIDES = 3
"""The smallest anchor of a level, in strides of its grid."""

DEEPLAB_ATROUS_RATES = (6, 12, 18)
DEEPLAB_REFERENCE_INPUT = 513


def scaled_anchor_sizes(
    input_size: int,
    reference: Sequence[float] = FPN_ANCHOR_SIZES,
    strides: Sequence[int] = FPN_STRIDES,
) -> tuple[float, ...]:
    """``reference`` anchor sizes (pixels, one per level of ``strides``) for ``input_size`` px images."""
    factor = min(1.0, input_size / ANCHOR_REFERENCE_INPUT)
    return tuple(
        max(float(size) * factor, MIN_ANCHOR_STRIDES * stride)
        for size, stride in zip(reference, strides, strict=True)
    )


def scaled_atrous_rates(input_size: int, reference: Sequence[int] = DEEPLAB_ATROUS_RATES) -> tuple[int, ...]:
    """ASPP dilation rates for ``input_size`` px inputs at output stride 16."""
    factor = min(1.0, input_size / DEEPLAB_REFERENCE_INPUT)
    return tuple(max(index + 1, round(rate * factor)) for index, rate in enumerate(reference))


def detector_anchors(detector: FasterRCNN | RetinaNet, image_size: int) -> Tensor:
    """Every anchor (A x 4, xyxy pixels) ``detector`` lays on an ``image_size`` square image.

    The detector's own transform, backbone and anchor generator run once on a blank image without
    gradients; each module's train/eval mode is restored exactly afterwards.
    """
    generator = (
        detector.rpn.anchor_generator if isinstance(detector, FasterRCNN) else detector.anchor_generator
    )
    modes = {module: module.training for module in detector.modules()}
    device = next(detector.parameters()).device
    detector.eval()
    try:
        with torch.no_grad():
            images, _ = detector.transform([torch.zeros(3, image_size, image_size, device=device)])
            features = list(detector.backbone(images.tensors).values())
            return generator(images, features)[0]
    finally:
        for module, training in modes.items():
            module.training = training


def anchor_coverage(anchors: Tensor, boxes: Tensor, iou: float = 0.5, chunk: int = 256) -> float:
    """The fraction of ``boxes`` (N x 4 xyxy) whose best anchor overlaps them at ``iou`` or more.

    Raises:
        ValueError: there are no boxes.
    """
    if len(boxes) == 0:
        raise ValueError("anchor coverage needs at least one box")
    anchors = anchors.float()
    covered = 0
    for start in range(0, len(boxes), chunk):
        part = boxes[start : start + chunk].to(anchors)
        covered += int((box_iou(part, anchors).amax(dim=1) >= iou).sum())
    return covered / len(boxes)


__all__ = [
    "ANCHOR_REFERENCE_INPUT",
    "DEEPLAB_ATROUS_RATES",
    "FACE_ANCHOR_SIZES",
    "FPN_ANCHOR_SIZES",
    "FPN_STRIDES",
    "anchor_coverage",
    "detector_anchors",
    "scaled_anchor_sizes",
    "scaled_atrous_rates",
]
