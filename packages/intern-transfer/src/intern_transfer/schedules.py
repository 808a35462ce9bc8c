"""The learning-rate schedules of INTERN's trainers, per optimiser step, each after a linear warm-up:
half a cosine (the default), steps down at fractions of the run (detection: x0.1 at 70% and 90%) and
polynomial decay (segmentation: power 0.9).

Each is a per-step ``LambdaLR`` (so Lightning steps, saves and restores it as any torch scheduler) made
by transformers' schedule functions where one exists; the step schedule is written here because
torch's ``MultiStepLR`` has no warm-up and takes step counts, not fractions of the run.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import (
    get_cosine_with_min_lr_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
)

__all__ = ["warmup_cosine", "warmup_multistep", "warmup_poly"]


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """LR factor rising linearly from 0 to 1 over ``warmup_steps``, then a cosine down to ``min_lr_ratio``
    at ``total_steps`` (each parameter group relative to its own LR)."""
    if total_steps <= 0:
        raise ValueError(f"the schedule needs a positive length, got total_steps={total_steps}")
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, warmup_steps, total_steps, min_lr_rate=min_lr_ratio
    )


def warmup_multistep(
    optimizer: Optimizer,
    total_steps: int,
    milestones: Sequence[float] = (0.7, 0.9),
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> LambdaLR:
    """LR factor rising linearly over ``warmup_steps``, then multiplied by ``gamma`` at each milestone
    (a fraction of ``total_steps``)."""
    if total_steps <= 0:
        raise ValueError(f"the schedule needs a positive length, got total_steps={total_steps}")
    if any(not 0 < m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(
            f"milestones must be increasing fractions of the run in (0, 1), got {list(milestones)}"
        )
    steps = [round(m * total_steps) for m in milestones]

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        return warm * gamma ** bisect_right(steps, step)

    return LambdaLR(optimizer, factor)


def warmup_poly(
    optimizer: Optimizer, total_steps: int, power: float = 0.9, warmup_steps: int = 0
) -> LambdaLR:
    """LR factor rising linearly over ``warmup_steps``, then ``(1 - progress) ** power`` down to 0."""
    if total_steps <= 0:
        raise ValueError(f"the schedule needs a positive length, got total_steps={total_steps}")
    return get_polynomial_decay_schedule_with_warmup(
        optimizer, warmup_steps, total_steps, lr_end=0.0, power=power
    )
