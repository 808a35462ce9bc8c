"""How close two datasets are for a backbone: the FD score of paper Table 28 on shard splits.

Images are read in shard order, resized and centre-cropped to the backbone's input size as the
evaluation transform does, and embedded by the backbone's pooled features; the Fréchet distance of the
two feature sets is :func:`.frechet.frechet_distance`'s. Table 28 reports FD(upstream, original
downstream) against FD(upstream, reconstructed downstream): reconstruction through the upstream VQ-GAN
should bring the downstream images closer to the upstream domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from intern_data.shards import ShardDataset, classification_transform
from intern_transfer.downa.frechet import BackboneFeatures, dataset_features, frechet_distance

__all__ = ["split_images", "split_features", "fd_table"]


def split_images(root: Path, split: str, img_size: int, limit: int, batch_size: int = 64) -> Iterator[Tensor]:
    """Batches of the first ``limit`` images of ``split`` as [0, 1] tensors of ``img_size``."""
    transform = classification_transform(img_size, False, normalize=False)
    batch: list[Tensor] = []
    for index, sample in enumerate(ShardDataset(root, split=split, batch_size=1).scan()):
        if index == limit:
            break
        batch.append(transform(sample)["image"])
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def split_features(backbone: nn.Module, root: Path, split: str, img_size: int, limit: int) -> Tensor:
    """The backbone's pooled features of the first ``limit`` images of ``split``."""
    return dataset_features(split_images(root, split, img_size, limit), BackboneFeatures(backbone))


def fd_table(
    backbone: nn.Module,
    upstream: tuple[Path, str],
    sets: dict[str, tuple[Path, str]],
    img_size: int,
    limit: int,
) -> dict[str, float]:
    """``{name: FD(upstream, set)}`` for each named shard split, on at most ``limit`` images each."""
    reference = split_features(backbone, *upstream, img_size, limit)
    return {
        name: frechet_distance(reference, split_features(backbone, root, split, img_size, limit))
        for name, (root, split) in sets.items()
    }
