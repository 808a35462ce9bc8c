"""Up-E (D), the detection expert (paper 6.3): a shared backbone and FPN, one Faster R-CNN head per source.

Every source has a torchvision ``FasterRCNN`` over the one shared FPN; what is its own is a
:class:`~intern_arch.heads.DetectorHead` (RPN head, box head, box predictor). With ``partial`` label
spaces the sources share one head whose box predictor covers the merged class bank, each seeing its
classes through an :class:`~intern_pretrain.upe.heads.IndexedPredictor`; with ``unified`` one detector
serves every source, labels mapped into the one space (one background class). The FPN and every box
head start from the parent's (Up-A-L's) ``neck`` and ``heads/box`` (``init_heads``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn
from torchmetrics.detection import MeanAveragePrecision
from torchvision.models.detection import FasterRCNN

from intern_arch.heads import BoxHead, DetectorHead, assemble_faster_rcnn
from intern_arch.heads.geometry import scaled_anchor_sizes
from intern_arch.necks import FPN
from intern_pretrain.core import StageConfigError
from intern_pretrain.upe.base import ExpertModule
from intern_pretrain.upe.heads import IndexedPredictor, SourceHeads

__all__ = ["DetectionExpert"]

logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)  # its per-evaluation summary tables


class DetectionExpert(ExpertModule):
    """Per-source Faster R-CNN losses (RPN + RoI heads, torchvision's) on one shared FPN. Validation:
    AP at IoU 0.5 per source in its own classes (``val/ap50/<source>``, torchmetrics' COCO-style mAP
    with one IoU threshold).

    Args:
        img_size: Training image side (the detector's resize keeps it); anchors are FPN's scaled to it.
        fpn_channels, box_head: FPN channels and the box head's ``conv_dim``, ``num_convs``, ``fc_dim``
            when they do not come from the parent.
        init_heads: Start the FPN and every source's box head from the parent's ``neck`` and
            ``heads/box`` (paper: the Up-A-L neck and box head), taking their sizes.
        parent_parts: The parent hand-over's parts (the app passes them).
        aspect_ratios: Anchor aspect ratios.
        detector_kwargs: Further ``FasterRCNN`` arguments (RPN / RoI sampling budgets).
        **kwargs: :class:`~intern_pretrain.upe.base.ExpertModule`'s.
    """

    metric_name = "ap50"
    parent_parts_used: ClassVar[tuple[str, ...]] = ("neck", "heads/box")

    def __init__(
        self,
        backbone: nn.Module,
        *,
        img_size: int,
        fpn_channels: int = 256,
        box_head: Mapping[str, int] | None = None,
        init_heads: bool = True,
        parent_parts: Mapping[str, nn.Module] | None = None,
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        detector_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, **kwargs)
        neck, parent_box = self._parent_heads(init_heads, parent_parts or {})
        self.fpn = FPN(backbone, neck.out_channels if neck is not None else fpn_channels)
        if neck is not None:
            self.fpn.fpn.load_state_dict(neck.fpn.state_dict())
        head_args = dict(parent_box.args) if parent_box is not None else dict(box_head or {})
        head_args.pop("in_channels", None)
        channels, ratios = self.fpn.out_channels, tuple(aspect_ratios)

        def make(classes: int) -> DetectorHead:
            head = DetectorHead(channels, classes, num_anchors=len(ratios), **head_args)
            if parent_box is not None:
                head.box_head.load_state_dict(parent_box.state_dict())
            return head

        self.heads = SourceHeads(self.labels, make)
        settings = {
            "min_size": img_size,
            "max_size": img_size,
            **dict(detector_kwargs or {}),
        }
        anchors = scaled_anchor_sizes(img_size)
        self.detectors: dict[str, FasterRCNN] = {}
        for source in self.sources:
            head = self.heads.head(source)
            predictor = head.box_predictor
            if self.labels.mode == "partial":
                predictor = IndexedPredictor(predictor, self.heads.own_classes(source))
            self.detectors[source] = assemble_faster_rcnn(
                self.fpn,
                None,
                anchors,
                ratios,
                rpn_head=head.rpn_head,
                box_head=head.box_head,
                box_predictor=predictor,
                **settings,
            )
        self.metrics = nn.ModuleDict(
            {s: MeanAveragePrecision(iou_thresholds=[0.5], backend="faster_coco_eval") for s in self.sources}
        )

    @staticmethod
    def _parent_heads(init: bool, parts: Mapping[str, nn.Module]) -> tuple[FPN | None, BoxHead | None]:
        if not init:
            return None, None
        missing = [name for name in DetectionExpert.parent_parts_used if name not in parts]
        if missing:
            raise StageConfigError(
                f"stage.module.init_heads=true needs a parent hand-over with {missing} (an Up-A or Up-A-L "
                "export); start from one or set stage.module.init_heads=false"
            )
        return copy.deepcopy(parts["neck"]), copy.deepcopy(parts["heads/box"])

    def trunk(self) -> list[nn.Module]:
        return [self.backbone, self.fpn.fpn]

    def head_modules(self) -> nn.Module:
        return self.heads

    def source_losses(self, batch: Mapping[str, Any]) -> dict[str, tuple[Tensor, int]]:
        losses = {}
        for source, sub in batch.items():
            detector = _mode(self.detectors[source], training=True)
            targets = [
                {
                    "boxes": t["boxes"].float().reshape(-1, 4),
                    "labels": self.heads.targets(source, t["labels"]),
                }
                for t in sub["targets"]
            ]
            parts = detector(list(sub["image"]), targets)
            losses[source] = (sum(parts.values()), len(targets))
        return losses

    def update_metric(self, source: str, batch: Mapping[str, Any]) -> None:
        detector = _mode(self.detectors[source], training=False)
        predictions = detector(list(batch["image"]))
        if self.labels.mode == "unified":
            predictions = [self._own_labels(source, p) for p in predictions]
        self.metrics[source].update(predictions, batch["targets"])

    def _own_labels(self, source: str, prediction: dict[str, Tensor]) -> dict[str, Tensor]:
        """A unified detector's detections of ``source``'s classes, labelled in its own space."""
        own = self.heads.own_classes(source, prediction["labels"].device)
        hit = prediction["labels"][:, None] == own[None, :]
        keep = hit.any(1)
        return {
            "boxes": prediction["boxes"][keep],
            "scores": prediction["scores"][keep],
            "labels": hit[keep].float().argmax(1),
        }

    def metric_value(self, computed: Any) -> Tensor:
        return computed["map_50"]

    def handover_parts(self) -> dict[str, nn.Module]:
        return {"neck": self.fpn, **super().handover_parts()}


def _mode(detector: FasterRCNN, training: bool) -> FasterRCNN:
    """Switch the detector's own steps (resize, RPN and RoI sampling) to training or inference; its
    modules with weights are the expert's and follow the expert's ``train()``/``eval()`` (and
    ``norm_eval``)."""
    for module in (detector, detector.transform, detector.rpn, detector.roi_heads):
        module.training = training
    return detector
