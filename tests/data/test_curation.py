"""intern_data.curation: similarity filtering of image-text pairs and active-learning selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from intern_data.curation import (
    covering_radius,
    entropy_scores,
    filter_pairs,
    filter_pairs_with_model,
    margin_scores,
    select_by_entropy,
    select_by_margin,
    select_core_set,
    select_samples,
)

scipy_stats = pytest.importorskip("scipy.stats")
sklearn_metrics = pytest.importorskip("sklearn.metrics")


def random_probs(n: int, c: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, c, generator=g), dim=1).double()
    probs[0] = torch.tensor([1.0] + [0.0] * (c - 1))  # a confident sample with exact zeros
    return probs


# -- noise filtering ---------------------------------------------------------------------------------


def test_filter_pairs_by_cosine_similarity() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.randn(200, 16, generator=g)
    text = torch.randn(200, 16, generator=g)
    text[:100] = image[:100] * 3 + 0.1 * torch.randn(100, 16, generator=g)  # matching pairs, other scale
    keys = [f"k{i}" for i in range(200)]
    result = filter_pairs(image, text, threshold=0.5, keys=keys)
    cos = (image.numpy() * text.numpy()).sum(1) / (
        np.linalg.norm(image, axis=1) * np.linalg.norm(text, axis=1)
    )
    np.testing.assert_allclose(result.similarities.numpy(), cos, rtol=1e-5, atol=1e-6)
    assert result.kept == [i for i in range(200) if cos[i] >= 0.5]
    assert set(range(100)) <= set(result.kept) and len(result.dropped) > 80
    assert result.kept_keys == [keys[i] for i in result.kept]
    report = result.report()
    assert f"kept {len(result.kept)}/200, dropped {len(result.dropped)}" in report
    with pytest.raises(ValueError, match="same shape"):
        filter_pairs(image, text[:, :8], 0.5)


def test_filter_with_a_model_matches_precomputed_embeddings() -> None:
    g = torch.Generator().manual_seed(1)
    proj_image, proj_text = torch.randn(12, 6, generator=g), torch.randn(12, 6, generator=g)
    images = [torch.randn(12, generator=g) for _ in range(23)]
    texts = [f"text {i}" for i in range(23)]
    text_vectors = {t: torch.randn(12, generator=g) for t in texts}
    calls: list[int] = []

    def encode(batch_images: list, batch_texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(batch_images))
        return torch.stack(batch_images) @ proj_image, torch.stack(
            [text_vectors[t] for t in batch_texts]
        ) @ proj_text

    pairs = [(f"k{i}", images[i], texts[i]) for i in range(23)]
    result = filter_pairs_with_model(iter(pairs), encode, threshold=0.0, batch_size=10)
    assert calls == [10, 10, 3]
    direct = filter_pairs(
        torch.stack(images) @ proj_image, torch.stack(list(text_vectors.values())) @ proj_text, 0.0
    )
    torch.testing.assert_close(result.similarities, direct.similarities)
    assert result.kept == direct.kept and result.keys == tuple(p[0] for p in pairs)
    empty = filter_pairs_with_model([], encode, 0.3)
    assert empty.kept == [] and "kept 0/0" in empty.report()


# -- uncertainty sampling ----------------------------------------------------------------------------


def test_entropy_matches_scipy() -> None:
    probs = random_probs(50, 7)
    expected = scipy_stats.entropy(probs.numpy(), axis=1)
    np.testing.assert_allclose(entropy_scores(probs).numpy(), expected, atol=1e-12)
    chosen = select_by_entropy(probs, 10)
    assert chosen == list(np.argsort(-expected, kind="stable")[:10])
    assert 0 not in chosen  # the one-hot sample has zero entropy


def test_margin_matches_numpy() -> None:
    probs = random_probs(50, 5, seed=2)
    sorted_p = np.sort(probs.numpy(), axis=1)
    expected = sorted_p[:, -1] - sorted_p[:, -2]
    np.testing.assert_allclose(margin_scores(probs).numpy(), expected, atol=1e-12)
    assert select_by_margin(probs, 8) == list(np.argsort(expected, kind="stable")[:8])
    ties = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert select_by_margin(ties, 3) == [0, 2, 3]  # equal scores: lower index first


def test_selection_validates_input() -> None:
    with pytest.raises(ValueError, match="softmax"):
        select_by_entropy(torch.randn(4, 3), 2)
    with pytest.raises(ValueError, match="budget"):
        select_by_entropy(random_probs(4, 3), 5)
    with pytest.raises(ValueError, match="C >= 2"):
        margin_scores(torch.ones(3, 1))
    assert select_by_margin(random_probs(4, 3), 0) == []
    with pytest.raises(ValueError, match="unknown selection strategy"):
        select_samples("random", 1, probs=random_probs(4, 3))
    with pytest.raises(ValueError, match="needs features"):
        select_samples("coreset", 1, probs=random_probs(4, 3))
    assert select_samples("entropy", 3, probs=random_probs(20, 4)) == select_by_entropy(
        random_probs(20, 4), 3
    )


# -- core-set ----------------------------------------------------------------------------------------


def blobs(n: int = 300, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(8, 5))
    return torch.from_numpy(centers[rng.integers(0, 8, n)] + rng.normal(size=(n, 5)))


def reference_k_center_greedy(x: np.ndarray, budget: int, start: list[int], labelled: list[int]) -> list[int]:
    """Sener & Savarese Algorithm 1 written out with scikit-learn distances."""
    dist = sklearn_metrics.pairwise_distances(x)
    centers = list(labelled) + list(start)
    chosen = list(start)
    while len(chosen) < budget:
        d = dist[:, centers].min(1)
        d[centers] = -1
        pick = int(np.argmax(d))
        chosen.append(pick)
        centers.append(pick)
    return chosen


def test_core_set_is_greedy_k_center() -> None:
    x = blobs()
    chosen = select_core_set(x, 12, seed=5)
    assert len(set(chosen)) == 12
    assert chosen == reference_k_center_greedy(x.numpy(), 12, chosen[:1], [])
    assert select_core_set(x, 12, seed=5) == chosen  # deterministic
    labelled = [3, 40, 77]
    more = select_core_set(x, 6, labelled=labelled)
    assert not set(more) & set(labelled)
    assert more == reference_k_center_greedy(x.numpy(), 6, [], labelled)


def test_core_set_covers_better_than_random() -> None:
    x = blobs()
    chosen = select_core_set(x, 16, seed=0)
    radius = covering_radius(x, chosen)
    dist = sklearn_metrics.pairwise_distances(x.numpy())
    assert radius == pytest.approx(dist[:, chosen].min(1).max())
    rng = np.random.default_rng(0)
    random_radii = [dist[:, rng.choice(len(x), 16, replace=False)].min(1).max() for _ in range(50)]
    # Greedy k-center is a 2-approximation, so it is within 2x of the best of any selections; on
    # clustered data it beats a typical random selection by far (a lucky one may cover slightly better).
    assert radius <= 2 * min(random_radii)
    assert radius < 0.6 * float(np.median(random_radii))
    assert sum(radius <= r for r in random_radii) >= 45


def test_core_set_is_within_twice_the_optimal_radius() -> None:
    """Brute force on small sets: the greedy covering radius is at most 2x the optimal k-center radius."""
    for seed in range(5):
        x = blobs(11, seed)
        dist = sklearn_metrics.pairwise_distances(x.numpy())
        for k in (2, 3, 4):
            best = min(dist[:, list(c)].min(1).max() for c in itertools.combinations(range(11), k))
            for start_seed in range(3):
                greedy = covering_radius(x, select_core_set(x, k, seed=start_seed))
                assert best - 1e-9 <= greedy <= 2 * best + 1e-9
