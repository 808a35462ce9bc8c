"""Detection on the backbone's FPN pyramid: Faster R-CNN (GV-B VOC detection and CityPersons
pedestrians) or the RetinaFace-style RetinaNet (GV-B WIDER FACE).

Batches (intern-data's ``DetectionShardDataModule``): ``image``, a B x 3 x H x W tensor or a list of
3 x H x W tensors **in [0, 1], not normalised** (torchvision's detection transform resizes them to
``min_size`` / ``max_size`` and normalises with the backbone's ``pretrained_cfg`` mean and std inside
the model; ``detection_transform`` does not normalise by default), and ``targets``, one dict per image
with ``boxes`` (N x 4 xyxy pixels) and ``labels`` (N int64, 1-based: 0 is torchvision's background).
Training uses only ``boxes`` and ``labels``; metrics get ``update(preds, targets)`` with torchvision's
detections (one dict of ``boxes``, ``scores``, ``labels`` per image, in input pixels) and the batch's
target dicts unchanged, so metric-specific keys (``difficult``, ``visibility``, ``ignore``, WIDER FACE
``easy``/``medium``/``hard``) pass through: the format of intern-bench's ``VOCDetectionAP``,
``LogAverageMissRate`` and ``WiderFaceAP`` and torchmetrics' ``MeanAveragePrecision``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Unpack

from torch import Tensor, nn

from intern_arch.heads import BoxHead, build_face_detector, build_faster_rcnn
from intern_arch.necks import FPN
from intern_transfer.adapt.finetune import AdaptModule, AdaptSettings, MetricSpec

DETECTION_DEFAULTS: AdaptSettings = {"lr": 0.02, "weight_decay": 1e-4}


class DetectionAdapter(AdaptModule):
    """Faster R-CNN or RetinaNet over an FPN on the backbone; the loss is the sum of the model's losses.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Classes including the background (label 0).
        metrics: Evaluation metrics, updated with ``(detections, targets)``; a single-tensor metric
            is logged as ``val/map``.
        detector: ``"faster_rcnn"`` or ``"retinanet"`` (the face detector's anchors).
        min_size: Shorter image side after torchvision's resize.
        max_size: Longest image side after the resize.
        anchor_sizes: Anchor size on each of P2..P6 (default: the detector's, scaled to ``min_size``).
        fpn_channels: Channels of the FPN levels.
        detector_kwargs: Further arguments of the torchvision model (e.g. ``box_detections_per_img``,
            ``score_thresh``).
        neck, box_head: Faster R-CNN only: an FPN whose weights the detector's FPN starts from and the box
            head to use (a hand-over's ``neck`` and ``heads/box``, as Up-A-L exports them); default
            fresh ones.
        **settings: Freezing, optimiser and schedule (:class:`AdaptModule`); ``normalize`` must stay
            ``False``. The optimiser defaults to :data:`DETECTION_DEFAULTS`.
    """

    backbone_path = "backbone.body.backbone"
    metric_name = "map"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        metrics: MetricSpec | None = None,
        *,
        detector: Literal["faster_rcnn", "retinanet"] = "faster_rcnn",
        min_size: int = 800,
        max_size: int = 1333,
        anchor_sizes: Sequence[float] | None = None,
        fpn_channels: int = 256,
        detector_kwargs: dict[str, Any] | None = None,
        neck: FPN | None = None,
        box_head: BoxHead | None = None,
        **settings: Unpack[AdaptSettings],
    ) -> None:
        if settings.get("normalize"):
            raise ValueError("detection takes images in [0, 1]: torchvision's transform normalises them")
        super().__init__(metrics, **{**DETECTION_DEFAULTS, **settings})
        common = {
            "min_size": min_size,
            "max_size": max_size,
            "fpn_channels": fpn_channels,
            "freeze_backbone": self.freeze_backbone,
            **(detector_kwargs or {}),
        }
        if detector == "faster_rcnn":
            self.model = build_faster_rcnn(
                backbone, num_classes, anchor_sizes=anchor_sizes, neck=neck, box_head=box_head, **common
            )
        elif neck is not None or box_head is not None:
            raise ValueError("a neck or box head to start from is for detector='faster_rcnn' only")
        elif detector == "retinanet":
            self.model = build_face_detector(backbone, num_classes, anchor_sizes=anchor_sizes, **common)
        else:
            raise ValueError(f"detector must be 'faster_rcnn' or 'retinanet', got {detector!r}")
        self._setup_backbone()

    def forward(self, images: Tensor | Sequence[Tensor]) -> list[dict[str, Tensor]]:
        """Detections (eval mode): one dict of ``boxes``, ``scores``, ``labels`` per image."""
        return self.model(list(images))

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        targets = [
            {"boxes": t["boxes"].float().reshape(-1, 4), "labels": t["labels"].long()}
            for t in batch["targets"]
        ]
        losses = self.model(list(batch["image"]), targets)
        return sum(losses.values()), losses

    def predict_for_metrics(
        self, batch: dict[str, Any]
    ) -> tuple[list[dict[str, Tensor]], list[dict[str, Tensor]], None]:
        return self(batch["image"]), batch["targets"], None


class FaceDetectionAdapter(DetectionAdapter):
    """The GV-B face task's detector: RetinaNet with RetinaFace anchors, one face class (label 1),
    840 px images. Arguments as :class:`DetectionAdapter`; metrics such as ``WiderFaceAP`` are logged
    by their keys (``val/ap_easy``, ...)."""

    def __init__(
        self,
        backbone: nn.Module,
        metrics: MetricSpec | None = None,
        *,
        min_size: int = 840,
        max_size: int = 840,
        anchor_sizes: Sequence[float] | None = None,
        fpn_channels: int = 256,
        detector_kwargs: dict[str, Any] | None = None,
        **settings: Unpack[AdaptSettings],
    ) -> None:
        super().__init__(
            backbone,
            2,
            metrics,
            detector="retinanet",
            min_size=min_size,
            max_size=max_size,
            anchor_sizes=anchor_sizes,
            fpn_channels=fpn_channels,
            detector_kwargs=detector_kwargs,
            **settings,
        )
