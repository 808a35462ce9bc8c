"""The classification linear probe on cached features: search, select on validation, refit, test once.

:func:`linear_probe` carves a stratified validation split out of the training features (the test
features play no part until the end), searches each strategy's hyperparameters on it
(:mod:`.sgd_grid`: the SGD grid; :mod:`.lbfgs`: the L2 search), refits each strategy's chosen
setting on the whole training set, evaluates each refitted head once on the test set, and reports
the strategy with the better validation score (ties go to SGD, the paper's first strategy) together
with both test numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from intern_transfer.probe.heads import LinearHeads
from intern_transfer.probe.lbfgs import LBFGSSearch, fit_logistic_lbfgs, search_regularisation
from intern_transfer.probe.metrics import Metric, check_metric, score
from intern_transfer.probe.sgd_grid import SGDGrid, SGDSetting, train_sgd_grid

Strategy = Literal["both", "sgd", "lbfgs"]


def stratified_split(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Sorted (train, validation) indices: each class's samples shuffled with ``seed``, the first
    ``round(val_fraction * n_c)`` go to validation, at least 1 and at most ``n_c - 1``, so every class
    with two or more samples is in both parts (a class with one sample stays in training)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).squeeze(1)
        members = members[torch.randperm(members.numel(), generator=generator)]
        n_val = min(max(round(val_fraction * members.numel()), 1), members.numel() - 1)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    train_idx, val_idx = torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values
    if val_idx.numel() == 0:
        raise ValueError("no class has two samples: the training set is too small for a validation split")
    return train_idx, val_idx


@dataclass
class StrategyResult:
    """One strategy's outcome.

    Attributes:
        strategy: ``"sgd"`` or ``"lbfgs"``.
        hparams: the chosen setting (``lr``, ``weight_decay``, ``momentum``; or ``C`` and ``l2``).
        val_score: the chosen setting's validation score (trained on the training part only).
        test_score: the refitted head's test score.
        test_logits: N_test x C logits of the refitted head (any monotone score works for FPR@recall).
        head: the refitted head (one-head :class:`LinearHeads`, applies to raw features).
        search: every setting tried, with its validation score.
        seconds: wall-clock time of search + refit + test.
    """

    strategy: str
    hparams: dict[str, float]
    val_score: float
    test_score: float
    test_logits: Tensor
    head: LinearHeads
    search: list[dict[str, float]] = field(repr=False)
    seconds: float = 0.0


@dataclass
class ProbeResult:
    """The probe's outcome: the strategy chosen on validation and every strategy's numbers."""

    strategy: str
    metric: str
    num_classes: int
    results: dict[str, StrategyResult]
    val_indices: Tensor = field(repr=False)

    @property
    def best(self) -> StrategyResult:
        return self.results[self.strategy]

    @property
    def hparams(self) -> dict[str, float]:
        return self.best.hparams

    @property
    def val_score(self) -> float:
        return self.best.val_score

    @property
    def test_score(self) -> float:
        return self.best.test_score

    @property
    def test_logits(self) -> Tensor:
        return self.best.test_logits

    @property
    def test_probs(self) -> Tensor:
        return torch.softmax(self.best.test_logits.double(), 1).float()

    @property
    def test_preds(self) -> Tensor:
        return self.best.test_logits.argmax(1)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable numbers (no tensors)."""
        return {
            "strategy": self.strategy,
            "metric": self.metric,
            "num_classes": self.num_classes,
            "val_score": self.val_score,
            "test_score": self.test_score,
            "hparams": self.hparams,
            "strategies": {
                name: {
                    "hparams": r.hparams,
                    "val_score": r.val_score,
                    "test_score": r.test_score,
                    "seconds": r.seconds,
                    "search": r.search,
                }
                for name, r in self.results.items()
            },
        }


