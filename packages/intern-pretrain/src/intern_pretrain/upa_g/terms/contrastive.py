"""CLIP's symmetric InfoNCE over features gathered from every rank (Radford et al. 2021; open_clip)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.core.gather import gather_with_grad, rank_offset_labels, world_info
from intern_pretrain.upa_g.objective import StepOutputs, Term, TowerDims

__all__ = ["ClipLoss", "ContrastiveTerm", "contrastive_logits"]


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


class ContrastiveTerm(Term):
    """Image-text InfoNCE over every pair of image view and caption view (DeCLIP's multi-view
    supervision, ``L_CL`` of Eq. 7); one view of each is plain CLIP.

    The pairs are averaged by default, as in DeCLIP's public code, so the term keeps the scale of one
    CLIP loss whatever the number of views; Eq. 7 sums them (``reduction="sum"``). Each pair averages
    its two directions (:class:`ClipLoss`). Parts: ``i{a}t{b}`` per pair.

    Args:
        dims: unused (the interface of every term).
        weight: the term's weight.
        image_views: 1 or 2.
        text_views: 1 (the caption) or 2 (and its EDA copy).
        reduction: ``"mean"`` or ``"sum"`` over the pairs.
    """

    def __init__(
        self,
        dims: TowerDims,
        weight: float = 1.0,
        image_views: int = 1,
        text_views: int = 1,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__(weight)
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if image_views not in (1, 2) or text_views not in (1, 2):
            raise ValueError(f"1 or 2 views of each, got {image_views} image and {text_views} text views")
        self.image_views, self.text_views, self.reduction = image_views, text_views, reduction
        self.clip = ClipLoss()

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        parts = {
            f"i{a}t{b}": self.clip(image, text, out.logit_scale)
            for a, image in enumerate(out.image_embeds[: self.image_views])
            for b, text in enumerate(out.text_embeds[: self.text_views])
        }
        stacked = torch.stack(list(parts.values()))
        return {**parts, "loss": stacked.mean() if self.reduction == "mean" else stacked.sum()}
