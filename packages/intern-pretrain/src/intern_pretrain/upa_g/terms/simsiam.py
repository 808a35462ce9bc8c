"""SimSiam image-image consistency (Chen & He 2021): projector, predictor and the stop-gradient loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.upa_g.objective import StepOutputs, Term, TowerDims

__all__ = ["SimSiamHead", "SimSiamTerm", "simsiam_loss"]


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """`-0.5 * (cos(p1, sg(z2)) + cos(p2, sg(z1)))`, averaged over the batch; in `[-1, 1]`."""
    cos_12 = F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
    cos_21 = F.cosine_similarity(p2, z1.detach(), dim=-1).mean()
    return -0.5 * (cos_12 + cos_21)


def _mlp(dims: list[int], last_bn: bool, last_bn_affine: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        layers.append(nn.Linear(d_in, d_out, bias=last and not last_bn))  # no bias before a BN
        if not last:
            layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(d_out, affine=last_bn_affine))
    return nn.Sequential(*layers)


class SimSiamHead(nn.Module):
    """Projector `in-h-h-out` (BN after every layer, ReLU between) and bottleneck predictor `out-p-out`.

    Defaults follow the paper's setting (projector in-1024-1024-1024, predictor 1024-512-1024). The
    projector's last BN has no affine parameters, as in the SimSiam reference code.

    Note: the BN statistics are per process; under DDP convert the head with `SyncBatchNorm` (CUDA) to
    match a one-process run exactly.

    Args:
        in_dim: Width of the image feature fed to the projector.
        proj_dim: Hidden and output width of the projector.
        pred_dim: Bottleneck width of the predictor.
        proj_layers: Number of linear layers of the projector (3 in SimSiam).
    """

    def __init__(self, in_dim: int, proj_dim: int = 1024, pred_dim: int = 512, proj_layers: int = 3) -> None:
        super().__init__()
        if proj_layers < 1:
            raise ValueError(f"proj_layers must be >= 1, got {proj_layers}")
        self.projector = _mlp([in_dim] + [proj_dim] * proj_layers, last_bn=True, last_bn_affine=False)
        self.predictor = _mlp([proj_dim, pred_dim, proj_dim], last_bn=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The SimSiam loss of two views' features `(B, in_dim)`."""
        z1, z2 = self.projector(x1), self.projector(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return simsiam_loss(p1, p2, z1, z2)


class SimSiamTerm(Term):
    """Image-image consistency between the two image views' pooled backbone features (``L_CS`` of
    Eq. 7): :class:`SimSiamHead` on them, its loss in ``[-1, 1]``.

    Args:
        dims: ``feature_dim`` sizes the projector's input.
        weight: the term's weight.
        proj_dim: projector width (paper 1024).
        pred_dim: predictor bottleneck (paper 512).
    """

    image_views = 2

    def __init__(
        self, dims: TowerDims, weight: float = 1.0, proj_dim: int = 1024, pred_dim: int = 512
    ) -> None:
        super().__init__(weight)
        self.head = SimSiamHead(dims.feature_dim, proj_dim, pred_dim)

    def forward(self, out: StepOutputs) -> torch.Tensor:
        return self.head(out.image_features[0], out.image_features[1])
