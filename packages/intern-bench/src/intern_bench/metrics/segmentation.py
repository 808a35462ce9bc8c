"""Semantic segmentation mIoU, the VOC2012 protocol, on torchmetrics' ``MulticlassJaccardIndex``.

The VOC protocol: pixels whose label is 255 are dropped; one confusion matrix is accumulated over
the whole set (not a mean of per-image scores); per class IoU = TP / (TP + FP + FN); mIoU is the
mean over classes. torchmetrics' ``JaccardIndex(task="multiclass", ignore_index=255,
average="macro")`` does exactly this: its state is one summed confusion matrix (so distributed
evaluation is exact), target pixels equal to ``ignore_index`` are removed before counting, and the
macro mean gives weight 0 to classes whose union is 0.

Classes that never appear (neither in any target nor in any prediction, union 0) are left out of
the mean, as ``np.nanmean`` over 0/0 IoUs does in mmseg and the DeepLab code; the VOC devkit's
MATLAB mean would give NaN instead, which never happens on VOC2012 val, where all 21 classes occur.
A class predicted somewhere but absent from every target has union > 0 and IoU 0, and counts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassJaccardIndex

IGNORE_INDEX = 255


class SegmentationMIoU(MulticlassJaccardIndex):
    """mIoU over one confusion matrix of the whole set (VOC2012: 21 classes, 255 ignored).

    ``update(preds, target)``: ``preds`` class indices (N x H x W) or scores (N x C x H x W, argmax
    taken), ``target`` (N x H x W) class indices with ``ignore_index`` for don't-care pixels.
    ``compute()`` returns the mIoU; :meth:`per_class_iou` gives the per-class values (NaN where a class
    never appears).
    """

    def __init__(self, num_classes: int = 21, ignore_index: int = IGNORE_INDEX, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, average="macro", **kwargs)

    def per_class_iou(self) -> Tensor:
        """IoU of each class from the accumulated (and, when distributed, synced) confusion matrix."""
        with self.sync_context():
            confmat = self.confmat.to(torch.float64)
        tp = confmat.diag()
        union = confmat.sum(0) + confmat.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
