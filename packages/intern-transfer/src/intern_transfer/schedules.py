"""The learning-rate schedule of every INTERN trainer: linear warm-up, then half a cosine.

transformers' ``get_cosine_with_min_lr_schedule_with_warmup``: a per-step ``LambdaLR`` (so Lightning
steps, saves and restores it as any torch scheduler), the floor a fraction of each group's own LR.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_cosine_with_min_lr_schedule_with_warmup

__all__ = ["warmup_cosine"]


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
