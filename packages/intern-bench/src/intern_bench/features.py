"""Features of a shard split under a backbone's own preprocessing, through the on-disk feature cache.

The cache key holds the backbone's fingerprint, the shard split's content hash, the preprocessing and
the autocast dtype, so a changed model, re-made data, another resolution or precision never reuses
stale features. Features are
computed once for the whole training split; percentage- and N-shot regimes pick rows by sample key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from intern_data.schema import Sample
from intern_data.shards import ShardDataset, ShardLoader, load_index
from intern_transfer.probe import FeatureCache, Features, cached_features


def with_preprocess(preprocess: Callable[[Tensor], Tensor]) -> Callable[[Sample], Sample]:
    """A sample transform applying an image-only ``preprocess`` (grey images become RGB first)."""

    def transform(sample: Sample) -> Sample:
        image = sample["image"]
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        return {**sample, "image": preprocess(image)}

    return transform


def split_features(
    model: torch.nn.Module,
    preprocess: Callable[[Tensor], Tensor],
    model_id: str,
    preprocess_id: Any,
    root: str | Path,
    split: str,
    *,
    cache: FeatureCache | None,
    batch_size: int = 64,
    num_workers: int = 0,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> Features:
    """Pooled features of every sample of ``split`` in the shard folder ``root``, in shard order, on
    the model's device under ``torch.autocast`` with ``autocast_dtype`` (None: float32).

    ``model_id`` and ``preprocess_id`` (JSON-able) identify the model and what ``preprocess`` does in
    the cache key."""
    index = load_index(root)
    if split not in index["splits"]:
        raise KeyError(f"shard folder {root} has no split {split!r}; it has {sorted(index['splits'])}")
    dataset = ShardDataset(
        str(root),
        split=split,
        batch_size=batch_size,
        transform=with_preprocess(preprocess),
        required_keys=("label",),
    )
    loader = ShardLoader(dataset, num_workers=num_workers, track_position=False)
    return cached_features(
        cache,
        model,
        loader,
        dataset=f"{index['dataset']}-{index['splits'][split]['content_hash'][:16]}",
        split=split,
        preprocess=preprocess_id,
        model_id=model_id,
        autocast_dtype=autocast_dtype,
        progress=progress,
    )


def select_rows(features: Features, keys: Sequence[str]) -> Features:
    """The rows of ``features`` whose sample keys are ``keys`` (in the features' order)."""
    wanted = set(keys)
    rows = [i for i, key in enumerate(features.keys) if key in wanted]
    if len(rows) != len(wanted):
        raise KeyError(f"{len(wanted) - len(rows)} manifest keys are not in the feature set")
    index = torch.tensor(rows, dtype=torch.long)
    return Features(features.features[index], features.labels[index], [features.keys[i] for i in rows])
