"""Classification accuracy / mean per-class accuracy by the task's metric name, and COCO mAP.

- ``"accuracy"``: top-1 accuracy over all samples (torchmetrics ``MulticlassAccuracy``, ``average="micro"``).
- ``"mean_per_class_accuracy"`` (Pets, Flowers, Caltech-101, Aircraft): the mean over classes of
  per-class recall, over the classes present in the targets. This is scikit-learn's
  ``balanced_accuracy_score``. torchmetrics' ``average="macro"`` differs in one corner: it also
  counts, with accuracy 0, a class that is predicted but absent from every target, so
  :class:`MeanPerClassAccuracy` averages the per-class values itself.
- COCO mAP: torchmetrics' ``MeanAveragePrecision`` on the official COCO code (``pycocotools``) or its
  faster reimplementation (``faster_coco_eval``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.detection import MeanAveragePrecision

CLASSIFICATION_METRICS = ("accuracy", "mean_per_class_accuracy")


class MeanPerClassAccuracy(MulticlassAccuracy):
    """Mean over classes present in the targets of per-class top-1 recall (= balanced accuracy)."""

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, average="none", **kwargs)

    def compute(self) -> Tensor:
        """Mean per-class accuracy (NaN before any sample)."""
        tp, _, _, fn = self._final_state()
        support = (tp + fn).to(torch.float64)
        present = support > 0
        return (tp[present].to(torch.float64) / support[present]).mean()


def classification_metric(
    name: Literal["accuracy", "mean_per_class_accuracy"], num_classes: int, **kwargs: Any
) -> Metric:
    """The metric a task's ``metric`` field names; ``kwargs`` go to the torchmetrics class."""
    if name == "accuracy":
        return MulticlassAccuracy(num_classes=num_classes, average="micro", **kwargs)
    if name == "mean_per_class_accuracy":
        return MeanPerClassAccuracy(num_classes=num_classes, **kwargs)
    raise ValueError(f"unknown classification metric {name!r}; known: {CLASSIFICATION_METRICS}")


COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True).tolist()
COCO_REC_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True).tolist()
"""pycocotools' ``Params`` thresholds, in float64."""


def coco_map(
    backend: Literal["pycocotools", "faster_coco_eval"] = "pycocotools",
    iou_type: Literal["bbox", "segm"] = "bbox",
    **kwargs: Any,
) -> MeanAveragePrecision:
    """COCO mAP (``map``, ``map_50``, ``map_75``, ...) with the official evaluation code as backend.

    torchmetrics' default thresholds come from a float32 ``torch.linspace`` (0.3 becomes
    0.30000001...), so a recall of exactly 3/10 misses the 0.3 recall point that pycocotools counts;
    unless given, the thresholds here are pycocotools' own float64 values, so the numbers equal a
    direct ``COCOeval`` run.
    """
    kwargs.setdefault("iou_thresholds", list(COCO_IOU_THRESHOLDS))
    kwargs.setdefault("rec_thresholds", list(COCO_REC_THRESHOLDS))
    return MeanAveragePrecision(backend=backend, iou_type=iou_type, **kwargs)
