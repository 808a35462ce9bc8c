"""Optimisers of the stages: two optimisers stepped as one, and the Lightning scheduler configuration.

Up-A-G trains hybrid image towers with AdamW and the text tower with momentum SGD (paper sec. 5.2.1).
Lightning's automatic optimisation steps *one* optimiser per training step; with two optimisers and
manual optimisation, ``trainer.global_step`` counts every optimiser's steps, so step-based schedules,
``max_steps`` and step checkpoints would run at twice the pace. :class:`MixedOptimizer` instead wraps
the two as one ``torch.optim.Optimizer`` (built through its public constructor): one closure call
(forward + backward), then every inner optimiser steps.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["MixedOptimizer", "scheduled"]


class MixedOptimizer(Optimizer):
    """Several optimisers over disjoint parameters, stepped together as one.

    ``param_groups`` are the inner optimisers' own group dicts (so LR schedulers, Lightning's
    ``LearningRateMonitor``, gradient clipping and AMP grad scaling see and change every group) and
    ``state`` is a read view of theirs; ``state_dict()`` holds each inner state dict, and
    ``load_state_dict`` restores them in order.

    Args:
        optimizers: the inner optimisers (at least one); no parameter may belong to two of them.
    """

    def __init__(self, optimizers: Sequence[Optimizer]) -> None:
        if not optimizers:
            raise ValueError("MixedOptimizer needs at least one optimiser")
        params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter belongs to two inner optimisers")
        super().__init__(params, defaults={})
        self.optimizers = list(optimizers)
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]
        self.state = ChainMap(*(opt.state for opt in self.optimizers))  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ",\n".join("  " + repr(opt).replace("\n", "\n  ") for opt in self.optimizers)
        return f"{type(self).__name__}(\n{inner}\n)"

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run ``closure`` once (with gradients enabled), then step every inner optimiser."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if hasattr(self, "optimizers"):  # after construction: the groups belong to the inner optimisers
            raise NotImplementedError("add the group to one of MixedOptimizer.optimizers")
        super().add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict.get("optimizers")
        if states is None or len(states) != len(self.optimizers):
            found = "none" if states is None else len(states)
            raise ValueError(f"state dict holds {found} optimiser states, need {len(self.optimizers)}")
        for opt, state in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(state)


def scheduled(
    optimizer: Optimizer, scheduler: Callable[..., LRScheduler] | None, total_steps: float
) -> dict[str, Any] | Optimizer:
    """``configure_optimizers``' return value: ``optimizer`` with ``scheduler(optimizer, total_steps=...)``
    stepped every optimiser step, or the optimiser alone when there is no scheduler."""
    if scheduler is None:
        return optimizer
    if not math.isfinite(total_steps) or total_steps <= 0:
        raise ValueError(f"the schedule needs a finite run length, got {total_steps} steps: set max_steps")
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler(optimizer, total_steps=int(total_steps)), "interval": "step"},
    }
