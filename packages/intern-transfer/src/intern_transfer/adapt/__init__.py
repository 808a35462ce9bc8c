"""Adapting a backbone to a GV-B task as a LightningModule: frozen backbone or full fine-tuning.

=======================  ===========================================  =============================
module                   model (intern-arch head)                     batch keys
=======================  ===========================================  =============================
ClassificationAdapter    ``LinearClassifier``                         ``image``, ``label``
DetectionAdapter         ``build_faster_rcnn`` / ``build_face_detector``  ``image`` in [0, 1], ``targets``
FaceDetectionAdapter     ``build_face_detector`` (one face class)     ``image`` in [0, 1], ``targets``
SegmentationAdapter      ``DeepLabV3``                                ``image``, ``mask``
DepthAdapter             ``DepthModel``                               ``image``, ``depth``
=======================  ===========================================  =============================

All share :class:`AdaptModule` (:mod:`.finetune`): ``freeze_backbone`` switches between a frozen
backbone (:mod:`.frozen`) and fine-tuning; metrics are injected and logged from their own
(distributed) ``compute()``; see :mod:`.finetune` for exact distributed evaluation.
"""

from intern_transfer.adapt.classification import ClassificationAdapter
from intern_transfer.adapt.depth import DEPTH_DEFAULTS, DepthAdapter
from intern_transfer.adapt.detection import DETECTION_DEFAULTS, DetectionAdapter, FaceDetectionAdapter
from intern_transfer.adapt.finetune import (
    AdaptModule,
    AdaptSettings,
    MetricSpec,
    build_metrics,
    flatten_results,
)
from intern_transfer.adapt.frozen import keep_frozen_eval, param_groups, set_norm_eval
from intern_transfer.adapt.geometry import dense_geometry
from intern_transfer.adapt.segmentation import SegmentationAdapter

__all__ = [
    "DEPTH_DEFAULTS",
    "DETECTION_DEFAULTS",
    "AdaptModule",
    "AdaptSettings",
    "ClassificationAdapter",
    "DepthAdapter",
    "DetectionAdapter",
    "FaceDetectionAdapter",
    "MetricSpec",
    "SegmentationAdapter",
    "build_metrics",
    "dense_geometry",
    "flatten_results",
    "keep_frozen_eval",
    "param_groups",
    "set_norm_eval",
]
