"""Keys and class labels of a shard split, read from the JSON members only (no image decoding)."""

import json
import os

from .codec import iter_tar_samples
from .index import split_shards


def labelled_keys(path: str | os.PathLike[str], split: str) -> list[tuple[str, int]]:
    """``(key, label)`` of every labelled sample of ``split`` in the shard folder ``path``, in shard order.

    These are the items the percentage-shot and N-shot splits are drawn from.

    Raises:
        ValueError: the split holds samples without a ``label`` (a split is drawn per class).
    """
    items, unlabelled = [], 0
    for shard in split_shards(path, split):
        for raw in iter_tar_samples(shard.url):
            meta = json.loads(raw["json"])
            if "label" in meta:
                items.append((meta["key"], int(meta["label"])))
            else:
                unlabelled += 1
    if unlabelled:
        raise ValueError(f"{path} split {split!r}: {unlabelled} samples have no 'label' to draw a split by")
    return items
