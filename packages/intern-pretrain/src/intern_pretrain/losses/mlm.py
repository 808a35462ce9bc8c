"""Masked language modelling loss (Devlin et al. 2019) on the text tower's token outputs."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from intern_pretrain.distributed import is_distributed

__all__ = ["MLMLoss", "mlm_loss"]

IGNORE_INDEX = -100


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over the masked positions of this process.

    Args:
        logits: `(B, L, V)` vocabulary logits.
        labels: `(B, L)` original token ids at masked positions, `ignore_index` elsewhere.

    Returns:
        The loss; `0` (still connected to `logits`, so DDP sees every parameter used) when no position
        is masked.
    """
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=ignore_index)


class MLMLoss(nn.Module):
    """MLM cross-entropy, optionally normalised by the masked-token count of all ranks.

    With `global_mean=True` under DDP each rank returns `world_size * sum_local / count_all`, so the mean
    of the per-rank losses (what DDP's gradient average optimises) is the cross-entropy averaged over
    every masked token of the global batch, exactly as one process would compute it, even when ranks
    mask different numbers of tokens. Costs one all-reduce of a scalar.

    Args:
        ignore_index: Label of unmasked positions.
        global_mean: Normalise by the global masked-token count when distributed.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, global_mean: bool = True) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.global_mean = global_mean

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not (self.global_mean and is_distributed()):
            return mlm_loss(logits, labels, self.ignore_index)
        count = (labels != self.ignore_index).sum().to(logits.dtype)
        total = count.detach().clone()
        dist.all_reduce(total)
        if float(total) == 0:
            return logits.sum() * 0.0
        summed = F.cross_entropy(
            logits.flatten(0, -2), labels.flatten(), ignore_index=self.ignore_index, reduction="sum"
        )
        return summed * dist.get_world_size() / total
