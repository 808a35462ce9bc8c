"""Local BYOL for Up-A-L: a frozen backbone, an online FPN + box head + projector + predictor, and a
momentum target (FPN + box head + projector), compared on the same proposals in different views.

After SoCo (Wei et al., NeurIPS 2021) and BYOL (Grill et al., NeurIPS 2020); the settings are the
paper's (paper Sec. 5.1.2, SoCo). Each proposal is pooled with RoIAlign (7 x 7, ``aligned=True``) from the
FPN level it was assigned (:mod:`.levels`), embedded by the box head (4 x conv 3x3-BN-ReLU, FC 1024;
torchvision's ``FastRCNNConvFCHead``, so the weights load into a Faster R-CNN v2 box head), projected
(1024-4096-256) and, online only, predicted (256-4096-256).

Loss: for each view pair (i, j), ``byol_loss(p_i, z_j) + byol_loss(p_j, z_i)`` with
``byol_loss(p, z) = -2 * mean cos(p, sg(z))``; the pairs are averaged. Each term lies in [-2, 2], so the
loss lies in [-4, 4] and is -4 when online predictions and targets agree perfectly (BYOL's
``2 - 2 cos`` form shifted by a constant, same gradients).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from intern_arch.heads import BoxHead
from intern_arch.necks import FPN


class MLP(nn.Sequential):
    """BYOL's projector / predictor: Linear, BatchNorm, ReLU, Linear."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )


def byol_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """``-2 * mean cosine(prediction, stop_gradient(target))`` over rows; in [-2, 2]."""
    prediction = F.normalize(prediction, dim=-1)
    target = F.normalize(target.detach(), dim=-1)
    return -2 * (prediction * target).sum(-1).mean()


def momentum_at(step: int, total: int, base: float = 0.99) -> float:
    """BYOL's target momentum ``1 - (1 - base) * (cos(pi k / K) + 1) / 2``: ``base`` at 0, 1 at ``K``."""
    if total <= 0:
        return base
    progress = min(max(step, 0), total) / total
    return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2


def pool_boxes(
    features: Sequence[Tensor],
    boxes: Tensor,
    levels: Tensor,
    strides: Sequence[int],
    output_size: int = 7,
    sampling_ratio: int = 2,
) -> Tensor:
    """RoIAlign each box from its assigned level.

    Args:
        features: The levels' maps, B x C x H_l x W_l each, finest first.
        boxes: B x K x 4 xyxy boxes in input pixels.
        levels: B x K level indices into ``features``.
        strides: Stride of each level (its RoIAlign ``spatial_scale`` is ``1 / stride``).
        output_size: Pooled side.
        sampling_ratio: RoIAlign sampling points per bin side.

    Returns:
        (B * K) x C x output_size x output_size, in ``boxes`` order.
    """
    batch, num = boxes.shape[:2]
    if levels.shape != (batch, num):
        raise ValueError(f"levels must be B x K = {(batch, num)}, got {tuple(levels.shape)}")
    index = torch.arange(batch, device=boxes.device, dtype=boxes.dtype).repeat_interleave(num)
    rois = torch.cat([index[:, None], boxes.reshape(-1, 4).to(features[0].dtype)], dim=1)
    flat = levels.reshape(-1).to(boxes.device)
    pooled = features[0].new_zeros(batch * num, features[0].shape[1], output_size, output_size)
    for level, (fmap, stride) in enumerate(zip(features, strides, strict=True)):
        chosen = torch.nonzero(flat == level).squeeze(1)
        if chosen.numel():
            pooled[chosen] = roi_align(
                fmap, rois[chosen], output_size, 1.0 / stride, sampling_ratio=sampling_ratio, aligned=True
            )
    return pooled


