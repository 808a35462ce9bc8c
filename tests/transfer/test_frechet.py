"""FD score (Table 28): torchmetrics' Fréchet distance over custom features, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

import intern_arch
from intern_transfer.downa.frechet import BackboneFeatures, dataset_features, fd_score, frechet_distance

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


def _reference(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b)), computed independently of torchmetrics."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def test_distance_of_a_set_to_itself_is_zero() -> None:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(500, 16, generator=g, dtype=torch.float64) * 3 + 5
    trace = torch.cov(features.t()).trace().item()
    assert frechet_distance(features, features) < 1e-6 * trace


def test_distance_matches_scipy_reference() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 16, generator=g, dtype=torch.float64)
    mix = torch.randn(16, 16, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(500, 16, generator=g, dtype=torch.float64) @ mix + torch.linspace(-1, 1, 16)
    expected = _reference(a.numpy(), b.numpy())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-4)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected, rel=1e-4)


def test_mismatched_feature_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="feature sets"):
        frechet_distance(torch.randn(10, 4), torch.randn(10, 5))


def test_fd_score_through_a_backbone() -> None:
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test", num_classes=5).train()
    extractor = BackboneFeatures(backbone)
    g = torch.Generator().manual_seed(2)
    images_a = torch.rand(16, 3, 32, 32, generator=g)
    images_b = torch.rand(16, 3, 32, 32, generator=g) * 0.5
    set_a, set_b = list(images_a.split(8)), list(images_b.split(8))

    features = dataset_features(set_a, extractor)
    assert features.shape == (16, backbone.num_features) and not features.requires_grad
    assert backbone.training  # eval only while extracting
    forward = fd_score(set_a, set_b, extractor)
    backward = fd_score(set_b, set_a, extractor)
    assert forward > 0
    # The formula is symmetric; only eigvals(S_a S_b) vs eigvals(S_b S_a) rounding differs (~1e-9 here).
    assert backward == pytest.approx(forward, rel=1e-6)
    assert fd_score(set_a, set_a, extractor) < 1e-6 * forward
