"""Online loss monitoring and low-cost auto-resume (INTERN paper, section 5.2.2).

When a batch's loss rises more than `threshold` above the recent trend, its update is skipped, the
weights and optimiser state are rolled back `rollback_steps` iterations from an in-memory ring of
snapshots, and training continues with the next batch.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
from collections import deque
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["LossGuard"]

log = logging.getLogger(__name__)


def _to_cpu(obj: Any) -> Any:
    """Deep copy of a (nested) state dict with every tensor detached and copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


class LossGuard(Callback):
    """Skip loss spikes and roll the model and optimiser back a few iterations (automatic optimisation).

    How it works with Lightning's automatic optimisation:

    - `on_before_backward` accumulates the (already `1 / accumulate_grad_batches`-scaled) loss of the
      micro-batches of the coming optimiser step.
    - `on_before_optimizer_step` runs after backward and before `optimizer.step()`. There the loss is
      averaged across ranks (so every rank takes the same decision) and compared with the trend. On a
      spike every gradient is set to `None`, which makes the step a no-op: torch's optimisers (SGD,
      AdamW, ...) skip parameters whose `.grad` is `None`, weight decay and step counters included.
      Then the model `state_dict` (buffers too) and the optimiser state are restored from the newest
      snapshot at least `rollback_steps` iterations old (or the oldest one held).
    - `on_train_batch_end` snapshots the state after every `snapshot_every`-th optimiser step into a ring
      (deep copies, on the CPU by default).

    The spiky batch is still back-propagated (a callback cannot cancel Lightning's backward); only its
    update is dropped. The learning-rate schedule, `global_step` and an AMP grad scaler are not rolled
    back. The ring lives in memory only: a resumed run starts with an empty ring (it rolls back to the
    oldest snapshot it has), while the counters and trend are saved in the checkpoint. Snapshots of a
    sharded model (FSDP, DeepSpeed) are not supported.

    Args:
        threshold: A loss more than this above the trend is a spike (paper: 0.5).
        relative: Compare `(loss - trend) / |trend|` with the threshold instead of `loss - trend`.
        rollback_steps: How many iterations to go back (paper: 10).
        snapshot_every: Snapshot every k-th iteration (memory and copy time shrink by k).
        trend: `"ema"` (exponential moving average with span `window`) or `"median"` of the last
            `window` accepted losses.
        window: Span of the EMA or length of the median window.
        warmup: Number of accepted losses before spikes are looked for (non-finite losses are always
            skipped).
        offload_to_cpu: Keep snapshots on the CPU (otherwise on the parameters' device).
        enabled: Switch the guard off without removing it from the config.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        relative: bool = False,
        rollback_steps: int = 10,
        snapshot_every: int = 1,
        trend: Literal["ema", "median"] = "ema",
        window: int = 20,
        warmup: int = 10,
        offload_to_cpu: bool = True,
        enabled: bool = True,
    ) -> None:
        super().__init__()
        if trend not in ("ema", "median"):
            raise ValueError(f"trend must be 'ema' or 'median', got {trend!r}")
        if rollback_steps < 1 or snapshot_every < 1 or window < 1:
            raise ValueError("rollback_steps, snapshot_every and window must be >= 1")
        self.threshold = threshold
        self.relative = relative
        self.rollback_steps = rollback_steps
        self.snapshot_every = snapshot_every
        self.trend_kind = trend
        self.window = window
        self.warmup = warmup
        self.offload_to_cpu = offload_to_cpu
        self.enabled = enabled
        # persistent state
        self.rollbacks = 0
        self.events: list[tuple[int, float, float]] = []  # (global_step, loss, trend)
        self.ema: float | None = None
        self.history: deque[float] = deque(maxlen=window)
        self.accepted = 0
        # per-run state
        self._ring: deque[tuple[int, dict[str, Any], list[dict[str, Any]]]] = deque(
            maxlen=rollback_steps // snapshot_every + 2
        )
        self._pending: torch.Tensor | None = None
        self._stepped = False
        self._rolled_back = False

    # trend ------------------------------------------------------------------------------------------
    @property
    def trend(self) -> float | None:
        """The current trend of accepted losses (`None` before the first one)."""
        if self.trend_kind == "ema":
            return self.ema
        return statistics.median(self.history) if self.history else None

    def _accept(self, loss: float) -> None:
        self.history.append(loss)
        beta = 2.0 / (self.window + 1)
        self.ema = loss if self.ema is None else (1 - beta) * self.ema + beta * loss
        self.accepted += 1

    def is_spike(self, loss: float) -> bool:
        """Whether `loss` is a spike against the current trend."""
        if not math.isfinite(loss):
            return True
        trend = self.trend
        if trend is None or self.accepted < self.warmup:
            return False
        excess = loss - trend
        if self.relative:
            excess /= max(abs(trend), 1e-12)
        return excess > self.threshold

    # snapshots --------------------------------------------------------------------------------------
    def _copy(self, state: Any) -> Any:
        return _to_cpu(state) if self.offload_to_cpu else copy.deepcopy(state)

    def _snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ring.append(
            (
                trainer.global_step,
                self._copy(pl_module.state_dict()),
                [self._copy(opt.state_dict()) for opt in trainer.optimizers],
            )
        )

    def _restore(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
        target = trainer.global_step - self.rollback_steps
        older = [i for i, (step, _, _) in enumerate(self._ring) if step <= target]
        index = older[-1] if older else 0
        step, model_state, opt_states = self._ring[index]
        pl_module.load_state_dict(model_state)
        for opt, state in zip(trainer.optimizers, opt_states, strict=True):
            # a deep copy: `Optimizer.load_state_dict` may keep references to same-device tensors
            opt.load_state_dict(copy.deepcopy(state))
        for _ in range(len(self._ring) - index - 1):  # the abandoned future
            self._ring.pop()
        return step

    # hooks ------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and not self._ring:
            self._snapshot(trainer, pl_module)

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if self.enabled:
            loss = loss.detach().float()
            self._pending = loss if self._pending is None else self._pending + loss

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self.enabled or self._pending is None:
            return
        pending, self._pending = self._pending, None
        loss = float(trainer.strategy.reduce(pending, reduce_op="mean"))
        self._stepped = True
        if not self.is_spike(loss):
            self._accept(loss)
            return
        trend = self.trend if self.trend is not None else float("nan")
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    p.grad = None
        restored = self._restore(trainer, pl_module)
        self.rollbacks += 1
        self.events.append((trainer.global_step, loss, trend))
        self._rolled_back = True
        if trainer.is_global_zero:
            log.warning(
                "loss guard: step %d loss %.4g > trend %.4g + %g, update skipped, rolled back to step %d "
                "(rollback %d)",
                trainer.global_step,
                loss,
                trend,
                self.threshold,
                restored,
                self.rollbacks,
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.enabled or not self._stepped:
            return
        self._stepped = False
        if not self._rolled_back and trainer.global_step % self.snapshot_every == 0:
            self._snapshot(trainer, pl_module)
        self._rolled_back = False
        pl_module.log("loss_guard/rollbacks", float(self.rollbacks), on_step=True, on_epoch=False)
        if self.trend is not None:
            pl_module.log("loss_guard/trend", float(self.trend), on_step=True, on_epoch=False)

    # checkpointing ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rollbacks": self.rollbacks,
            "events": list(self.events),
            "ema": self.ema,
            "history": list(self.history),
            "accepted": self.accepted,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rollbacks = int(state_dict["rollbacks"])
        self.events = [tuple(e) for e in state_dict["events"]]  # type: ignore[misc]
        self.ema = state_dict["ema"]
        self.history = deque(state_dict["history"], maxlen=self.window)
        self.accepted = int(state_dict["accepted"])
