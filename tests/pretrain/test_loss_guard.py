"""LossGuard on a tiny linear regression with one injected loss spike."""

from __future__ import annotations

import copy
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.core.callbacks import LossGuard

STEPS, SPIKE, DIM = 40, 25, 8


class _Regression(pl.LightningModule):
    def __init__(self, optimizer: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(DIM, 1)
        self.optimizer = optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self.linear(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.5, weight_decay=1e-3)
        return torch.optim.AdamW(self.parameters(), lr=0.05, weight_decay=0.1)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(DIM, 1, generator=g) / DIM**0.5
    out = []
    for i in range(STEPS):
        x = torch.randn(16, DIM, generator=g)
        y = x @ w + 0.01 * torch.randn(16, 1, generator=g)
        out.append((x, y * 1000.0 if i == SPIKE else y))
    return out


class _Recorder(pl.Callback):
    """Weights and optimiser state after every training batch."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []
        self.optim: list[dict[str, Any]] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.weights.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})
        self.optim.append(copy.deepcopy(trainer.optimizers[0].state_dict()))
        self.losses.append(float(outputs["loss"]))


def _train(optimizer: str, guard: LossGuard | None) -> tuple[_Regression, _Recorder]:
    model, recorder = _Regression(optimizer), _Recorder()
    callbacks: list[pl.Callback] = [recorder] if guard is None else [guard, recorder]
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(_batches(), batch_size=None))
    return model, recorder


def _assert_state_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum(float((a[k] - b[k]).norm()) for k in a)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_spike_is_skipped_and_rolled_back(optimizer: str) -> None:
    guard = LossGuard(threshold=0.5, rollback_steps=10)
    model, rec = _train(optimizer, guard)
    assert guard.rollbacks == 1
    ((step, loss, trend),) = guard.events
    assert step == SPIKE and loss > 1e3 and trend < 0.5
    # after the spiky batch the weights and optimiser state are those after batch SPIKE - 11,
    # i.e. 10 updates before the spike: its own update (weight decay included) never happened
    _assert_state_equal(rec.weights[SPIKE], rec.weights[SPIKE - 11])
    _assert_state_equal(rec.optim[SPIKE]["state"], rec.optim[SPIKE - 11]["state"])
    assert _distance(rec.weights[SPIKE], rec.weights[SPIKE - 1]) > 0
    # training continued from there and converged
    assert _distance(rec.weights[-1], rec.weights[SPIKE]) > 0
    final = sum(rec.losses[-5:]) / 5
    assert final < 0.05 and final < rec.losses[0] / 10
    assert guard.state_dict()["rollbacks"] == 1


def test_without_guard_the_spike_perturbs_the_weights() -> None:
    _, guarded = _train("sgd", LossGuard())
    _, plain = _train("sgd", None)
    for k in range(SPIKE):  # identical up to the spike
        _assert_state_equal(plain.weights[k], guarded.weights[k])
    jump = _distance(plain.weights[SPIKE], plain.weights[SPIKE - 1])
    usual = _distance(plain.weights[SPIKE - 1], plain.weights[SPIKE - 2])
    assert jump > 100 * usual
    assert plain.losses[SPIKE + 1] > 100 * guarded.losses[SPIKE + 1]
    _disabled_model, disabled = _train("sgd", LossGuard(enabled=False))
    _assert_state_equal(disabled.weights[SPIKE], plain.weights[SPIKE])


def test_state_dict_round_trip_and_trend() -> None:
    guard = LossGuard(trend="median", window=3, warmup=2)
    for loss in (4.0, 3.0, 2.0, 1.0, 2.2):
        assert not guard.is_spike(loss)
        guard._accept(loss)
    assert guard.trend == 2.0  # median of the last 3: 2, 1, 2.2
    assert guard.is_spike(2.6) and not guard.is_spike(2.4) and guard.is_spike(float("nan"))
    guard.rollbacks, guard.events = 2, [(5, 9.0, 3.0), (7, 8.0, 3.0)]
    other = LossGuard(trend="median", window=3, warmup=2)
    other.load_state_dict(guard.state_dict())
    assert other.rollbacks == 2 and other.events == guard.events and other.trend == 2.0
    relative = LossGuard(relative=True, warmup=0)
    relative._accept(10.0)
    assert not relative.is_spike(14.0) and relative.is_spike(16.0)
