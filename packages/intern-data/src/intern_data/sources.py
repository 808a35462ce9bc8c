"""From a data config (``conf/data/*.yaml``) to a shard folder and a DataModule.

A data config names where its samples come from (``source``):

- ``world``: an embedded-world dataset, generated and cached as shards (``cache_dir``, ``seed``,
  ``img_size``, ``sizes``);
- ``reader``: a real dataset in its native format read by an intern-data reader (``reader``, ``root``,
  ``options``), converted once to shards in ``shards_dir``;
- ``shards``: a shard folder made earlier (``root``).

``task`` (classification, detection, segmentation, depth, image-text) picks the DataModule;
``max_skip_fraction`` (the share of bad samples that stops a run) and ``verify`` (check each shard's
sha256 before reading it) go to it (:func:`reader_options`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from intern_data.datamodules import (
    ClassificationShardDataModule,
    DepthShardDataModule,
    DetectionShardDataModule,
    ImageTextShardDataModule,
    SegmentationShardDataModule,
    ShardDataModule,
)
from intern_data.readers import open_reader
from intern_data.shards.index import index_path, load_index
from intern_data.shards.writer import write_shards
from intern_data.world import world_shards

SOURCES = ("world", "reader", "shards")
DATAMODULES: dict[str, type[ShardDataModule]] = {
    "classification": ClassificationShardDataModule,
    "detection": DetectionShardDataModule,
    "segmentation": SegmentationShardDataModule,
    "depth": DepthShardDataModule,
    "image-text": ImageTextShardDataModule,
}


class DataConfigError(ValueError):
    """A data config that cannot give shards; the message names the field."""


def _field(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None:
        raise DataConfigError(
            f"data config {data.get('name', '?')!r} needs data.{key} (source {data['source']})"
        )
    return value


def prepare_shards(data: Mapping[str, Any], splits: Sequence[str] | None = None) -> Path:
    """Return the shard folder of ``data`` holding ``splits`` (default: ``data.splits``), making it if needed.

    Raises:
        DataConfigError: an unknown source, a missing field, or a shard folder without a wanted split.
        ReaderError: a reader cannot read the native data (the message names the file).
    """
    source = data.get("source")
    if source not in SOURCES:
        raise DataConfigError(f"data.source is {source!r}; choose from {', '.join(SOURCES)}")
    splits = list(splits if splits is not None else _field(data, "splits"))
    if source == "world":
        return world_shards(
            data.get("dataset") or _field(data, "name"),
            _field(data, "cache_dir"),
            splits,
            seed=int(data.get("seed", 0)),
            img_size=data.get("img_size"),
            sizes=data.get("sizes"),
        )
    if source == "reader":
        folder = Path(_field(data, "shards_dir"))
        for split in splits:
            if _has_split(folder, split):
                continue
            reader = open_reader(
                _field(data, "reader"), data.get("root"), split, **dict(data.get("options") or {})
            )
            write_shards(reader, folder, reader.source, split, reader.label_space, image_format="png")
        return folder
    folder = Path(_field(data, "root"))
    missing = [split for split in splits if not _has_split(folder, split)]
    if missing:
        raise DataConfigError(f"shard folder {folder} (data.root) has no split(s) {missing}")
    return folder


def _has_split(folder: Path, split: str) -> bool:
    return index_path(folder).is_file() and split in load_index(folder)["splits"]


def reader_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """The shard reader's settings of a data config, checked: ``max_skip_fraction`` (default 0.01) and
    ``verify`` (default false), as :class:`~intern_data.shards.reader.ShardDataset` takes them.

    Raises:
        DataConfigError: ``max_skip_fraction`` is not a number in [0, 1] or ``verify`` not a boolean.
    """
    fraction, verify = data.get("max_skip_fraction", 0.01), data.get("verify", False)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise DataConfigError(f"data.max_skip_fraction must be a number in [0, 1], got {fraction!r}")
    if not isinstance(verify, bool):
        raise DataConfigError(f"data.verify must be true or false, got {verify!r}")
    return {"max_skip_fraction": float(fraction), "verify": verify}


def build_datamodule(data: Mapping[str, Any], root: Path, **kwargs: Any) -> ShardDataModule:
    """The DataModule for ``data.task`` over the shard folder ``root``, with the config's
    :func:`reader_options`, ``batch_augment`` (classification's augmentation on the training device,
    :mod:`intern_data.shards.batched`) and ``decode_on_device`` (its JPEG decoding there too);
    ``kwargs`` go to its constructor (and win)."""
    task = _field(data, "task")
    if task not in DATAMODULES:
        raise DataConfigError(f"data.task is {task!r}; choose from {', '.join(DATAMODULES)}")
    batched = data.get("batch_augment", False)
    if not isinstance(batched, bool) or (batched and task != "classification"):
        raise DataConfigError(
            f"data.batch_augment must be true or false, and true only for classification; got {batched!r} "
            f"for task {task!r}"
        )
    on_device = data.get("decode_on_device", False)
    if not isinstance(on_device, bool) or (on_device and not batched):
        raise DataConfigError(
            "data.decode_on_device must be true or false, and true only with data.batch_augment; "
            f"got {on_device!r}"
        )
    options = {**reader_options(data)}
    if batched:
        options.update(batch_augment=True, decode_on_device=on_device)
    return DATAMODULES[task](str(root), **{**options, **kwargs})
