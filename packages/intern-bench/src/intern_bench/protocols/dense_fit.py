"""A dense cell fitted to its task: anchor coverage of the training boxes and a budget in optimiser steps.

Anchors and ASPP rates come from :func:`intern_transfer.adapt.dense_geometry`. Before training, the
detector's anchors are checked against the boxes of the task's training images (the first 512 of its train
split, whatever the regime), resized as the evaluation transform resizes them: the fraction of boxes with an
anchor at IoU >= 0.5 is stored with the cell's metrics (``anchor_coverage``) and a warning names the setting
to change when it is under 90%. Epochs come from a minimum number of optimiser steps, so that a 10% regime
of a small task is not trained for a handful of steps (``dense.min_steps``; ``dense.epochs`` stays the
floor).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from intern_arch.heads.geometry import anchor_coverage, detector_anchors
from intern_data.shards import ShardDataset
from intern_data.tasks import TaskSpec

log = logging.getLogger(__name__)

MIN_ANCHOR_COVERAGE = 0.9
COVERAGE_SAMPLE = 512
"""Training images whose boxes the anchor check reads (the first in shard order)."""


def training_boxes(root: Path, split: str, img_size: int, limit: int = COVERAGE_SAMPLE) -> Tensor:
    """Boxes (N x 4 xyxy) of the first ``limit`` images of ``split``, in the evaluation transform's
    ``img_size`` x ``img_size`` frame."""
    boxes = []
    for index, sample in enumerate(ShardDataset(root, split=split, batch_size=1).scan()):
        if index == limit:
            break
        height, width = sample["image"].shape[-2:]
        scale = torch.tensor([img_size / width, img_size / height] * 2)
        boxes.append(sample["boxes"].float().reshape(-1, 4) * scale)
    return torch.cat(boxes) if boxes else torch.zeros(0, 4)


def check_anchor_coverage(
    detector: nn.Module, spec: TaskSpec, root: Path, split: str, img_size: int
) -> float:
    """The fraction of the training boxes that ``detector``'s anchors reach at IoU >= 0.5 (NaN without
    boxes); warns under :data:`MIN_ANCHOR_COVERAGE`."""
    boxes = training_boxes(root, split, img_size)
    if len(boxes) == 0:
        return math.nan
    coverage = anchor_coverage(detector_anchors(detector, img_size), boxes)
    if coverage < MIN_ANCHOR_COVERAGE:
        log.warning(
            "task %s: only %.0f%% of the training boxes have an anchor at IoU >= 0.5 at %d px; "
            "set task.protocol.anchor_sizes (one size per level P2..P6)",
            spec.name, 100 * coverage, img_size,
        )  # fmt: skip
    return coverage


def budget_epochs(protocol: Mapping[str, Any], num_images: int) -> int:
    """Epochs giving at least ``protocol.min_steps`` optimiser steps on ``num_images`` (and at least
    ``protocol.epochs``)."""
    batches = max(1, math.ceil(num_images / int(protocol["batch_size"])))
    return max(int(protocol["epochs"]), math.ceil(int(protocol.get("min_steps", 0)) / batches))
