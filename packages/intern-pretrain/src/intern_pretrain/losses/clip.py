"""CLIP's symmetric InfoNCE over features gathered from every rank (Radford et al. 2021; open_clip)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.distributed import gather_with_grad, rank_offset_labels, world_info

__all__ = ["ClipLoss", "contrastive_logits"]


def contrastive_logits(
    queries: torch.Tensor, keys: torch.Tensor, logit_scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the local `queries` against the keys of every rank, and their rank-offset targets.

    Args:
        queries: Local L2-normalised features `(B, D)`; their positive is the key with the same row index
            on this rank.
        keys: Local L2-normalised features `(B, D)`, gathered with gradients.
        logit_scale: `1 / tau`.

    Returns:
        `(logits (B, world * B), labels (B,))`.
    """
    rank, _ = world_info()
    all_keys = gather_with_grad(keys)
    logits = logit_scale * queries @ all_keys.t()
    return logits, rank_offset_labels(queries.shape[0], rank, device=queries.device)


class ClipLoss(nn.Module):
    """Symmetric image-text InfoNCE with negatives from every rank.

    Each rank computes its local rows against the gathered columns ("local loss" in open_clip):
    `0.5 * (CE(s * I_local @ T_all^T, y) + CE(s * T_local @ I_all^T, y))` with `y = rank * B + arange(B)`.
    With equal local batches the mean of the per-rank losses equals the one-process loss on the whole
    batch, and so do the DDP-averaged gradients (the gather's backward sums over ranks).

    The two directions are averaged as in CLIP; the paper's Eq. 7 writes their sum (a factor 2 that
    only rescales the learning rate).

    Args:
        normalize: L2-normalise the inputs first (off when the caller already did).
    """

    def __init__(self, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        output_dict: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for local image and text embeddings `(B, D)` paired by row.

        Returns:
            The scalar loss, or `{"image_to_text", "text_to_image", "loss"}` with `output_dict`.
        """
        if self.normalize:
            image_features = F.normalize(image_features, dim=-1)
            text_features = F.normalize(text_features, dim=-1)
        logits_i2t, labels = contrastive_logits(image_features, text_features, logit_scale)
        logits_t2i, _ = contrastive_logits(text_features, image_features, logit_scale)
        i2t = F.cross_entropy(logits_i2t, labels)
        t2i = F.cross_entropy(logits_t2i, labels)
        loss = 0.5 * (i2t + t2i)
        if output_dict:
            return {"image_to_text": i2t, "text_to_image": t2i, "loss": loss}
        return loss
