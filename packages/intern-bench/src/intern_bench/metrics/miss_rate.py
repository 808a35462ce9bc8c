"""CityPersons log-average miss rate MR^-2 (``eval_MR_multisetup.py`` of the CityPersons toolkit).

Setups (full-box height in pixels, visibility ratio; bounds inclusive)::

    reasonable  [50, inf]  [0.65, inf]
    small       [50, 75]   [0.65, inf]
    heavy       [50, inf]  [0.2, 0.65]
    all         [20, inf]  [0.2, inf]

Per setup and image:

1. Ground truth outside the setup's ranges, or flagged ``ignore``, becomes ignored.
2. Detections: the top ``max_dets`` (1000) by score (stable sort), then those with height in
   ``[hmin / 1.25, hmax * 1.25)``.
3. Matching at ``iou_threshold`` (0.5), detections in score order. A detection takes the regular
   (non-ignored) ground truth not yet matched with the highest IoU >= 0.5 (on equal IoU the later
   box, as the official loop does): true positive. Failing that, if its intersection over the
   *detection's* area with any ignored box is >= 0.5 it is dropped (an ignored box absorbs any
   number of detections). Otherwise it is a false positive. No "+1" in box sizes.

Then detections are pooled over images and sorted by score (stable); FPPI = cumulative FP / number
of images (every image given to ``update``), recall = cumulative TP / non-ignored ground truth. At
each of the nine reference points ``10 ** linspace(-2, 0, 9)`` take the recall of the last
detection with FPPI <= the point, 0 if there is none, and

    MR^-2 = exp(mean(log(max(1 - recall, floor))))

``floor`` defaults to 0 as in the CityPersons code (a detector that reaches recall 1 at any
reference point scores MR^-2 = 0); ``floor=1e-10`` gives the older Caltech toolbox. Deviations from
the official script, both outside the standard 500-image validation set's reach:

- The official reference points are rounded to 4 decimals (0.0178, 0.0316, ...); with 500 images no
  FPPI value k/500 falls between a rounded and an exact point. Pass ``fppi_points`` to use them.
- Where no detection has FPPI <= a point, the official code reads the *last* recall (an index of
  -1); we take 0, as the protocol states. This needs the first pooled detection to be a false
  positive with 1 / #images above 0.01, i.e. fewer than 100 images.

Single class: give only the pedestrian class (filter labels before ``update``). A setup with no
non-ignored ground truth gives NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
)

CITYPERSONS_SETUPS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "reasonable": ((50.0, float("inf")), (0.65, float("inf"))),
    "small": ((50.0, 75.0), (0.65, float("inf"))),
    "heavy": ((50.0, float("inf")), (0.2, 0.65)),
    "all": ((20.0, float("inf")), (0.2, float("inf"))),
}
"""Setup name -> ((height min, height max), (visibility min, visibility max)), bounds inclusive."""

_STATES = ("det_boxes", "det_scores", "det_counts", "gt_boxes", "gt_visibility", "gt_ignore", "gt_counts")


def log_average_miss_rate(recall_at_points: np.ndarray, floor: float = 0.0) -> float:
    """``exp(mean(log(max(1 - recall, floor))))``; 0 when a miss rate is 0 and ``floor`` is 0."""
    miss = np.maximum(1.0 - np.asarray(recall_at_points, dtype=np.float64), floor)
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(miss))))


class LogAverageMissRate(Metric):
    """CityPersons MR^-2 for each requested setup (lower is better); the rules are in the module docstring.

    ``update(preds, targets)``: one dict per image. preds: ``boxes`` (N x 4 xyxy, full body),
    ``scores`` (N). targets: ``boxes`` (M x 4 xyxy full boxes), ``visibility`` (M, visible fraction)
    and optionally ``ignore`` (bool, M: ignore regions and other don't-care boxes).
    ``compute()`` returns ``{"mr_<setup>": MR^-2}``; ``curves()`` gives the pooled FPPI-recall curves.

    Args:
        setups: setup names of :data:`CITYPERSONS_SETUPS`, or a mapping name -> ranges.
        iou_threshold: match threshold (inclusive) for IoU and for the overlap with ignored boxes.
        max_dets: detections kept per image, by score, before the height filter.
        expand: the height filter's tolerance factor (1.25).
        fppi_points: reference points (default nine, 10^-2 .. 10^0).
        floor: lower bound of the miss rate inside the log (0: CityPersons; 1e-10: Caltech toolbox).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        setups: Sequence[str] | Mapping[str, tuple[tuple[float, float], tuple[float, float]]] = (
            "reasonable",
            "small",
            "heavy",
            "all",
        ),
        iou_threshold: float = 0.5,
        max_dets: int = 1000,
        expand: float = 1.25,
        fppi_points: Sequence[float] | None = None,
        floor: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(setups, Mapping):
            self.setups = {str(k): (tuple(h), tuple(v)) for k, (h, v) in setups.items()}
        else:
            unknown = [s for s in setups if s not in CITYPERSONS_SETUPS]
            if unknown:
                raise ValueError(f"unknown setups {unknown}; known: {sorted(CITYPERSONS_SETUPS)}")
            self.setups = {s: CITYPERSONS_SETUPS[s] for s in setups}
        self.iou_threshold = float(iou_threshold)
        self.max_dets = int(max_dets)
        self.expand = float(expand)
        points = np.logspace(-2.0, 0.0, 9) if fppi_points is None else np.asarray(fppi_points, dtype=float)
        self.fppi_points = tuple(float(p) for p in points)
        self.floor = float(floor)
        add_list_states(self, _STATES)

    def update(self, preds: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]]) -> None:
        """Add a batch of images; each image's detections are cut to its top ``max_dets`` here."""
        if len(preds) != len(targets):
            raise ValueError(f"got {len(preds)} predictions for {len(targets)} targets")
        for pred, target in zip(preds, targets, strict=True):
            boxes = as_box_tensor(pred["boxes"], "preds['boxes']")
            scores = torch.as_tensor(pred["scores"]).reshape(-1)
            check_lengths("preds", len(boxes), scores=scores)
            order = torch.sort(-scores.to(torch.float64), stable=True).indices[: self.max_dets]
            gt = as_box_tensor(target["boxes"], "targets['boxes']")
            ignore = target.get("ignore", torch.zeros(len(gt), dtype=torch.bool))
            check_lengths("targets", len(gt), visibility=target["visibility"], ignore=ignore)
            append(self, "det_boxes", boxes[order])
            append(self, "det_scores", scores[order])
            append(self, "det_counts", [len(order)])
            append(self, "gt_boxes", gt)
            append(self, "gt_visibility", target["visibility"])
            append(self, "gt_ignore", torch.as_tensor(ignore).bool())
            append(self, "gt_counts", [len(gt)])

    def _evaluate_image(
        self,
        d_boxes: np.ndarray,
        g_boxes: np.ndarray,
        g_ignore: np.ndarray,
        height_range: tuple[float, float],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Kept-detection mask and TP flags (over all given detections) for one image and setup."""
        heights = d_boxes[:, 3] - d_boxes[:, 1]
        kept = (heights >= height_range[0] / self.expand) & (heights < height_range[1] * self.expand)
        tp = np.zeros(len(d_boxes), dtype=bool)
        idx = np.nonzero(kept)[0]
        if idx.size == 0 or len(g_boxes) == 0:
            return kept, tp
        regular = np.nonzero(~g_ignore)[0]
        ignored = np.nonzero(g_ignore)[0]
        iou = box_overlap(d_boxes[idx], g_boxes[regular])
        ioa = box_overlap(d_boxes[idx], g_boxes[ignored], over_first_area=True)
        absorbed = (ioa >= self.iou_threshold).any(axis=1) if ignored.size else np.zeros(idx.size, dtype=bool)
        free = np.ones(regular.size, dtype=bool)
        for row, det in enumerate(idx):
            if regular.size:
                cand = np.where(free, iou[row], -1.0)
                best = cand.max()
                if best >= self.iou_threshold:
                    j = regular.size - 1 - int(np.argmax(cand[::-1]))  # the last box with the best IoU
                    free[j] = False
                    tp[det] = True
                    continue
            if absorbed[row]:
                kept[det] = False
        return kept, tp

    def curves(self) -> dict[str, dict[str, np.ndarray | int]]:
        """Per setup: pooled ``scores``, ``tp`` (score order), ``fppi``, ``recall``, ``num_positives``
        and the ``recall_at_points`` read-outs."""
        det_counts, gt_counts = read(self, "det_counts"), read(self, "gt_counts")
        d_boxes_all = split_by_counts(read(self, "det_boxes"), det_counts, 4)
        d_scores_all = split_by_counts(read(self, "det_scores"), det_counts)
        g_boxes_all = split_by_counts(read(self, "gt_boxes"), gt_counts, 4)
        g_vis_all = split_by_counts(read(self, "gt_visibility"), gt_counts)
        g_ign_all = split_by_counts(read(self, "gt_ignore"), gt_counts)
        num_images = len(gt_counts)
        out: dict[str, dict[str, np.ndarray | int]] = {}
        for name, ((hmin, hmax), (vmin, vmax)) in self.setups.items():
            # visibilities are kept in float32 (the states' dtype): compare them with bounds rounded the
            # same way, so a visibility of exactly 0.65 (0.64999998 in float32) meets "visibility >= 0.65"
            vmin, vmax = float(np.float32(vmin)), float(np.float32(vmax))
            scores, tps = [], []
            npos = 0
            for d_boxes, d_scores, g_boxes, g_vis, g_ign in zip(
                d_boxes_all, d_scores_all, g_boxes_all, g_vis_all, g_ign_all, strict=True
            ):
                g_height = g_boxes[:, 3] - g_boxes[:, 1]
                outside = (g_height < hmin) | (g_height > hmax) | (g_vis < vmin) | (g_vis > vmax)
                g_ignore = (g_ign > 0.5) | outside
                npos += int((~g_ignore).sum())
                kept, tp = self._evaluate_image(d_boxes, g_boxes, g_ignore, (hmin, hmax))
                scores.append(d_scores[kept])
                tps.append(tp[kept])
            score = np.concatenate(scores) if scores else np.zeros(0)
            order = np.argsort(-score, kind="stable")
            tp = np.concatenate(tps)[order] if tps else np.zeros(0, dtype=bool)
            ctp = np.cumsum(tp, dtype=np.float64)
            cfp = np.cumsum(~tp, dtype=np.float64)
            fppi = cfp / max(num_images, 1)
            recall = ctp / npos if npos else np.full(ctp.shape, np.nan)
            idx = np.searchsorted(fppi, np.asarray(self.fppi_points), side="right") - 1
            at_points = np.array([recall[i] if i >= 0 else 0.0 for i in idx], dtype=np.float64)
            out[name] = {
                "scores": score[order],
                "tp": tp,
                "fppi": fppi,
                "recall": recall,
                "num_positives": npos,
                "recall_at_points": at_points,
            }
        return out

    def compute(self) -> dict[str, Tensor]:
        """``{"mr_<setup>": MR^-2}`` for each setup (NaN for a setup without non-ignored ground truth)."""
        result = {}
        for name, curve in self.curves().items():
            value = (
                log_average_miss_rate(curve["recall_at_points"], self.floor)
                if curve["num_positives"]
                else float("nan")
            )
            result[f"mr_{name}"] = torch.tensor(value, dtype=torch.float64)
        return result
