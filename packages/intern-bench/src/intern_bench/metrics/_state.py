"""Per-image list states that survive torchmetrics' distributed sync and ``merge_state`` exactly.

Detection metrics keep every image's boxes until ``compute``. torchmetrics concatenates ``"cat"``
list states across processes into one flat tensor, losing the per-image boundaries, so each metric
also keeps a per-image count state and splits the flat tensors again with it. Every state here is a
1-D float32 tensor: ``gather_all_tensors`` needs the same number of dimensions on every rank, and a
rank that saw no data contributes an empty ``float32`` tensor (torchmetrics' default dtype). All
states are concatenated in the same rank order, so they stay aligned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric


def add_list_states(metric: Metric, names: Sequence[str]) -> None:
    """Register ``names`` as ``"cat"``-reduced list states on ``metric``."""
    for name in names:
        metric.add_state(name, default=[], dist_reduce_fx="cat")


def append(metric: Metric, name: str, value: Tensor | np.ndarray | Sequence[float]) -> None:
    """Append ``value`` flattened to float32 to the list state ``name``."""
    tensor = torch.as_tensor(value).detach().reshape(-1).to(device=metric.device, dtype=torch.float32)
    getattr(metric, name).append(tensor)


def read(metric: Metric, name: str) -> np.ndarray:
    """The whole state ``name`` as one float64 numpy array (list before sync, tensor after)."""
    state = getattr(metric, name)
    if isinstance(state, Tensor):
        flat = state.reshape(-1)
    elif len(state) == 0:
        return np.zeros(0, dtype=np.float64)
    else:
        flat = torch.cat([s.reshape(-1) for s in state])
    return flat.detach().cpu().to(torch.float64).numpy()


def split_by_counts(values: np.ndarray, counts: np.ndarray, width: int = 1) -> list[np.ndarray]:
    """Split a flat array into per-image arrays of ``counts[i]`` rows of ``width`` values each."""
    counts = counts.astype(np.int64)
    if values.size != int(counts.sum()) * width:
        raise RuntimeError(f"metric state holds {values.size} values for {int(counts.sum())} rows of {width}")
    rows = values.reshape(-1, width) if width > 1 else values
    return np.split(rows, np.cumsum(counts)[:-1]) if counts.size else []


def box_overlap(
    boxes: np.ndarray, others: np.ndarray, offset: float = 0.0, over_first_area: bool = False
) -> np.ndarray:
    """Pairwise IoU of xyxy ``boxes`` (N x 4) and ``others`` (M x 4) as an N x M float64 array.

    ``offset`` is added to every width and height (1.0 for the inclusive-pixel "+1" convention of the
    VOC devkit and the WIDER FACE code). ``over_first_area`` divides the intersection by the area of
    ``boxes`` instead of the union (CityPersons' overlap with ignore regions).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(boxes[:, None, 2], others[None, :, 2]) - np.maximum(boxes[:, None, 0], others[None, :, 0])
    ih = np.minimum(boxes[:, None, 3], others[None, :, 3]) - np.maximum(boxes[:, None, 1], others[None, :, 1])
    inter = np.clip(iw + offset, 0.0, None) * np.clip(ih + offset, 0.0, None)
    area = (boxes[:, 2] - boxes[:, 0] + offset) * (boxes[:, 3] - boxes[:, 1] + offset)
    if over_first_area:
        denom = np.broadcast_to(area[:, None], inter.shape)
    else:
        area_o = (others[:, 2] - others[:, 0] + offset) * (others[:, 3] - others[:, 1] + offset)
        denom = area[:, None] + area_o[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((inter > 0) & (denom > 0), inter / np.where(denom > 0, denom, 1.0), 0.0)


def voc_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point VOC area (VOC2010+ devkit, WIDER FACE): area under the monotone precision envelope."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def as_box_tensor(boxes: Tensor, what: str) -> Tensor:
    """Check an N x 4 box tensor (an empty tensor of any shape counts as no boxes)."""
    boxes = torch.as_tensor(boxes)
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{what} must be an N x 4 xyxy tensor, got shape {tuple(boxes.shape)}")
    return boxes


def check_lengths(what: str, n: int, **tensors: Tensor) -> None:
    """Raise when a per-box tensor does not have one value per box."""
    for name, tensor in tensors.items():
        if torch.as_tensor(tensor).numel() != n:
            raise ValueError(f"{what}: '{name}' has {torch.as_tensor(tensor).numel()} values for {n} boxes")
