"""False positive rate at fixed recall, one-vs-rest per class, averaged (GV-B's extra metric, Table 33).

Per class c, the ROC of the scores ``preds[:, c]`` against ``target == c`` with every threshold kept
(scikit-learn's ``roc_curve(..., drop_intermediate=False)``): one point per distinct score, plus
(0, 0). FPR at recall r is the smallest FPR among the points with TPR >= r (a step read-out, no
interpolation); as both rates grow along the curve, that is the FPR of the first point reaching r.

Ties: samples with equal scores form one ROC point (a threshold accepts all of them or none), so a
tie straddling recall r is read at its far end; nothing is interpolated inside the tie. The result
is therefore independent of sample order (and of how samples were split across processes).

Classes with no positive or no negative sample have no ROC and are left out of the means.

Summary: ``neglog10_fpr@r`` is the mean over classes of ``-log10(max(FPR, floor))``. An FPR of 0
(the class is separated at that recall) has no logarithm; by default its floor is
``1 / number of negatives`` of that class, i.e. FPR 0 is read as "below one negative sample", which
depends only on the test set's size. ``fpr_floor`` sets a fixed floor instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from intern_bench.metrics._state import add_list_states, append, read


def roc_points(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR at every distinct score (descending) with (0, 0) first, as ``drop_intermediate=False``."""
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tps = np.cumsum(positive, dtype=np.float64)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1]


def fpr_at_recall(fpr: np.ndarray, tpr: np.ndarray, recall: float) -> float:
    """Smallest FPR among the ROC points with TPR >= ``recall``."""
    reached = tpr >= recall
    return float(fpr[reached].min()) if reached.any() else float("nan")


class FPRAtRecall(Metric):
    """Mean one-vs-rest FPR at each recall, and the mean ``-log10`` of it; rules in the module docstring.

    ``update(preds, target)``: ``preds`` N x C class scores (any monotone score per column: the ROC of
    class c ranks samples by column c only, so probabilities and logits can differ), ``target`` N
    class indices. ``compute()`` returns ``fpr@<r>`` and ``neglog10_fpr@<r>`` for each recall r;
    :meth:`per_class` gives the per-class values.

    Args:
        num_classes: C.
        recalls: recall levels (0.9, 0.95, 0.99).
        fpr_floor: fixed floor for the ``-log10`` summary; ``None``: 1 / negatives of each class.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        recalls: Sequence[float] = (0.9, 0.95, 0.99),
        fpr_floor: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.recalls = tuple(float(r) for r in recalls)
        if fpr_floor is not None and not fpr_floor > 0:
            raise ValueError(f"fpr_floor must be positive, got {fpr_floor}")
        self.fpr_floor = fpr_floor
        add_list_states(self, ("preds", "target"))

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add N samples: ``preds`` N x C scores, ``target`` N class indices."""
        if preds.ndim != 2 or preds.shape[1] != self.num_classes:
            raise ValueError(f"preds must be N x {self.num_classes}, got shape {tuple(preds.shape)}")
        if target.reshape(-1).numel() != preds.shape[0]:
            raise ValueError(f"got {target.numel()} targets for {preds.shape[0]} predictions")
        append(self, "preds", preds)
        append(self, "target", target)

    def per_class(self) -> dict[str, np.ndarray]:
        """``classes`` (those with positives and negatives), ``fpr`` (classes x recalls) and ``floor``."""
        target = read(self, "target").astype(np.int64)
        preds = read(self, "preds").reshape(target.size, self.num_classes)
        classes, rows, floors = [], [], []
        for cls in range(self.num_classes):
            positive = target == cls
            num_neg = int((~positive).sum())
            if not positive.any() or num_neg == 0:
                continue
            fpr, tpr = roc_points(preds[:, cls], positive)
            classes.append(cls)
            rows.append([fpr_at_recall(fpr, tpr, r) for r in self.recalls])
            floors.append(self.fpr_floor if self.fpr_floor is not None else 1.0 / num_neg)
        return {
            "classes": np.asarray(classes, dtype=np.int64),
            "fpr": np.asarray(rows, dtype=np.float64).reshape(len(classes), len(self.recalls)),
            "floor": np.asarray(floors, dtype=np.float64),
        }

    def compute(self) -> dict[str, Tensor]:
        """``fpr@<r>`` (mean FPR) and ``neglog10_fpr@<r>`` (mean -log10 FPR) per recall r (NaN: no class)."""
        table = self.per_class()
        fpr = table["fpr"]
        neglog = -np.log10(np.maximum(fpr, table["floor"][:, None]))
        out = {}
        for j, r in enumerate(self.recalls):
            has = fpr.shape[0] > 0
            out[f"fpr@{r:g}"] = torch.tensor(
                float(fpr[:, j].mean()) if has else float("nan"), dtype=torch.float64
            )
            out[f"neglog10_fpr@{r:g}"] = torch.tensor(
                float(neglog[:, j].mean()) if has else float("nan"), dtype=torch.float64
            )
        return out
