"""WIDER FACE AP on the easy / medium / hard settings (the official ``eval_tools``, Python port).

- Settings are per-image lists of face indices (easy within medium within hard); faces not in the
  setting's list are ignored for that setting. Where a dataset has no official lists (the embedded
  world), :func:`subsets_by_height` defines them by face height.
- Scores are min-max normalised over all detections of all images, with the official code's
  starting values ``min = 1`` and ``max = 0`` (so scores in [0, 1] are normalised by their own
  range, scores all above 1 use 1 as the minimum). If all scores are equal, all become 1.
- Each image's detections are sorted by normalised score (stable). Each detection is compared with
  its highest-IoU face only (all faces of the image, "+1" pixel IoU by default, the first face on a
  tie). IoU >= 0.5 on an ignored face: the detection is dropped (not a proposal); on a face of the
  setting not yet recalled: it recalls it; otherwise the detection is a false positive.
- Images without faces or without detections contribute no proposals (as the official code skips
  them) but their faces count in the recall denominator.
- 1000 thresholds ``1 - (t + 1) / 1000`` (0.999 down to 0): per threshold, proposals and recalled
  faces of the detections scoring >= it, summed over images; precision = recalled / proposals (0
  where there are no proposals; such thresholds have recall 0 and add no area), recall = recalled /
  faces; AP = all-point VOC area under the monotone precision envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    voc_area,
)

SETTINGS = ("easy", "medium", "hard")
DEFAULT_HEIGHT_THRESHOLDS = (50.0, 30.0, 10.0)
"""Minimum face height in pixels for easy, medium, hard in :func:`subsets_by_height`."""


def subsets_by_height(
    boxes: Tensor, thresholds: Sequence[float] = DEFAULT_HEIGHT_THRESHOLDS
) -> dict[str, Tensor]:
    """Easy / medium / hard face indices of one image by face height (``y2 - y1``).

    A face belongs to a setting when its height is at least that setting's threshold. The defaults
    (50, 30, 10 px) follow WIDER FACE's scale bins (faces of 10-50 px are "small"; the hard set
    holds faces from about 10 px up), an approximation of the official lists, which come from
    EdgeBox detection rates, not size. Thresholds must not increase, so easy within medium within
    hard. Datasets with other image sizes (the embedded world) should pass their own.
    """
    thresholds = tuple(float(t) for t in thresholds)
    if len(thresholds) != 3 or not thresholds[0] >= thresholds[1] >= thresholds[2]:
        raise ValueError(f"need three non-increasing thresholds (easy, medium, hard), got {thresholds}")
    boxes = as_box_tensor(boxes, "boxes")
    heights = boxes[:, 3] - boxes[:, 1]
    return {s: torch.nonzero(heights >= t).reshape(-1) for s, t in zip(SETTINGS, thresholds, strict=True)}


def normalise_scores(scores: np.ndarray) -> np.ndarray:
    """The official ``norm_score``: ``(s - min(1, s.min())) / (max(0, s.max()) - min(1, s.min()))``."""
    if scores.size == 0:
        return scores
    low, high = min(1.0, float(scores.min())), max(0.0, float(scores.max()))
    if high == low:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


class WiderFaceAP(Metric):
    """WIDER FACE AP per setting (``ap_easy``, ``ap_medium``, ``ap_hard``); rules in the module docstring.

    ``update(preds, targets)``: one dict per image. preds: ``boxes`` (N x 4 xyxy) and ``scores``.
    targets: ``boxes`` (M x 4 xyxy, x2 = x + w as WIDER's files give them) and optionally ``easy``,
    ``medium``, ``hard``: 0-based indices of the faces in each setting (the official ``.mat`` lists
    are 1-based: subtract 1). Without them, the settings come from :func:`subsets_by_height` with
    ``height_thresholds``.

    Args:
        iou_threshold: match threshold (inclusive).
        num_thresholds: score thresholds of the PR curve (1000).
        box_offset: added to widths and heights in the IoU (1.0: the official "+1" convention).
        height_thresholds: for targets without setting lists, see :func:`subsets_by_height`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        iou_threshold: float = 0.5,
        num_thresholds: int = 1000,
        box_offset: float = 1.0,
        height_thresholds: Sequence[float] = DEFAULT_HEIGHT_THRESHOLDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.iou_threshold = float(iou_threshold)
        self.num_thresholds = int(num_thresholds)
        self.box_offset = float(box_offset)
        self.height_thresholds = tuple(float(t) for t in height_thresholds)
        subsets_by_height(torch.zeros(0, 4), self.height_thresholds)  # validate early
        add_list_states(
            self,
            (
                "det_boxes",
                "det_scores",
                "det_counts",
                "gt_boxes",
                "gt_counts",
                *(f"gt_in_{s}" for s in SETTINGS),
            ),
        )

    def update(self, preds: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]]) -> None:
        """Add a batch of images (raw scores; normalisation happens in ``compute`` over all images)."""
        if len(preds) != len(targets):
            raise ValueError(f"got {len(preds)} predictions for {len(targets)} targets")
        for pred, target in zip(preds, targets, strict=True):
            boxes = as_box_tensor(pred["boxes"], "preds['boxes']")
            check_lengths("preds", len(boxes), scores=pred["scores"])
            gt = as_box_tensor(target["boxes"], "targets['boxes']")
            given = [s for s in SETTINGS if s in target]
            if given and len(given) != len(SETTINGS):
                raise ValueError(f"targets give settings {given}: give all of {SETTINGS} or none")
            lists = (
                {s: target[s] for s in SETTINGS} if given else subsets_by_height(gt, self.height_thresholds)
            )
            append(self, "det_boxes", boxes)
            append(self, "det_scores", pred["scores"])
            append(self, "det_counts", [len(boxes)])
            append(self, "gt_boxes", gt)
            append(self, "gt_counts", [len(gt)])
            for setting in SETTINGS:
                member = torch.zeros(len(gt), dtype=torch.bool)
                idx = torch.as_tensor(lists[setting], dtype=torch.long).reshape(-1)
                if idx.numel() and (idx.min() < 0 or idx.max() >= len(gt)):
                    raise ValueError(f"'{setting}' indices must be in [0, {len(gt)}), got {idx.tolist()}")
                member[idx] = True
                append(self, f"gt_in_{setting}", member)

    def curves(self) -> dict[str, dict[str, np.ndarray | int]]:
        """Per setting: ``thresholds``, ``precision``, ``recall`` (one value per threshold), ``num_faces``."""
        det_counts, gt_counts = read(self, "det_counts"), read(self, "gt_counts")
        d_boxes_all = split_by_counts(read(self, "det_boxes"), det_counts, 4)
        raw_scores = read(self, "det_scores")
        d_scores_all = split_by_counts(normalise_scores(raw_scores), det_counts)
        g_boxes_all = split_by_counts(read(self, "gt_boxes"), gt_counts, 4)
        members = {s: split_by_counts(read(self, f"gt_in_{s}"), gt_counts) for s in SETTINGS}
        thresholds = 1.0 - (np.arange(self.num_thresholds) + 1) / self.num_thresholds

        # Per image: detections sorted by score, each one's best face (or -1 below the IoU threshold).
        images = []
        for d_boxes, d_scores, g_boxes in zip(d_boxes_all, d_scores_all, g_boxes_all, strict=True):
            if len(d_boxes) == 0 or len(g_boxes) == 0:
                images.append(None)
                continue
            order = np.argsort(-d_scores, kind="stable")
            iou = box_overlap(d_boxes[order], g_boxes, self.box_offset)
            best = iou.argmax(axis=1)
            best = np.where(iou[np.arange(len(best)), best] >= self.iou_threshold, best, -1)
            # detections scoring >= each threshold (scores sorted descending)
            above = np.searchsorted(-d_scores[order], -thresholds, side="right")
            images.append((best, above))

        out: dict[str, dict[str, np.ndarray | int]] = {}
        for setting in SETTINGS:
            proposals = np.zeros(self.num_thresholds)
            recalled = np.zeros(self.num_thresholds)
            num_faces = 0
            for image, member in zip(images, members[setting], strict=True):
                member = member > 0.5
                num_faces += int(member.sum())
                if image is None:
                    continue
                best, above = image
                hit = best >= 0
                on_ignored = hit & ~member[np.where(hit, best, 0)]
                on_face = np.nonzero(hit & ~on_ignored)[0]
                first = np.zeros(len(best), dtype=bool)
                first[on_face[np.unique(best[on_face], return_index=True)[1]]] = True
                cum_prop = np.concatenate(([0], np.cumsum(~on_ignored)))
                cum_rec = np.concatenate(([0], np.cumsum(first)))
                proposals += cum_prop[above]
                recalled += cum_rec[above]
            with np.errstate(divide="ignore", invalid="ignore"):
                precision = np.where(proposals > 0, recalled / np.maximum(proposals, 1), 0.0)
            recall = recalled / num_faces if num_faces else np.full(self.num_thresholds, np.nan)
            out[setting] = {
                "thresholds": thresholds,
                "precision": precision,
                "recall": recall,
                "num_faces": num_faces,
            }
        return out

    def compute(self) -> dict[str, Tensor]:
        """``{"ap_easy", "ap_medium", "ap_hard"}`` (NaN for a setting without faces)."""
        result = {}
        for setting, curve in self.curves().items():
            ap = voc_area(curve["recall"], curve["precision"]) if curve["num_faces"] else float("nan")
            result[f"ap_{setting}"] = torch.tensor(ap, dtype=torch.float64)
        return result
