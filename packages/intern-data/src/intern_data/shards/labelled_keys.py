"""Keys and class labels of a shard split, read from the JSON members only (no image decoding)."""

import os

from .reader import ShardDataset


def labelled_keys(path: str | os.PathLike[str], split: str) -> list[tuple[str, int]]:
    """``(key, label)`` of every labelled sample of ``split`` in the shard folder ``path``, in shard order.

    These are the items the percentage-shot and N-shot splits are drawn from. The shards are checked
    against their index first (``verify``): a manifest must not be drawn from changed shards.

    Raises:
        ValueError: the split holds samples without a ``label`` (a split is drawn per class).
        ShardIntegrityError: a shard differs from its index.
    """
    items, unlabelled = [], 0
    for sample in ShardDataset(path, split=split, batch_size=1, verify=True).scan(images=False):
        if "label" in sample:
            items.append((sample["__key__"], int(sample["label"])))
        else:
            unlabelled += 1
    if unlabelled:
        raise ValueError(f"{path} split {split!r}: {unlabelled} samples have no 'label' to draw a split by")
    return items
