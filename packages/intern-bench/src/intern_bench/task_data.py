"""The shard folder of a benchmark task: the world cache, packaged data converted once, or user shards."""

from __future__ import annotations

from pathlib import Path

from intern_data.imaging import ImageDecodeError, image_size
from intern_data.shards import iter_tar_samples, load_index, split_shards
from intern_data.shards.index import index_path
from intern_data.sources import prepare_shards
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
