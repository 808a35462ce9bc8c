"""Activation checkpointing of one block that leaves BatchNorm's running statistics as one forward would.

``torch.utils.checkpoint`` runs a block's forward a second time in the backward pass; a BatchNorm in
training mode would then fold the same batch into its running mean and variance twice (and count it
twice), so a checkpointed model ends with other statistics than the same model trained without. Here
the statistics are put back as they were after the first pass once the recomputation has run (the
recomputation must still compute what the first pass did, so it cannot skip the update itself).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

__all__ = ["CheckpointedSequential", "checkpoint_block"]


def checkpoint_block(block: nn.Module, x: Tensor) -> Tensor:
    """``block(x)`` keeping only its input for the backward pass, where it is computed again."""
    return checkpoint(
        block, x, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _statistics_kept(block))
    )


class CheckpointedSequential(nn.Sequential):
    """Blocks run in order, each under :func:`checkpoint_block` while ``grad_checkpointing`` is set."""

    grad_checkpointing: bool = False

    def forward(self, x: Tensor) -> Tensor:
        for block in self:
            x = checkpoint_block(block, x) if self.grad_checkpointing and x.requires_grad else block(x)
        return x


@contextlib.contextmanager
def _statistics_kept(block: nn.Module) -> Iterator[None]:
    """BatchNorms of ``block`` end with the running statistics they had on entering."""
    norms = [m for m in block.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(buffer, buffer.clone()) for m in norms for buffer in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.data.copy_(value)  # `.data`: the copy is not an in-place change autograd tracks
