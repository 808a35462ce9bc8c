"""Optimisers and schedules of the upstream stages.

Up-A-G trains hybrid image towers with AdamW and the text tower with momentum SGD (paper sec. 5.2.1).
Lightning's automatic optimisation steps *one* optimiser per training step (several optimisers mean
several training steps per batch), so :class:`MixedOptimizer` wraps the two as one
``torch.optim.Optimizer``: one closure call (forward + backward), then every inner optimiser steps.
Its ``param_groups`` are the inner optimisers' own group dicts, so LR schedulers, Lightning's
``LearningRateMonitor``, gradient clipping and AMP grad scaling see and change every group.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["MixedOptimizer", "warmup_cosine", "warmup_cosine_scheduler"]


class MixedOptimizer(Optimizer):
    """Several optimisers over disjoint parameters, stepped together as one.

    ``param_groups`` and ``state`` are live views of the inner optimisers' (the group dicts are shared,
    so setting ``group["lr"]`` changes the inner optimiser); ``state_dict()`` holds each inner state
    dict, and ``load_state_dict`` restores them in order. ``add_param_group`` is not supported: add the
    group to an inner optimiser.

    Args:
        optimizers: the inner optimisers (at least one); no parameter may belong to two of them.
    """

    def __init__(self, optimizers: Sequence[Optimizer]) -> None:
        if not optimizers:
            raise ValueError("MixedOptimizer needs at least one optimiser")
        seen: set[int] = set()
        for opt in optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) in seen:
                        raise ValueError("a parameter belongs to two inner optimisers")
                    seen.add(id(p))
        self.optimizers = list(optimizers)
        # Optimizer.__init__ without its parameter bookkeeping, which the inner optimisers own.
        self.defaults: dict[str, Any] = {"differentiable": False}
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()
        self._warned_capturable_if_run_uncaptured = True

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        raise AttributeError("MixedOptimizer.param_groups are its inner optimisers' groups")

    @property  # type: ignore[override]
    def state(self) -> dict[torch.Tensor, Any]:
        return {p: s for opt in self.optimizers for p, s in opt.state.items()}

    @state.setter
    def state(self, value: Any) -> None:
        raise AttributeError("MixedOptimizer.state is its inner optimisers' state")

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

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

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        raise NotImplementedError("add the group to one of MixedOptimizer.optimizers")

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict.get("optimizers")
        if states is None or len(states) != len(self.optimizers):
            found = "none" if states is None else len(states)
            raise ValueError(f"state dict holds {found} optimiser states, need {len(self.optimizers)}")
        for opt, state in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(state)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """LR factor at ``step``: linear from ``1 / (warmup + 1)`` to 1 over ``warmup_steps``, then half a
    cosine down to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> LambdaLR:
    """A per-step ``LambdaLR`` with :func:`warmup_cosine`; every group keeps its own base LR.

    The factor is a closure, so a scheduler state dict holds no schedule length: a resumed run with a
    longer ``total_steps`` follows the new schedule.
    """

    def factor(step: int) -> float:
        return warmup_cosine(step, warmup_steps, total_steps, min_ratio)

    return LambdaLR(optimizer, factor)
