"""The vectorised SGD grid against torch.optim.SGD training each head alone on the same batches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from intern_transfer.probe import (
    SGDGrid,
    SGDSetting,
    Standardizer,
    log_grid,
    minibatch_indices,
    score,
    train_sgd_grid,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


def _data(n: int, d: int, c: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    centres = torch.randn(c, d, generator=g, dtype=torch.float64)
    x = 3 * (centres[y] + 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)) + 2
    return x.to(dtype), y


def _train_alone(
    x: torch.Tensor, y: torch.Tensor, setting: SGDSetting, grid: SGDGrid, batches: torch.Tensor, c: int
) -> torch.nn.Linear:
    """One head with torch.optim.SGD(nesterov=True) + MultiStepLR and autograd: the reference."""
    head = torch.nn.Linear(x.shape[1], c).to(x.dtype)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.SGD(
        head.parameters(),
        lr=setting.lr,
        momentum=setting.momentum,
        weight_decay=setting.weight_decay,
        nesterov=grid.nesterov,
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, grid.milestone_steps(), grid.gamma)
    for idx in batches:
        opt.zero_grad()
        F.cross_entropy(head(x[idx]), y[idx]).backward()
        opt.step()
        sched.step()
    return head


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_grid_equals_each_head_trained_alone(dtype: torch.dtype, tol: float) -> None:
    n, d, c = 240, 12, 4
    x, y = _data(n, d, c, dtype)
    xv, yv = _data(90, d, c, dtype, seed=1)
    grid = SGDGrid(
        lrs=(1e-3, 0.05, 0.5), weight_decays=(1e-5, 1e-2), momenta=(0.9, 0.99), iterations=150, batch_size=16
    )
    result = train_sgd_grid(x, y, xv, yv, grid=grid, seed=7, dtype=dtype)
    assert result.heads.weight.shape == (12, d, c) and len(result.settings) == 12
    assert result.val_scores is not None

    standardizer = Standardizer.fit(x)
    xs, xvs = standardizer(x), standardizer(xv)
    batches = minibatch_indices(n, grid.batch_size, grid.iterations, seed=7)
    for g, setting in enumerate(result.settings):
        head = _train_alone(xs, y, setting, grid, batches, c)
        scale = max(1.0, float(head.weight.detach().abs().max()))
        torch.testing.assert_close(result.heads.weight[g], head.weight.detach().T, rtol=0, atol=tol * scale)
        torch.testing.assert_close(result.heads.bias[g], head.bias.detach(), rtol=0, atol=tol * scale)
        with torch.no_grad():
            expected_val = score(head(xvs), yv, "accuracy", c)
        assert float(result.val_scores[g]) == pytest.approx(expected_val)
    # The stacked heads apply to raw features; as_linear folds the standardisation in.
    linear = result.heads.as_linear(3)
    torch.testing.assert_close(
        linear(xv.float()).double(), result.heads.logits(xv)[3].double(), rtol=1e-4, atol=1e-4
    )


def test_defaults_are_the_papers_grid() -> None:
    grid = SGDGrid()
    assert grid.lrs[0] == pytest.approx(1e-4) and grid.lrs[-1] == pytest.approx(0.1) and len(grid.lrs) == 7
    assert list(grid.weight_decays) == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3])
    assert tuple(grid.momenta) == (0.9, 0.99) and grid.nesterov
    assert (grid.iterations, grid.batch_size) == (10_000, 64)
    assert grid.milestone_steps() == [3000, 6000, 9000]
    assert len(grid.settings()) == 56
    assert log_grid(1e-3, 1e-3) == (1e-3,)


def test_batches_are_full_and_cover_each_epoch() -> None:
    batches = minibatch_indices(10, 4, 10, seed=0)  # 40 draws = 4 epochs of 10
    assert batches.shape == (10, 4)
    flat = batches.flatten()
    for epoch in range(4):
        assert sorted(flat[10 * epoch : 10 * (epoch + 1)].tolist()) == list(range(10))
    assert torch.equal(batches, minibatch_indices(10, 4, 10, seed=0))


def test_a_diverging_head_scores_nan_and_leaves_the_others_alone() -> None:
    x, y = _data(120, 6, 3, torch.float32)
    grid = SGDGrid(iterations=60, batch_size=16)
    sane = SGDSetting(0.05, 1e-4, 0.9)
    wild = SGDSetting(1e4, 10.0, 0.99)  # lr * wd >> 2: the weight decay term explodes
    both = train_sgd_grid(x, y, x, y, grid=grid, settings=[wild, sane])
    alone = train_sgd_grid(x, y, x, y, grid=grid, settings=[sane])
    assert both.val_scores is not None and alone.val_scores is not None
    assert math.isnan(float(both.val_scores[0])) and both.best_index == 1
    assert torch.equal(both.heads.weight[1], alone.heads.weight[0])
    assert float(both.val_scores[1]) == float(alone.val_scores[0])
