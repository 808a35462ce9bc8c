"""The probe's selection metrics, computed with torchmetrics.

- ``"accuracy"``: top-1 accuracy over all samples.
- ``"mean_per_class_accuracy"``: mean over the classes present in the targets of per-class recall
  (scikit-learn's ``balanced_accuracy_score``). torchmetrics' ``average="macro"`` would also count a
  class that is predicted but absent from the targets, with accuracy 0, so the per-class values are
  averaged here over the present classes. intern-bench's ``classification_metric`` follows the same
  rule; intern-transfer cannot import it (intern-bench depends on intern-transfer).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy

Metric = Literal["accuracy", "mean_per_class_accuracy"]
METRICS: tuple[str, ...] = ("accuracy", "mean_per_class_accuracy")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown probe metric {metric!r}; known: {METRICS}")


def score(preds: Tensor, target: Tensor, metric: Metric, num_classes: int) -> float:
    """``metric`` of predicted class indices (or N x C scores, arg-maxed) against ``target``."""
    check_metric(metric)
    if preds.ndim == 2:
        preds = preds.argmax(1)
    preds, target = preds.cpu(), target.cpu()
    if metric == "accuracy":
        return float(multiclass_accuracy(preds, target, num_classes, average="micro"))
    per_class = multiclass_accuracy(preds, target, num_classes, average="none")
    present = torch.bincount(target, minlength=num_classes) > 0
    return float(per_class[present].to(torch.float64).mean())


def score_heads(preds: Tensor, target: Tensor, metric: Metric, num_classes: int, finite: Tensor) -> Tensor:
    """Per-head ``metric`` (float64, G) of G x N predicted classes; a head whose logits were not all
    finite (``finite[g]`` False: it diverged) scores NaN."""
    out = torch.full((preds.shape[0],), float("nan"), dtype=torch.float64)
    for g in range(preds.shape[0]):
        if finite[g]:
            out[g] = score(preds[g], target, metric, num_classes)
    return out
