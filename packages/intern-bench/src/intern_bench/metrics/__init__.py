"""GV-B metrics as torchmetrics ``Metric`` classes, following the official evaluation code of each task.

Every state is registered with a ``dist_reduce_fx`` (sums, or concatenated per-image lists for
detections), so evaluation spread over processes gives the same numbers as one process.

=========================  ==============================================================
``VOCDetectionAP``         VOC07 11-point (or all-point) AP50, difficult boxes ignored; MR at FPPI
``LogAverageMissRate``     CityPersons MR^-2 on the reasonable / small / heavy / all setups
``WiderFaceAP``            WIDER FACE AP on easy / medium / hard
``SegmentationMIoU``       VOC2012 mIoU over one confusion matrix, 255 ignored
``DepthRMSE``              BTS RMSE per image, averaged (``DepthMetrics``: AbsRel, delta, ...)
``FPRAtRecall``            one-vs-rest FPR at recall 0.9 / 0.95 / 0.99 and its -log10 summary
``classification_metric``  accuracy or mean per-class accuracy by the task's metric name
``coco_map``               COCO mAP (torchmetrics on pycocotools or faster-coco-eval)
=========================  ==============================================================
"""

from intern_bench.metrics.classification import (
    CLASSIFICATION_METRICS,
    MeanPerClassAccuracy,
    classification_metric,
    coco_map,
)
from intern_bench.metrics.depth import DepthMetrics, DepthRMSE, garg_crop_mask, nyu_eigen_crop_mask
from intern_bench.metrics.fpr import FPRAtRecall
from intern_bench.metrics.miss_rate import CITYPERSONS_SETUPS, LogAverageMissRate
from intern_bench.metrics.segmentation import SegmentationMIoU
from intern_bench.metrics.voc_ap import VOCDetectionAP
from intern_bench.metrics.wider_face import WiderFaceAP, subsets_by_height

__all__ = [
    "CITYPERSONS_SETUPS",
    "CLASSIFICATION_METRICS",
    "DepthMetrics",
    "DepthRMSE",
    "FPRAtRecall",
    "LogAverageMissRate",
    "MeanPerClassAccuracy",
    "SegmentationMIoU",
    "VOCDetectionAP",
    "WiderFaceAP",
    "classification_metric",
    "coco_map",
    "garg_crop_mask",
    "nyu_eigen_crop_mask",
    "subsets_by_height",
]
