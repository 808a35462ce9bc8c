"""Pascal VOC detection AP50 (VOC2007 11-point or VOC2010+ all-point) and miss rate at FPPI.

The protocol of the VOC devkit (``VOCevaldet.m``), as used by detectron2's and mmdet's VOC
evaluators:

- Per class, detections of all images are pooled and sorted by score (a stable sort, so tied
  scores keep image order, then the order within the image; the official Python ports use an
  unstable sort, so their tie order is arbitrary).
- Each detection is compared with the ground truth box of its class and image with the highest IoU
  (the first one on a tie). IoU >= ``iou_threshold`` (0.5) on a regular box not yet taken: true
  positive, and the box is taken; on a box already taken: false positive; on a ``difficult`` box:
  neither (the detection is dropped, any number of them). Below the threshold: false positive.
- Difficult boxes are not counted as positives. Recall = TP / positives, precision = TP / (TP + FP).
- ``ap_method="11point"`` (VOC2007): mean over recall thresholds ``np.arange(0.0, 1.1, 0.1)``
  (exactly those floats, as detectron2 and mmdet use) of the highest precision at recall >= t, 0 if
  none. ``"area"`` (VOC2010+): area under the monotone precision envelope.
- ``map50`` is the mean over the classes that have at least one positive; classes without positives
  are left out (mmdet's rule; detections of such classes count nowhere).

IoU uses continuous box edges by default (``box_offset=0``), which is what intern-data's VOC reader
gives (``[xmin - 1, ymin - 1, xmax, ymax]``, as detectron2 reads VOC) and equals the devkit's "+1"
IoU on the original inclusive pixel coordinates; use ``box_offset=1`` for boxes still in inclusive
pixel coordinates.

Miss rate at FPPI (``mr@fppi=f``), per class: FPPI = cumulative FP / number of images (every image
given to ``update``), miss rate = 1 - recall of the last detection with FPPI <= f (1 if none); mean
over the same classes as ``map50``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from intern_bench.metrics._state import (
    add_list_states,
    append,
    as_box_tensor,
    box_overlap,
    check_lengths,
    read,
    split_by_counts,
    voc_area,
)

_STATES = (
    "det_boxes",
    "det_scores",
    "det_labels",
    "det_counts",
    "gt_boxes",
    "gt_labels",
    "gt_difficult",
    "gt_counts",
)


def voc_11point(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 11-point AP: mean over t in ``np.arange(0.0, 1.1, 0.1)`` of max precision at recall >= t."""
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        above = recall >= t
        ap += (float(np.max(precision[above])) if above.any() else 0.0) / 11.0
    return ap


def miss_rate_at_fppi(fppi: np.ndarray, recall: np.ndarray, points: Sequence[float]) -> np.ndarray:
    """1 - recall of the last detection with FPPI <= each point (recall 0 where there is none)."""
    idx = np.searchsorted(fppi, np.asarray(points, dtype=np.float64), side="right") - 1
    rec = np.where(idx >= 0, recall[np.clip(idx, 0, None)] if recall.size else 0.0, 0.0)
    return 1.0 - rec


