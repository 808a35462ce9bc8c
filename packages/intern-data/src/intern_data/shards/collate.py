"""Batch collation for transformed samples (run inside the reader's workers).

``collate_samples`` covers classification, segmentation, depth and image-text batches: tensors of one
shape are stacked, ints become an int64 tensor, and the rest (keys, sources, captions, per-sample
box lists) stay lists. ``detection_collate`` adds the ``targets`` list torchvision's detection
models take.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from intern_data.schema import Sample

_PER_SAMPLE = ("boxes", "box_labels", "proposals")  # lengths differ between samples: always lists


def collate_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Collate a list of samples into a dict of batched values (see the module docstring)."""
    keys = list(dict.fromkeys(k for s in samples for k in s))
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s.get(key) for s in samples]
        if key in _PER_SAMPLE or any(v is None for v in values):
            batch[key] = values
        elif all(isinstance(v, Tensor) for v in values) and len({v.shape for v in values}) == 1:
            batch[key] = torch.stack(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch


PAD_KEY = "__pad__"
"""Per-sample flag the reader sets on repeats that fill a batch after bad data (never real samples)."""


def drop_padding(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` without its padded samples (evaluation must not count a sample twice).

    Tensors and per-sample lists are indexed alike; the ``__pad__`` flags are dropped with them.
    """
    flags = batch.get(PAD_KEY)
    if flags is None or not any(flags):
        return batch
    keep = [i for i, pad in enumerate(flags) if not pad]
    index = torch.tensor(keep, dtype=torch.long)
    size = len(flags)
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == size:
            out[key] = value[index]
        elif isinstance(value, list) and len(value) == size:
            out[key] = [value[i] for i in keep]
        else:
            out[key] = value
    return out


def detection_collate(samples: Sequence[Sample], label_offset: int = 0) -> dict[str, Any]:
    """Images (stacked when they share a size, else a list) and ``targets``: one dict per image with
    ``boxes`` (float N x 4, xyxy) and ``labels`` (int64 N, ``box_labels + label_offset``), as
    torchvision's detection models expect."""
    batch = collate_samples(samples)
    batch["targets"] = [{"boxes": s["boxes"], "labels": s["box_labels"] + label_offset} for s in samples]
    for key in ("boxes", "box_labels"):
        batch.pop(key, None)
    return batch
