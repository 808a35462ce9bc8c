"""L-BFGS logistic regression against scikit-learn's LogisticRegression, and CLIP's C search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from intern_transfer.probe import (
    LBFGSSearch,
    fit_logistic_lbfgs,
    l2_strength,
    search_regularisation,
)
from intern_transfer.probe.lbfgs import logistic_loss_grad

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits, shuffled, 1,200 train / 597 test, standardised on train."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    scaler = StandardScaler().fit(x[:1200])
    return scaler.transform(x[:1200]), y[:1200], scaler.transform(x[1200:]), y[1200:]


@pytest.mark.parametrize("C", [1e-2, 1.0, 100.0])
def test_accuracy_within_one_point_of_sklearn(digits, C: float) -> None:
    xtr, ytr, xte, yte = digits
    reference = LogisticRegression(C=C, max_iter=1000).fit(xtr, ytr)
    fit = fit_logistic_lbfgs(torch.tensor(xtr, dtype=torch.float32), torch.tensor(ytr), C=C)
    preds = (torch.tensor(xte, dtype=torch.float32) @ fit.weight + fit.bias).argmax(1).numpy()
    ours, theirs = float((preds == yte).mean()), reference.score(xte, yte)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    assert fit.converged and fit.iterations <= 1000


@pytest.mark.parametrize("C", [1e-2, 1.0])
def test_same_objective_and_weights_as_sklearn(digits, C: float) -> None:
    """Same C, same optimum: sklearn's minimiser is ours (tight tolerances on both sides, float64)."""
    xtr, ytr, _, _ = digits
    x, y = torch.tensor(xtr), torch.tensor(ytr)
    reference = LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(xtr, ytr)
    fit = fit_logistic_lbfgs(x, y, C=C, max_iter=5000, tolerance_grad=1e-10, tolerance_change=1e-15)
    assert fit.l2 == l2_strength(C, len(ytr)) == 1 / (C * len(ytr))
    ref_w, ref_b = torch.tensor(reference.coef_), torch.tensor(reference.intercept_)
    ref_loss, grad_w, grad_b = logistic_loss_grad(x, y, ref_w, ref_b, fit.l2)
    # sklearn's solution is a stationary point of our objective: the C <-> l2 mapping is exact.
    assert float(grad_w.abs().max()) < 1e-6 and float(grad_b.abs().max()) < 1e-6
    assert fit.loss == pytest.approx(ref_loss, rel=1e-9)
    scale = float(ref_w.abs().max())
    torch.testing.assert_close(fit.weight.T, ref_w, rtol=0, atol=1e-4 * scale)
    torch.testing.assert_close(fit.bias, ref_b, rtol=0, atol=1e-4 * scale)


def test_chunked_objective_equals_full_batch(digits) -> None:
    xtr, ytr, _, _ = digits
    x, y = torch.tensor(xtr), torch.tensor(ytr)
    g = torch.Generator().manual_seed(0)
    w, b = (
        torch.randn(10, 64, generator=g, dtype=torch.float64),
        torch.randn(10, generator=g, dtype=torch.float64),
    )
    full = logistic_loss_grad(x, y, w, b, 1e-3)
    chunked = logistic_loss_grad(x, y, w, b, 1e-3, chunk_size=77)
    assert chunked[0] == pytest.approx(full[0], rel=1e-12)
    torch.testing.assert_close(chunked[1], full[1])
    torch.testing.assert_close(chunked[2], full[2])


def test_warm_start_reaches_the_same_optimum(digits) -> None:
    xtr, ytr, _, _ = digits
    x, y = torch.tensor(xtr), torch.tensor(ytr)
    kwargs = {"C": 0.3, "max_iter": 5000, "tolerance_grad": 1e-9, "tolerance_change": 1e-15}
    cold = fit_logistic_lbfgs(x, y, **kwargs)
    start = fit_logistic_lbfgs(x, y, C=3e-3)
    warm = fit_logistic_lbfgs(x, y, init=(start.weight, start.bias), **kwargs)
    torch.testing.assert_close(warm.weight, cold.weight, rtol=0, atol=1e-5)
    assert warm.loss == pytest.approx(cold.loss, rel=1e-10)


def test_search_follows_clips_parametric_binary_search(digits) -> None:
    xtr, ytr, _, _ = digits
    x, y = torch.tensor(xtr, dtype=torch.float32), torch.tensor(ytr)
    found = search_regularisation(x[:900], y[:900], x[900:], y[900:], search=LBFGSSearch(max_iter=200))
    exponents = [round(float(np.log10(c)), 6) for c, _ in found.evaluated]
    assert exponents[:7] == [-6, -4, -2, 0, 2, 4, 6]  # the coarse grid, two decades apart
    assert len(exponents) == len(set(exponents)) <= 15 and all(-6 <= e <= 6 for e in exponents)
    best = round(float(np.log10(found.best_C)), 6)
    scores = dict(zip(exponents, (s for _, s in found.evaluated), strict=True))
    assert scores[best] == max(scores.values())
    # Refined down to 8 steps per decade around the winner.
    for neighbour in (best - 0.125, best + 0.125):
        assert round(neighbour, 6) in scores or not -6 <= neighbour <= 6
    assert found.heads.weight.shape == (1, 64, 10)
