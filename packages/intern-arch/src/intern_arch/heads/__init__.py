"""Task heads on an intern-arch backbone: classification, detection, face, segmentation, depth."""

from .classifier import LinearClassifier
from .depth import DepthDecoder, DepthModel, silog_loss
from .detection import BoxHead, build_faster_rcnn
from .face import build_face_detector
from .segmentation import DeepLabV3, segmentation_loss

__all__ = [
    "BoxHead",
    "DeepLabV3",
    "DepthDecoder",
    "DepthModel",
    "LinearClassifier",
    "build_face_detector",
    "build_faster_rcnn",
    "segmentation_loss",
    "silog_loss",
]
