"""linear_probe: validation carved from training data only, selection, refit, one test evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from intern_transfer.probe import LBFGSSearch, SGDGrid, linear_probe, score, stratified_split

FAST_GRID = SGDGrid(lrs=(1e-3, 1e-2, 0.1), weight_decays=(1e-5, 1e-3), momenta=(0.9,), iterations=300)
FAST_SEARCH = LBFGSSearch(max_iter=100)


pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(1).permutation(len(y))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])
    return x[:1300], y[:1300], x[1300:], y[1300:]


def test_stratified_split_partitions_each_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 21 + [2] * 2 + [3] * 1)[torch.randperm(74)]
    train_idx, val_idx = stratified_split(labels, 0.2, seed=3)
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(74))
    val_counts = torch.bincount(labels[val_idx], minlength=4).tolist()
    assert val_counts == [10, 4, 1, 0]  # round(0.2 n), at least 1, never a class's only sample
    again = stratified_split(labels, 0.2, seed=3)
    assert torch.equal(again[1], val_idx)
    assert not torch.equal(stratified_split(labels, 0.2, seed=4)[1], val_idx)


def test_selection_never_sees_the_test_set(digits) -> None:
    xtr, ytr, xte, yte = digits
    kwargs = {"sgd_grid": FAST_GRID, "lbfgs_search": FAST_SEARCH, "seed": 0}
    honest = linear_probe(xtr, ytr, xte, yte, **kwargs)
    poisoned = linear_probe(xtr, ytr, torch.full_like(xte, float("nan")), yte.flip(0), **kwargs)
    assert (
        poisoned.summary()["strategies"]["sgd"]["search"] == honest.summary()["strategies"]["sgd"]["search"]
    )
    for name in ("sgd", "lbfgs"):
        assert poisoned.results[name].hparams == honest.results[name].hparams
        assert poisoned.results[name].val_score == honest.results[name].val_score
    assert poisoned.strategy == honest.strategy and torch.equal(poisoned.val_indices, honest.val_indices)
    # The validation samples are training samples, stratified: every class is in them.
    assert set(ytr[honest.val_indices].tolist()) == set(range(10))
    assert abs(len(honest.val_indices) - 0.2 * len(ytr)) <= 10


@pytest.mark.parametrize("metric", ["accuracy", "mean_per_class_accuracy"])
def test_probe_reports_the_better_strategy_and_both_test_numbers(digits, metric: str) -> None:
    xtr, ytr, xte, yte = digits
    result = linear_probe(
        xtr, ytr, xte, yte, metric=metric, sgd_grid=FAST_GRID, lbfgs_search=FAST_SEARCH, seed=0
    )
    sgd, lbfgs = result.results["sgd"], result.results["lbfgs"]
    assert result.strategy == ("sgd" if sgd.val_score >= lbfgs.val_score else "lbfgs")
    assert set(sgd.hparams) == {"lr", "weight_decay", "momentum"} and set(lbfgs.hparams) == {"C", "l2"}
    assert len(sgd.search) == 6 and 7 <= len(lbfgs.search) <= 15
    assert sgd.val_score == max(s["val_score"] for s in sgd.search)
    reference = accuracy_score if metric == "accuracy" else balanced_accuracy_score
    for r in (sgd, lbfgs):
        assert r.test_logits.shape == (len(yte), 10)
        assert r.test_score == pytest.approx(reference(yte.numpy(), r.test_logits.argmax(1).numpy()))
        assert r.test_score > 0.9  # digits are easy; both strategies work
    assert result.test_probs.sum(1).sub(1).abs().max() < 1e-5
    assert torch.equal(result.test_preds, result.test_logits.argmax(1))
    json.dumps(result.summary())


def test_single_strategy(digits) -> None:
    xtr, ytr, xte, yte = digits
    result = linear_probe(xtr, ytr, xte, yte, strategy="lbfgs", lbfgs_search=FAST_SEARCH)
    assert result.strategy == "lbfgs" and set(result.results) == {"lbfgs"}
    with pytest.raises(ValueError, match="unknown strategy"):
        linear_probe(xtr, ytr, xte, yte, strategy="adam")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_mean_per_class_accuracy_matches_sklearn_with_an_absent_class() -> None:
    target = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 3, 0, 1, 3, 2])  # class 3 is predicted but never a target
    expected = balanced_accuracy_score(target.numpy(), preds.numpy())
    assert score(preds, target, "mean_per_class_accuracy", 4) == pytest.approx(expected)
    assert score(preds, target, "accuracy", 4) == pytest.approx(4 / 6)
