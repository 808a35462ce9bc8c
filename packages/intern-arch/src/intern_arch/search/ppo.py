"""PPO for the controller (INTERN paper 4.3; Schulman et al. 2017, clipped surrogate objective).

One episode is one sampled architecture and its reward. The advantage is the reward minus a moving
average of past rewards (MnasNet's and ENAS's baseline), divided by the batch's reward spread; each
update runs ``epochs`` passes of the clipped objective plus an entropy bonus over the batch.

Written here rather than taken from torchrl or stable-baselines3: both expect an environment and
per-step value networks; this policy has one step (a sequence) and one scalar reward, so the objective
is the few lines below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .controller import Controller

__all__ = ["PPO", "PPOSettings"]


@dataclass(frozen=True)
class PPOSettings:
    """Optimiser and objective settings (clip 0.2 and the entropy bonus as in the PPO paper)."""

    lr: float = 0.03
    clip: float = 0.2
    epochs: int = 4
    entropy_weight: float = 0.1
    baseline_decay: float = 0.9
    advantage_eps: float = 1e-3
    max_grad_norm: float = 1.0


class PPO:
    """Updates a :class:`Controller` from batches of (tokens, log-probabilities at sampling, rewards)."""

    def __init__(self, controller: Controller, settings: PPOSettings) -> None:
        self.controller = controller
        self.settings = settings
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=settings.lr)
        self.baseline: float | None = None
        self.scale: float | None = None
        self.updates = 0

    def advantages(self, rewards: Tensor) -> Tensor:
        """Reward minus the moving-average baseline, over a moving average of the batches' spread."""
        spread = float(rewards.std(unbiased=False))
        if self.baseline is None or self.scale is None:
            self.baseline, self.scale = float(rewards.mean()), spread
        else:
            self.scale = self._average(self.scale, spread)
        return (rewards - self.baseline) / (self.scale + self.settings.advantage_eps)

    def _average(self, old: float, new: float) -> float:
        return self.settings.baseline_decay * old + (1 - self.settings.baseline_decay) * new

    def update(self, tokens: Tensor, old_log_probs: Tensor, rewards: Tensor) -> dict[str, float]:
        """One PPO update on a batch; returns the mean objective terms of its last epoch."""
        s = self.settings
        advantages = self.advantages(rewards)
        for _ in range(s.epochs):
            log_probs, entropy = self.controller(tokens)
            ratio = torch.exp(log_probs - old_log_probs)
            surrogate = torch.min(ratio * advantages, ratio.clamp(1 - s.clip, 1 + s.clip) * advantages)
            loss = -surrogate.mean() - s.entropy_weight * entropy.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), s.max_grad_norm)
            self.optimizer.step()
        self.baseline = self._average(self.baseline, float(rewards.mean()))
        self.updates += 1
        return {"loss": loss.item(), "entropy": entropy.mean().item(), "baseline": self.baseline}

    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "scale": self.scale,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline, self.scale = state["baseline"], state["scale"]
        self.updates = state["updates"]