def _nan_to_low(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def linear_probe(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    *,
    strategy: Strategy = "both",
    val_fraction: float = 0.2,
    seed: int = 0,
    metric: Metric = "accuracy",
    num_classes: int | None = None,
    sgd_grid: SGDGrid | None = None,
    lbfgs_search: LBFGSSearch | None = None,
    standardize: bool = True,
    device: str | torch.device | None = None,
) -> ProbeResult:
    """Linear probe of cached features with the paper's two strategies (module docstring).

    Args:
        train_feats, train_labels: training features N x D and labels N.
        test_feats, test_labels: test features and labels, used once, after selection.
        strategy: ``"both"`` (report the better on validation), ``"sgd"`` or ``"lbfgs"``.
        val_fraction: share of each class's training samples held out for selection.
        seed: the validation split and the SGD batch order.
        metric: ``"accuracy"`` or ``"mean_per_class_accuracy"`` (the task's metric, Table 31).
        num_classes: C; default ``max label + 1`` over training and test labels.
        sgd_grid: strategy 1's grid and schedule (defaults: :class:`SGDGrid`).
        lbfgs_search: strategy 2's search (defaults: :class:`LBFGSSearch`).
        standardize: standardise features with training statistics for the SGD grid (recomputed for
            the refit); the L-BFGS strategy follows ``lbfgs_search.standardize``.
        device: where to train (default the features' device).
    """
    check_metric(metric)
    if strategy not in ("both", "sgd", "lbfgs"):
        raise ValueError(f"unknown strategy {strategy!r}; choose 'both', 'sgd' or 'lbfgs'")
    if train_feats.shape[0] != train_labels.shape[0] or test_feats.shape[0] != test_labels.shape[0]:
        raise ValueError("features and labels disagree in length")
    num_classes = num_classes or int(max(int(train_labels.max()), int(test_labels.max()))) + 1
    train_idx, val_idx = stratified_split(train_labels, val_fraction, seed)
    fit_x, fit_y = train_feats[train_idx], train_labels[train_idx]
    val_x, val_y = train_feats[val_idx], train_labels[val_idx]
    common = {"num_classes": num_classes, "metric": metric, "device": device}
    sgd_common = {**common, "standardize": standardize}
    results: dict[str, StrategyResult] = {}

    if strategy in ("both", "sgd"):
        start = time.perf_counter()
        grid = sgd_grid or SGDGrid()
        searched = train_sgd_grid(fit_x, fit_y, val_x, val_y, grid=grid, seed=seed, **sgd_common)
        assert searched.val_scores is not None
        chosen: SGDSetting = searched.best_setting
        refit = train_sgd_grid(
            train_feats, train_labels, grid=grid, settings=[chosen], seed=seed, **sgd_common
        )
        results["sgd"] = _evaluate(
            "sgd",
            chosen._asdict(),
            float(searched.val_scores[searched.best_index]),
            refit.heads,
            test_feats,
            test_labels,
            metric,
            num_classes,
            [
                {**s._asdict(), "val_score": float(v)}
                for s, v in zip(searched.settings, searched.val_scores, strict=True)
            ],
            start,
        )

    if strategy in ("both", "lbfgs"):
        start = time.perf_counter()
        search = lbfgs_search or LBFGSSearch()
        found = search_regularisation(fit_x, fit_y, val_x, val_y, search=search, **common)
        best = found.best_fit
        full = search.standardizer(train_feats)
        x = full(train_feats.to(found.heads.weight.device, found.heads.weight.dtype))
        refit_fit = fit_logistic_lbfgs(
            x,
            train_labels.to(x.device),
            C=best.C,
            num_classes=num_classes,
            max_iter=search.max_iter,
            tolerance_grad=search.tolerance_grad,
            history_size=search.history_size,
            init=(best.weight, best.bias) if search.warm_start else None,
            chunk_size=search.chunk_size,
        )
        head = LinearHeads(refit_fit.weight[None], refit_fit.bias[None], full)
        results["lbfgs"] = _evaluate(
            "lbfgs",
            {"C": best.C, "l2": refit_fit.l2},
            next(v for C, v in found.evaluated if C == best.C),
            head,
            test_feats,
            test_labels,
            metric,
            num_classes,
            [
                {
                    "C": C,
                    "val_score": v,
                    "val_loss": found.val_losses[C],
                    "iterations": found.fits[C].iterations,
                }
                for C, v in found.evaluated
            ],
            start,
        )

    chosen_strategy = max(results, key=lambda name: (_nan_to_low(results[name].val_score), name == "sgd"))
    return ProbeResult(chosen_strategy, metric, num_classes, results, val_idx)


def _evaluate(
    name: str,
    hparams: dict[str, float],
    val_score: float,
    head: LinearHeads,
    test_feats: Tensor,
    test_labels: Tensor,
    metric: Metric,
    num_classes: int,
    search: list[dict[str, float]],
    start: float,
) -> StrategyResult:
    logits = head.logits(test_feats.to(head.weight.device))[0].float().cpu()
    test_score = score(logits, test_labels, metric, num_classes) if torch.isfinite(logits).all() else math.nan
    return StrategyResult(
        name, hparams, val_score, test_score, logits, head, search, time.perf_counter() - start
    )
