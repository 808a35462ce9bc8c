"""Which FPN level (P2..P5) each proposal's features are pooled from.

Up-A-L assigns levels at random, P2/P3/P4/P5 with probability 0.1/0.2/0.3/0.4 (paper, Sec. 5.1.2), so
every level learns from boxes of every size. SoCo (and FPN, Lin et al. 2017, Eq. 1) assign by size:
``k = floor(k0 + log2(sqrt(w h) / 224))`` clamped to [2, 5]. Both return level *indices* into
:data:`LEVELS` (0 = P2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

LEVELS = ("P2", "P3", "P4", "P5")
LEVEL_PROBS = (0.1, 0.2, 0.3, 0.4)


def random_levels(
    shape: int | Sequence[int],
    probs: Sequence[float] = LEVEL_PROBS,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Independent level draws with the given probabilities (normalised if they do not sum to 1).

    Args:
        shape: Shape of the result, e.g. ``(batch, proposals)``.
        probs: Probability of each level, P2 first.
        generator: Seeded generator for reproducible draws; torch's global one by default.

    Returns:
        int64 tensor of level indices in ``[0, len(probs))``.
    """
    weights = torch.as_tensor(probs, dtype=torch.float64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"probs must be non-negative with a positive sum, got {list(probs)}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    count = math.prod(shape)
    if count == 0:
        return torch.zeros(shape, dtype=torch.long)
    draws = torch.multinomial(weights, count, replacement=True, generator=generator)
    return draws.reshape(shape)


def size_levels(
    boxes: Tensor,
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    min_level: int = 2,
    max_level: int = 5,
) -> Tensor:
    """FPN's size rule: ``k = floor(k0 + log2(sqrt(w h) / canonical_size))`` clamped to the levels.

    Args:
        boxes: ... x 4 xyxy boxes in input pixels.
        canonical_size: Box side that maps to ``canonical_level`` (224, ImageNet's size).
        canonical_level: ``k0`` (4 in FPN and SoCo).
        min_level: Lowest level (P2).
        max_level: Highest level (P5).

    Returns:
        int64 level indices ``k - min_level``, with the shape of ``boxes`` minus its last dimension.
    """
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    scale = torch.sqrt(w * h).clamp(min=1e-6)
    # A tiny epsilon, as torchvision's LevelMapper, so a box exactly at a level boundary stays on it.
    level = torch.floor(canonical_level + torch.log2(scale / canonical_size) + 1e-6)
    return (level.clamp(min_level, max_level) - min_level).long()


def assign_levels(
    boxes: Tensor,
    mode: str = "random",
    probs: Sequence[float] = LEVEL_PROBS,
    generator: torch.Generator | None = None,
    canonical_size: float = 224.0,
) -> Tensor:
    """Level indices for ``boxes`` (``... x 4``): ``mode="random"`` (Up-A-L) or ``"size"`` (SoCo).

    For ``"size"`` the boxes must be in the pixels of the view the features come from.
    """
    if mode == "random":
        return random_levels(boxes.shape[:-1], probs, generator)
    if mode == "size":
        return size_levels(boxes, canonical_size, min_level=2, max_level=1 + len(probs))
    raise ValueError(f"mode must be 'random' or 'size', got {mode!r}")
