"""What Down-A needs to know of a task: its adapter (backbone + new task layers) and its DataModules.

Images stay in [0, 1] through the data transforms (the adapters normalise with the backbone's own mean
and std; detection inside torchvision's transform), so the VQ-GAN and the contrastive term's second
augmentation work on the pixels the task sees. Metrics are injected: intern-bench passes GV-B's,
the ``intern_transfer`` app torchmetrics' (:func:`default_metric`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.detection import MeanAveragePrecision

from intern_data.datamodules import ShardDataModule
from intern_data.schema import IGNORE_INDEX
from intern_data.shards import classification_transform, segmentation_transform
from intern_data.sources import DATAMODULES
from intern_transfer.adapt import AdaptModule, ClassificationAdapter, DetectionAdapter, SegmentationAdapter

__all__ = ["TASK_TYPES", "TransferTask", "default_metric"]

TASK_TYPES = ("classification", "detection", "segmentation")
"""The task types Down-A adapts to (paper 8.3: classification, detection, segmentation)."""


def default_metric(task_type: str, num_classes: int) -> tuple[Callable[[], Metric], str]:
    """A torchmetrics factory for ``task_type`` and the result key it is selected and reported by:
    accuracy, COCO-style AP at IoU 0.5 (pycocotools), or mIoU over the classes (255 ignored)."""
    if task_type == "classification":
        return lambda: MulticlassAccuracy(num_classes, average="micro"), "accuracy"
    if task_type == "detection":
        return lambda: MeanAveragePrecision(iou_thresholds=[0.5], backend="pycocotools"), "map_50"
    if task_type == "segmentation":
        return lambda: MulticlassJaccardIndex(num_classes, ignore_index=IGNORE_INDEX), "miou"
    raise ValueError(f"Down-A adapts {', '.join(TASK_TYPES)} tasks, not {task_type!r}")


@dataclass(frozen=True)
class TransferTask:
    """A downstream task as Down-A adapts to it.

    Attributes:
        type: ``classification``, ``detection`` or ``segmentation``.
        num_classes: Classes of the task (detection: without torchvision's background).
        img_size: Side of the square images the transforms produce.
        metric: Factory of the evaluation metric.
        metric_key: The result key selection reads (higher is better).
        adapter_kwargs: Further adapter arguments (anchors, ASPP rates, detector budgets).
    """

    type: str
    num_classes: int
    img_size: int
    metric: Callable[[], Metric]
    metric_key: str
    adapter_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"Down-A adapts {', '.join(TASK_TYPES)} tasks, not {self.type!r}")

    def adapter(self, backbone: nn.Module, **settings: Any) -> AdaptModule:
        """The task's adaptation module around ``backbone`` (frozen with ``freeze_backbone=True``)."""
        kwargs = {**self.adapter_kwargs, **settings}
        if self.type == "classification":
            return ClassificationAdapter(backbone, self.num_classes, self.metric, normalize=True, **kwargs)
        if self.type == "detection":
            size = self.img_size
            return DetectionAdapter(
                backbone, self.num_classes + 1, self.metric, min_size=size, max_size=size, **kwargs
            )
        return SegmentationAdapter(backbone, self.num_classes, self.metric, normalize=True, **kwargs)

    def datamodule(
        self,
        root: Path,
        *,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        batch_size: int = 32,
        seed: int = 0,
    ) -> ShardDataModule:
        """A DataModule over splits of the shard folder ``root`` with [0, 1] images; training augments
        (random crop and flip)."""
        kwargs: dict[str, Any] = {}
        if self.type == "classification":
            kwargs = {
                "train_transform": classification_transform(self.img_size, True, normalize=False),
                "eval_transform": classification_transform(self.img_size, False, normalize=False),
            }
        elif self.type == "segmentation":
            kwargs = {
                "train_transform": segmentation_transform(self.img_size, True, normalize=False),
                "eval_transform": segmentation_transform(self.img_size, False, normalize=False),
            }
        return DATAMODULES[self.type](
            str(root), train_split=train, val_split=val, test_split=test, batch_size=batch_size,
            num_workers=0, img_size=self.img_size, seed=seed, **kwargs,
        )  # fmt: skip
