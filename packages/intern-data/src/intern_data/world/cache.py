"""The embedded world cached as shards: generated once per (dataset, seed, size, counts), then read.

Stages and benchmarks read the world through the same shard reader as real data. A cache folder is
``{cache_dir}/{dataset}/seed{seed}-px{size}-n{train}.{val}.{test}``; a split whose ``index.json`` entry
is complete is reused without generating anything, and an interrupted write resumes (the writer's
crash safety); processes asking for the same folder at once take turns (a file lock), so it is
made once. Images are PNG, so the cached bytes decode to exactly the generated pixels.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..shards.index import index_path, load_index
from ..shards.writer import write_shards
from .datasets import SPLITS, generate, get_dataset

log = logging.getLogger(__name__)

_LOCK = ".world-cache.lock"


def cache_folder(
    name: str,
    cache_dir: str | os.PathLike[str],
    seed: int = 0,
    img_size: int | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Path:
    """The shard folder of world dataset ``name`` under ``cache_dir`` for these settings."""
    spec = get_dataset(name)
    counts = {**spec.sizes, **(sizes or {})}
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"world dataset {name!r} has no split(s) {sorted(unknown)}; splits are {SPLITS}")
    size = img_size or spec.img_size
    tag = ".".join(str(counts[split]) for split in SPLITS)
    return Path(cache_dir) / name / f"seed{seed}-px{size}-n{tag}"


def _complete(folder: Path, dataset: str, split: str, count: int) -> bool:
    if not index_path(folder).is_file() or (folder / f".{dataset}-{split}.writing.json").exists():
        return False
    entry = load_index(folder)["splits"].get(split)
    return entry is not None and entry["count"] == count


def world_shards(
    name: str,
    cache_dir: str | os.PathLike[str],
    splits: Sequence[str] = SPLITS,
    *,
    seed: int = 0,
    img_size: int | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Path:
    """Make sure ``splits`` of world dataset ``name`` are cached as shards; return the shard folder.

    Args:
        name: a world dataset (``intern_data.world.list_datasets()``).
        cache_dir: the folder holding all cached world datasets.
        splits: the splits to have (``train``, ``val``, ``test``).
        seed, img_size: generator settings (``img_size`` defaults to the dataset's).
        sizes: per-split sample counts replacing the dataset's defaults.
    """
    spec = get_dataset(name)
    folder = cache_folder(name, cache_dir, seed, img_size, sizes)
    counts = {**spec.sizes, **(sizes or {})}
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"world dataset {name!r} has no split {unknown[0]!r}; splits are {SPLITS}")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / _LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a process making the same cache: wait for it, then reuse
        for split in splits:
            if _complete(folder, name, split, counts[split]):
                continue
            log.info("generating %s/%s (%d samples) into %s", name, split, counts[split], folder)
            samples = generate(name, split, counts[split], seed=seed, img_size=img_size)
            write_shards(
                samples, folder, name, split, spec.label_space, image_format="png", total=counts[split]
            )
    return folder