class VOCDetectionAP(Metric):
    """Pascal VOC AP50 per class and its mean, plus the mean miss rate at FPPI 0.01 / 0.1 / 1.

    ``update(preds, targets)`` takes torchmetrics' detection format, one dict per image: preds with
    ``boxes`` (N x 4 xyxy), ``scores`` (N) and ``labels`` (N); targets with ``boxes``, ``labels`` and
    optionally ``difficult`` (bool, N). ``compute()`` returns ``map50``, ``ap50_per_class`` and
    ``classes`` (the classes it covers, in ascending order) and ``mr@fppi=<f>`` for each FPPI point.
    The rules are in the module docstring.

    Args:
        ap_method: ``"11point"`` (VOC2007, the GV-B metric) or ``"area"`` (VOC2010+).
        iou_threshold: minimum IoU of a match (inclusive, as in the devkit).
        box_offset: added to widths and heights in the IoU (0: continuous edges; 1: inclusive pixels).
        fppi_points: FPPI values of the miss-rate read-outs.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        ap_method: Literal["11point", "area"] = "11point",
        iou_threshold: float = 0.5,
        box_offset: float = 0.0,
        fppi_points: Sequence[float] = (0.01, 0.1, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if ap_method not in ("11point", "area"):
            raise ValueError(f"ap_method must be '11point' or 'area', got {ap_method!r}")
        self.ap_method = ap_method
        self.iou_threshold = float(iou_threshold)
        self.box_offset = float(box_offset)
        self.fppi_points = tuple(float(f) for f in fppi_points)
        add_list_states(self, _STATES)

    def update(self, preds: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]]) -> None:
        """Add a batch of images: ``preds[i]`` and ``targets[i]`` describe the same image."""
        if len(preds) != len(targets):
            raise ValueError(f"got {len(preds)} predictions for {len(targets)} targets")
        for pred, target in zip(preds, targets, strict=True):
            boxes = as_box_tensor(pred["boxes"], "preds['boxes']")
            check_lengths("preds", len(boxes), scores=pred["scores"], labels=pred["labels"])
            gt = as_box_tensor(target["boxes"], "targets['boxes']")
            difficult = target.get("difficult", torch.zeros(len(gt), dtype=torch.bool))
            check_lengths("targets", len(gt), labels=target["labels"], difficult=difficult)
            append(self, "det_boxes", boxes)
            append(self, "det_scores", pred["scores"])
            append(self, "det_labels", pred["labels"])
            append(self, "det_counts", [len(boxes)])
            append(self, "gt_boxes", gt)
            append(self, "gt_labels", target["labels"])
            append(self, "gt_difficult", torch.as_tensor(difficult).bool())
            append(self, "gt_counts", [len(gt)])

    def _images(self) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
        det_counts, gt_counts = read(self, "det_counts"), read(self, "gt_counts")
        dets = zip(
            split_by_counts(read(self, "det_boxes"), det_counts, 4),
            split_by_counts(read(self, "det_scores"), det_counts),
            split_by_counts(read(self, "det_labels"), det_counts),
            strict=True,
        )
        gts = zip(
            split_by_counts(read(self, "gt_boxes"), gt_counts, 4),
            split_by_counts(read(self, "gt_labels"), gt_counts),
            split_by_counts(read(self, "gt_difficult"), gt_counts),
            strict=True,
        )
        det_list = [{"boxes": b, "scores": s, "labels": lab.astype(np.int64)} for b, s, lab in dets]
        gt_list = [{"boxes": b, "labels": lab.astype(np.int64), "difficult": d > 0.5} for b, lab, d in gts]
        return det_list, gt_list

    def curves(self) -> dict[int, dict[str, np.ndarray | int]]:
        """Per class with positives: pooled ``scores``, ``tp``, ``fp`` (score order), ``recall``,
        ``precision``, ``fppi`` and ``num_positives``."""
        dets, gts = self._images()
        classes = sorted({int(c) for g in gts for c in np.unique(g["labels"][~g["difficult"]])})
        num_images = len(gts)
        out: dict[int, dict[str, np.ndarray | int]] = {}
        for cls in classes:
            scores, tps, fps = [], [], []
            npos = 0
            for det, gt in zip(dets, gts, strict=True):
                gmask = gt["labels"] == cls
                g_boxes, g_diff = gt["boxes"][gmask], gt["difficult"][gmask]
                npos += int((~g_diff).sum())
                dmask = det["labels"] == cls
                if not dmask.any():
                    continue
                order = np.argsort(-det["scores"][dmask], kind="stable")
                d_boxes, d_scores = det["boxes"][dmask][order], det["scores"][dmask][order]
                tp, fp, kept = self._match_image(d_boxes, g_boxes, g_diff)
                scores.append(d_scores[kept])
                tps.append(tp[kept])
                fps.append(fp[kept])
            score = np.concatenate(scores) if scores else np.zeros(0)
            order = np.argsort(-score, kind="stable")
            tp = np.concatenate(tps)[order] if tps else np.zeros(0, dtype=bool)
            fp = np.concatenate(fps)[order] if fps else np.zeros(0, dtype=bool)
            ctp, cfp = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
            out[cls] = {
                "scores": score[order],
                "tp": tp,
                "fp": fp,
                "recall": ctp / npos,
                "precision": ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps),
                "fppi": cfp / max(num_images, 1),
                "num_positives": npos,
            }
        return out

    def _match_image(
        self, d_boxes: np.ndarray, g_boxes: np.ndarray, g_diff: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TP, FP and not-dropped flags for one image's detections of one class, in score order."""
        n = len(d_boxes)
        if len(g_boxes) == 0:
            return np.zeros(n, dtype=bool), np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        iou = box_overlap(d_boxes, g_boxes, self.box_offset)
        best = iou.argmax(axis=1)
        hit = iou[np.arange(n), best] >= self.iou_threshold
        on_difficult = hit & g_diff[best]
        on_regular = np.nonzero(hit & ~g_diff[best])[0]
        tp = np.zeros(n, dtype=bool)
        _, first = np.unique(best[on_regular], return_index=True)  # the first (highest-scored) takes it
        tp[on_regular[first]] = True
        fp = ~hit | (hit & ~g_diff[best] & ~tp)
        return tp, fp, ~on_difficult

    def compute(self) -> dict[str, Tensor]:
        """``map50``, ``ap50_per_class``, ``classes`` and ``mr@fppi=<f>`` (NaN: no class with positives)."""
        curves = self.curves()
        aps, mrs = [], []
        for curve in curves.values():
            rec, prec = curve["recall"], curve["precision"]
            aps.append(voc_11point(rec, prec) if self.ap_method == "11point" else voc_area(rec, prec))
            mrs.append(miss_rate_at_fppi(curve["fppi"], rec, self.fppi_points))
        result = {
            "map50": torch.tensor(float(np.mean(aps)) if aps else float("nan"), dtype=torch.float64),
            "ap50_per_class": torch.tensor(aps, dtype=torch.float64),
            "classes": torch.tensor(list(curves), dtype=torch.int64),
        }
        mean_mr = np.mean(np.stack(mrs), axis=0) if mrs else np.full(len(self.fppi_points), np.nan)
        for point, value in zip(self.fppi_points, mean_mr, strict=True):
            result[f"mr@fppi={point:g}"] = torch.tensor(float(value), dtype=torch.float64)
        return result
