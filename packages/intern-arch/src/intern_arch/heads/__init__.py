"""Task heads on an intern-arch backbone: classification, detection, face, segmentation, depth."""

from .classifier import LinearClassifier, LinearHead
from .depth import DepthDecoder, DepthModel, silog_loss
from .detection import BoxHead, DetectorHead, assemble_faster_rcnn, build_faster_rcnn
from .face import build_face_detector
from .segmentation import ASPPHead, DeepLabV3, segmentation_loss

__all__ = [
    "ASPPHead",
    "BoxHead",
    "DeepLabV3",
    "DetectorHead",
    "DepthDecoder",
    "DepthModel",
    "LinearClassifier",
    "LinearHead",
    "assemble_faster_rcnn",
    "build_face_detector",
    "build_faster_rcnn",
    "segmentation_loss",
    "silog_loss",
]
