"""A task's data and its regimes: the shard folder of a benchmark task (the world cache, packaged data
converted once, or user shards), the manifest of a data regime (``10pct``, ``4shot``) and the regime's
training images written as their own shard folder, whole or with a validation part carved out.

Used by intern-bench (GV-B cells) and intern-transfer (the ``intern_transfer`` app), which both pick
from and select on the same regimes: selection only ever sees the training regime's images.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from intern_data.imaging import ImageDecodeError, image_size
from intern_data.label_space import LabelSpace
from intern_data.shards import (
    ShardDataset,
    iter_tar_samples,
    labelled_keys,
    load_index,
    split_shards,
    write_shards,
)
from intern_data.shards.index import index_path
from intern_data.sources import prepare_shards
from intern_data.splits import SplitManifest, SplitRule, load_or_make_split, manifest_path
from intern_data.tasks import TaskSpec
from intern_data.world import world_shards


class MissingTaskDataError(FileNotFoundError):
    """A real-data task whose shards are not there; the message gives the command that makes them."""


def task_shards(spec: TaskSpec, *, data_root: str | Path, cache_dir: str | Path, world_seed: int = 0) -> Path:
    """The shard folder holding every split ``spec`` uses (making it for world and packaged data)."""
    splits = list(dict.fromkeys(spec.splits.values()))
    if spec.source.kind == "world":
        return world_shards(spec.source.name, Path(cache_dir) / "world", splits, seed=world_seed)
    if spec.source.kind == "packaged":
        data = {
            "name": spec.name,
            "source": "reader",
            "reader": spec.source.name,
            "options": dict(spec.source.options),
            "shards_dir": str(Path(cache_dir) / "packaged" / spec.name),
        }
        return prepare_shards(data, splits)
    folder = spec.shards_root(data_root)
    have = load_index(folder)["splits"] if index_path(folder).is_file() else {}
    missing = [split for split in splits if split not in have]
    if missing:
        raise MissingTaskDataError(
            f"task {spec.name!r} needs shards with split(s) {missing} in {folder}; make them from "
            f"{spec.source.layout or 'the dataset'} with: {spec.shard_command(data_root)}"
        )
    return folder


def task_resolution(root: Path, split: str) -> int:
    """The shorter side of the first readable image of ``split`` in the shard folder ``root``, from its
    PNG or JPEG header (nothing is decoded)."""
    for shard in split_shards(root, split):
        for raw in iter_tar_samples(shard.url):
            for ext in ("png", "jpg"):
                try:
                    size = image_size(raw[ext]) if ext in raw else None
                except ImageDecodeError:
                    size = None
                if size:
                    return min(size)
    raise MissingTaskDataError(
        f"{root}: split {split!r} holds no PNG or JPEG image to take a resolution from"
    )


def regime_manifest(
    root: Path, split: str, rule: str, seed: int, items: Sequence[tuple[str, int]] | None = None
) -> SplitManifest:
    """The manifest of ``rule`` over ``split`` of the shard folder ``root``, where ``python -m intern_data
    split`` puts it (``<root>/splits/<dataset>/<rule>-seed<seed>.json``): drawn once, then reused.

    ``items`` are the (key, class) pairs to draw from; default the split's labelled keys."""
    dataset = load_index(root)["dataset"]
    path = manifest_path(Path(root) / "splits", dataset, rule, seed)
    items = labelled_keys(root, split) if items is None else items
    return load_or_make_split(path, items, rule, seed, dataset=dataset)


def _write_subset(root: Path, split: str, keys: frozenset[str], out: Path, out_split: str) -> None:
    index = load_index(root)
    space = index.get("label_space")
    write_shards(
        ShardDataset(root, split=split, batch_size=1).scan(keys=keys),
        out,
        index["dataset"],
        out_split,
        label_space=LabelSpace.from_json(space) if space else None,
        image_format="png",
    )


def _all_keys(root: Path, split: str) -> list[tuple[str, int]]:
    """Every key of ``split`` as one group (dense tasks have no per-image class)."""
    shards = ShardDataset(root, split=split, batch_size=1, verify=True)
    return [(sample["__key__"], 0) for sample in shards.scan(images=False)]


def regime_shards(root: Path, split: str, rule: str, seed: int) -> tuple[Path, str, SplitManifest]:
    """The shard folder and split holding a dense task's regime training images (the whole split at
    100%); images are drawn as one group. The split is read with each shard's sha256 checked first: the
    manifest and the subset must come from the shards the index describes."""
    parsed = SplitRule.parse(rule)
    if parsed.kind == "shot":
        raise ValueError(f"N-shot regimes ({rule}) are defined per class; dense tasks take percentages")
    manifest = regime_manifest(root, split, rule, seed, items=_all_keys(root, split))
    if parsed.value == 100:
        return root, split, manifest
    subset = Path(root) / "regimes" / f"{parsed}-seed{seed}"
    _write_subset(root, split, manifest.key_set, subset, split)
    return subset, split, manifest


@dataclass(frozen=True)
class CarvedRegime:
    """A regime's training images as a shard folder with splits ``train`` and ``val`` (the carve-out)."""

    root: Path
    manifest: SplitManifest
    num_train: int
    num_val: int


def carve_validation(items: Sequence[tuple[str, int]], fraction: float, seed: int) -> frozenset[str]:
    """The keys held out for validation: ``round(fraction * n)`` of each class's keys (at least one, and
    one left for training), drawn with ``seed``; a class of one key stays in training."""
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must lie in (0, 1), got {fraction}")
    by_class: dict[int, list[str]] = defaultdict(list)
    for key, label in items:
        by_class[label].append(key)
    rng, held = random.Random(seed), set()
    for label in sorted(by_class):
        keys = sorted(by_class[label])
        rng.shuffle(keys)
        count = min(max(round(fraction * len(keys)), 1), len(keys) - 1)
        held.update(keys[:count])
    return frozenset(held)


def carved_regime(
    root: Path, split: str, rule: str, seed: int, val_fraction: float, *, by_class: bool
) -> CarvedRegime:
    """The regime ``rule`` of ``split`` (drawn with ``seed``) written once as ``train`` and ``val`` splits
    of ``<root>/regimes/<rule>-seed<seed>-val<fraction>``: validation is ``val_fraction`` of the regime's
    images (of each class when ``by_class``), so that choosing a setting never looks at test data."""
    items = labelled_keys(root, split) if by_class else _all_keys(root, split)
    manifest = regime_manifest(root, split, rule, seed, items=items)
    chosen = [(key, label) for key, label in items if key in manifest.key_set]
    held = carve_validation(chosen, val_fraction, seed)
    out = Path(root) / "regimes" / f"{SplitRule.parse(rule)}-seed{seed}-val{val_fraction:g}"
    _write_subset(root, split, manifest.key_set - held, out, "train")
    _write_subset(root, split, held, out, "val")
    return CarvedRegime(out, manifest, len(manifest) - len(held), len(held))