class LocalBYOL(nn.Module):
    """Up-A-L's model: a frozen backbone, online and momentum-target FPN + box head + projector.

    Args:
        backbone: A model with the intern-arch backbone contract (``feature_info``, ``forward_pyramid``);
            frozen here (no gradient, eval mode kept).
        fpn_channels: Channels of P2..P5.
        head_dim: Box head output (FC) features.
        proj_hidden: Projector hidden width.
        proj_dim: Projection (and prediction) size.
        pred_hidden: Predictor hidden width.
        roi_size: RoIAlign output side.
        sampling_ratio: RoIAlign sampling ratio.
        pairs: View pairs compared (SoCo: view 1 with views 2 and 3).
    """

    def __init__(
        self,
        backbone: nn.Module,
        fpn_channels: int = 256,
        head_dim: int = 1024,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
        roi_size: int = 7,
        sampling_ratio: int = 2,
        pairs: Sequence[tuple[int, int]] = ((0, 1), (0, 2)),
    ) -> None:
        super().__init__()
        if not pairs:
            raise ValueError("need at least one view pair")
        self.fpn = FPN(backbone, fpn_channels, extra_max_pool=False, freeze_backbone=True)
        self.strides = tuple(int(info["reduction"]) for info in backbone.feature_info)
        self.head = BoxHead(fpn_channels, roi_size, fpn_channels, 4, head_dim)
        self.projector = MLP(head_dim, proj_hidden, proj_dim)
        self.predictor = MLP(proj_dim, pred_hidden, proj_dim)
        self.target = nn.ModuleDict(
            {
                "fpn": copy.deepcopy(self.fpn.fpn),
                "head": copy.deepcopy(self.head),
                "projector": copy.deepcopy(self.projector),
            }
        )
        self.target.requires_grad_(False)
        self.roi_size = roi_size
        self.sampling_ratio = sampling_ratio
        self.pairs = tuple((int(i), int(j)) for i, j in pairs)

    @property
    def backbone(self) -> nn.Module:
        return self.fpn.body.backbone

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics and dropout stay fixed
        return self

    def _online_target(self) -> list[tuple[nn.Module, nn.Module]]:
        return [
            (self.fpn.fpn, self.target["fpn"]),
            (self.head, self.target["head"]),
            (self.projector, self.target["projector"]),
        ]

    def _embed(
        self,
        pyramid: dict[str, Tensor],
        boxes: Tensor,
        levels: Tensor,
        fpn: nn.Module,
        head: nn.Module,
        projector: nn.Module,
    ) -> Tensor:
        """Projections of the boxes through one branch (online or target) on a backbone pyramid."""
        maps = list(fpn(pyramid).values())
        pooled = pool_boxes(maps, boxes, levels, self.strides, self.roi_size, self.sampling_ratio)
        return projector(head(pooled))

    def forward(
        self, views: Sequence[Tensor], boxes: Sequence[Tensor], levels: Tensor | Sequence[Tensor]
    ) -> Tensor:
        """The BYOL loss of a batch, in [-4, 4].

        Args:
            views: One B x 3 x H x W batch per view (sizes may differ between views).
            boxes: One B x K x 4 batch per view, xyxy in that view's pixels, the same proposals in order.
            levels: B x K level indices (0 = P2) shared by all views, or one such tensor per view.
        """
        if len(views) != len(boxes):
            raise ValueError(f"got {len(views)} views but {len(boxes)} box sets")
        per_view = [levels] * len(views) if isinstance(levels, Tensor) else list(levels)
        used = sorted({v for pair in self.pairs for v in pair})
        if used[-1] >= len(views):
            raise ValueError(f"pairs {self.pairs} need {used[-1] + 1} views, got {len(views)}")
        predictions: dict[int, Tensor] = {}
        targets: dict[int, Tensor] = {}
        for v in used:
            with torch.no_grad():
                pyramid = self.fpn.body(views[v])
            online = self._embed(pyramid, boxes[v], per_view[v], self.fpn.fpn, self.head, self.projector)
            predictions[v] = self.predictor(online)
            with torch.no_grad():
                target = self.target
                targets[v] = self._embed(
                    pyramid, boxes[v], per_view[v], target["fpn"], target["head"], target["projector"]
                )
        losses = [
            byol_loss(predictions[i], targets[j]) + byol_loss(predictions[j], targets[i])
            for i, j in self.pairs
        ]
        return torch.stack(losses).mean()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """``target = momentum * target + (1 - momentum) * online`` for the parameters of the FPN, box
        head and projector. The target's BatchNorm statistics are its own (from its forward passes)."""
        for online, target in self._online_target():
            for source, param in zip(online.parameters(), target.parameters(), strict=True):
                param.lerp_(source, 1.0 - momentum)
