"""Data curation steps of GV-D (paper section 3).

Noise filtering: raw image-text pairs are kept only when a vision-language model finds the image
and its text similar enough (cosine similarity of the two embeddings at or above a threshold).

Active learning ("an active annotation pipeline"): choose which unlabelled samples to send to
annotators under a budget, by uncertainty of the current model (``entropy``: highest predictive
entropy; ``margin``: smallest gap between the top two class probabilities) or by coverage of the
feature space (``coreset``: greedy k-center of Sener & Savarese, ICLR 2018, which repeatedly picks
the sample farthest from everything labelled or chosen so far; a 2-approximation of the k-center
problem).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

STRATEGIES = ("entropy", "margin", "coreset")


# -- noise filtering ---------------------------------------------------------------------------------


def pair_similarities(image_embeddings: Tensor, text_embeddings: Tensor) -> Tensor:
    """Cosine similarity of each image with its own text: ``N x D``, ``N x D`` -> ``N``."""
    if image_embeddings.ndim != 2 or image_embeddings.shape != text_embeddings.shape:
        raise ValueError(
            "image and text embeddings must both be N x D with the same shape, got "
            f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}"
        )
    return F.cosine_similarity(image_embeddings.float(), text_embeddings.float(), dim=1, eps=1e-8)


@dataclass(frozen=True)
class FilterResult:
    """Which pairs survived the similarity filter.

    Attributes:
        similarities: cosine similarity of every pair (float, N).
        keep: True for kept pairs (similarity >= threshold).
        threshold: the threshold used.
        keys: the pairs' keys when known (same order), else None.
    """

    similarities: Tensor
    keep: Tensor
    threshold: float
    keys: tuple[str, ...] | None = None

    @property
    def kept(self) -> list[int]:
        return self.keep.nonzero().flatten().tolist()

    @property
    def dropped(self) -> list[int]:
        return (~self.keep).nonzero().flatten().tolist()

    @property
    def kept_keys(self) -> list[str]:
        if self.keys is None:
            raise ValueError("this filter result has no keys (pass keys when filtering)")
        return [self.keys[i] for i in self.kept]

    def report(self) -> str:
        """One line: counts kept and dropped, and the similarity distribution."""
        n = len(self.keep)
        kept = int(self.keep.sum())
        line = f"similarity >= {self.threshold:g}: kept {kept}/{n}, dropped {n - kept}"
        if n:
            q = torch.quantile(self.similarities, torch.tensor([0.0, 0.5, 1.0])).tolist()
            line += (
                f" ({100 * kept / n:.1f}% kept; similarity min {q[0]:.3f}, median {q[1]:.3f}, max {q[2]:.3f})"
            )
        return line


def filter_pairs(
    image_embeddings: Tensor,
    text_embeddings: Tensor,
    threshold: float,
    keys: Sequence[str] | None = None,
) -> FilterResult:
    """Keep the pairs whose image and text embeddings have cosine similarity >= ``threshold``."""
    sims = pair_similarities(image_embeddings, text_embeddings)
    if keys is not None and len(keys) != len(sims):
        raise ValueError(f"{len(keys)} keys for {len(sims)} pairs")
    return FilterResult(sims, sims >= threshold, float(threshold), tuple(keys) if keys is not None else None)


def filter_pairs_with_model(
    pairs: Iterable[tuple[str, Any, str]],
    encode: Callable[[list[Any], list[str]], tuple[Tensor, Tensor]],
    threshold: float,
    batch_size: int = 256,
) -> FilterResult:
    """Embed ``(key, image, text)`` pairs in batches with ``encode`` and filter them.

    Args:
        pairs: e.g. ``(s["__key__"], s["image"], s["text"][0])`` for the samples of a shard set.
        encode: ``encode(images, texts) -> (image_embeddings, text_embeddings)``, each ``B x D``
            (a CLIP-style model; run under ``torch.no_grad`` inside it as needed).
        threshold: minimum cosine similarity to keep a pair.
        batch_size: pairs per ``encode`` call.
    """
    keys: list[str] = []
    sims: list[Tensor] = []
    batch: list[tuple[str, Any, str]] = []

    def flush() -> None:
        if batch:
            images, texts = [b[1] for b in batch], [b[2] for b in batch]
            with torch.no_grad():
                image_emb, text_emb = encode(images, texts)
            sims.append(pair_similarities(image_emb.detach().cpu(), text_emb.detach().cpu()))
            keys.extend(b[0] for b in batch)
            batch.clear()

    for pair in pairs:
        batch.append(pair)
        if len(batch) == batch_size:
            flush()
    flush()
    similarities = torch.cat(sims) if sims else torch.empty(0)
    return FilterResult(similarities, similarities >= threshold, float(threshold), tuple(keys))


# -- active learning ---------------------------------------------------------------------------------


def _check_probabilities(probs: Tensor, min_classes: int = 1) -> Tensor:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.ndim != 2 or probs.shape[1] < min_classes:
        raise ValueError(
            f"probabilities must be N x C with C >= {min_classes}, got shape {tuple(probs.shape)}"
        )
    if (probs < 0).any() or not torch.allclose(
        probs.sum(1), torch.ones(len(probs), dtype=probs.dtype), atol=1e-4
    ):
        raise ValueError("probabilities must be >= 0 and sum to 1 per row (apply softmax to logits first)")
    return probs / probs.sum(1, keepdim=True)  # exact normalisation (float32 softmax rows are off by ~1e-7)


def _check_budget(budget: int, available: int) -> None:
    if not 0 <= budget <= available:
        raise ValueError(f"budget must be in [0, {available}] (the candidates available), got {budget}")


def entropy_scores(probs: Tensor) -> Tensor:
    """Predictive entropy per sample in nats, ``-sum p log p`` with ``0 log 0 = 0``."""
    probs = _check_probabilities(probs)
    return (-torch.special.xlogy(probs, probs).sum(1)).clamp_min(0.0)


def margin_scores(probs: Tensor) -> Tensor:
    """Top-1 minus top-2 probability per sample (small = uncertain)."""
    probs = _check_probabilities(probs, min_classes=2)
    top2 = probs.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def _top(scores: Tensor, budget: int, largest: bool) -> list[int]:
    _check_budget(budget, len(scores))
    order = torch.sort(-scores if largest else scores, stable=True).indices  # ties: lower index first
    return order[:budget].tolist()


def select_by_entropy(probs: Tensor, budget: int) -> list[int]:
    """The ``budget`` samples with the highest entropy, most uncertain first."""
    return _top(entropy_scores(probs), budget, largest=True)


def select_by_margin(probs: Tensor, budget: int) -> list[int]:
    """The ``budget`` samples with the smallest top-1 minus top-2 margin, most uncertain first."""
    return _top(margin_scores(probs), budget, largest=False)


def min_distances(features: Tensor, centers: Tensor, chunk: int = 4096) -> Tensor:
    """Euclidean distance of every feature row to its nearest center row (inf with no centers)."""
    features = torch.as_tensor(features).double()
    centers = torch.as_tensor(centers).double()
    if len(centers) == 0:
        return torch.full((len(features),), float("inf"), dtype=torch.float64)
    out = [
        torch.cdist(features[i : i + chunk], centers).min(1).values for i in range(0, len(features), chunk)
    ]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def covering_radius(features: Tensor, centers: Sequence[int]) -> float:
    """Max over samples of the distance to the nearest chosen center (the k-center objective)."""
    features = torch.as_tensor(features).double()
    return float(min_distances(features, features[list(centers)]).max())


def select_core_set(
    features: Tensor,
    budget: int,
    labelled: Sequence[int] = (),
    seed: int = 0,
) -> list[int]:
    """Greedy k-center selection (Sener & Savarese 2018, Algorithm 1).

    Repeatedly adds the sample whose distance to its nearest labelled-or-chosen sample is largest
    (ties: lowest index). With nothing labelled, the first pick is a sample drawn with ``seed``.

    Args:
        features: ``N x D`` features of all samples (the labelled pool included).
        budget: how many new samples to choose.
        labelled: indices already labelled; never chosen again.
        seed: seeds the first pick when ``labelled`` is empty.

    Returns:
        The chosen indices, in the order they were picked.
    """
    features = torch.as_tensor(features).double()
    if features.ndim != 2:
        raise ValueError(f"features must be N x D, got shape {tuple(features.shape)}")
    n = len(features)
    labelled = sorted(set(labelled))
    if labelled and not 0 <= labelled[0] <= labelled[-1] < n:
        raise ValueError(f"labelled indices must be in [0, {n})")
    _check_budget(budget, n - len(labelled))
    chosen: list[int] = []
    if budget == 0:
        return chosen
    if labelled:
        dist = min_distances(features, features[labelled])
    else:
        first = int(torch.randint(n, (1,), generator=torch.Generator().manual_seed(seed)))
        chosen.append(first)
        dist = min_distances(features, features[[first]])
    dist[labelled] = -1.0
    while len(chosen) < budget:
        pick = int(torch.argmax(dist))  # first maximum
        chosen.append(pick)
        dist = torch.minimum(dist, torch.cdist(features, features[[pick]]).flatten())
        dist[chosen] = -1.0
        dist[labelled] = -1.0
    return chosen


def select_samples(
    strategy: str,
    budget: int,
    probs: Tensor | None = None,
    features: Tensor | None = None,
    labelled: Sequence[int] = (),
    seed: int = 0,
) -> list[int]:
    """Dispatch to ``entropy`` / ``margin`` (need ``probs``) or ``coreset`` (needs ``features``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if strategy == "coreset":
        if features is None:
            raise ValueError("the coreset strategy needs features")
        return select_core_set(features, budget, labelled=labelled, seed=seed)
    if probs is None:
        raise ValueError(f"the {strategy} strategy needs class probabilities")
    if labelled:
        raise ValueError(f"the {strategy} strategy takes only unlabelled candidates; leave labelled empty")
    return select_by_entropy(probs, budget) if strategy == "entropy" else select_by_margin(probs, budget)
