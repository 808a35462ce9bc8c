"""Data-parallel helpers of the contrastive losses: gathering features with gradients, rank-offset labels.

Every helper is a no-op on one process, so the losses run unchanged on a laptop and under DDP.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

__all__ = ["gather_with_grad", "gather_no_grad", "is_distributed", "rank_offset_labels", "world_info"]


def is_distributed() -> bool:
    """Whether a default process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_info() -> tuple[int, int]:
    """Return `(rank, world_size)`; `(0, 1)` when not distributed."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank along dim 0, keeping the gradient path.

    Uses `torch.distributed.nn.functional.all_gather`, whose backward sums the incoming gradients of
    every rank's copy (a reduce-scatter) and hands each rank the slice of its own input. Together with
    DDP's gradient average this gives exactly the gradient of the global loss (the mean of the per-rank
    losses), as the two-process tests check. Ranks must hold the same number of rows.

    Args:
        x: Local features, `(B, ...)`.

    Returns:
        `(world_size * B, ...)`, rank 0's rows first; `x` itself when not distributed.
    """
    if not is_distributed():
        return x
    return torch.cat(dist_fn.all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank along dim 0 without a gradient path (for detached features)."""
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def rank_offset_labels(local_batch: int, rank: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Targets of the local rows among the gathered columns: `rank * local_batch + arange(local_batch)`."""
    return torch.arange(local_batch, device=device) + rank * local_batch
