"""FD score of Table 28: the Fréchet distance between two datasets' features under a chosen network.

Following Deng & Zheng ("Are labels always necessary for classifier accuracy evaluation?"), this is FID
with the Inception network replaced by the backbone being studied: fit a Gaussian to each dataset's
pooled features and take ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

The statistics and the distance come from torchmetrics' :class:`FrechetInceptionDistance` with a custom
feature module (float64 sums and covariances). That path does not need torch-fidelity (only the built-in
Inception does), and giving the module a ``num_features`` attribute keeps the metric from probing it
with a dummy image.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance


class _Precomputed(nn.Module):
    """Identity "feature extractor": the metric is fed features that are already computed."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two (N x D) feature sets (float64 statistics).

    Covariances are unbiased (N - 1); each set needs at least two rows, else torchmetrics raises
    ``RuntimeError``. Rounding (eigenvalues of rank-deficient ``S_a S_b`` when N <= D) can give a tiny
    negative value for near-identical sets: it is clamped to 0.
    """
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"expected two (N x D) feature sets, got {tuple(features_a.shape)} and {tuple(features_b.shape)}"
        )
    metric = FrechetInceptionDistance(feature=_Precomputed(features_a.shape[1]))
    metric.update(features_a.detach().cpu().double(), real=True)
    metric.update(features_b.detach().cpu().double(), real=False)
    return max(float(metric.compute()), 0.0)


class BackboneFeatures(nn.Module):
    """[0, 1] images (B x 3 x H x W) to a timm-style backbone's pooled pre-logits features (B x D).

    Images are normalised with the backbone's ``pretrained_cfg`` mean/std (no resizing: feed the size
    the comparison should use). The backbone runs in eval mode without gradients and is put back in its
    previous mode afterwards.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        cfg = backbone.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            x = (images.to(self.mean) - self.mean) / self.std
            return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        finally:
            self.backbone.train(was_training)


def dataset_features(images: Iterable[Tensor], extractor: nn.Module) -> Tensor:
    """Features of every image batch, concatenated on the CPU (batches go to the extractor's device)."""
    tensor = next(iter(extractor.parameters()), None)
    if tensor is None:
        tensor = next(iter(extractor.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    return torch.cat([extractor(batch.to(device)).cpu() for batch in images])


def fd_score(images_a: Iterable[Tensor], images_b: Iterable[Tensor], extractor: nn.Module) -> float:
    """FD between two image sets (iterables of [0, 1] batches) in the extractor's feature space."""
    return frechet_distance(dataset_features(images_a, extractor), dataset_features(images_b, extractor))
