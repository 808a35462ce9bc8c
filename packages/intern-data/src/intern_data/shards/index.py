"""The per-dataset ``index.json`` of a shard folder: reading, atomic writing, and the shard list it gives.

One ``index.json`` per dataset folder holds every split written there (written last, atomically, by
:func:`~intern_data.shards.writer.write_shards`)::

    {
      "format": "intern-shards", "version": 1,
      "dataset": "coco",
      "label_space": {"name": "coco", "classes": ["person", ...]} | null,
      "content_hash": "<sha256 over the splits' content hashes, in split-name order>",
      "splits": {
        "train": {
          "count": 1000,                          # samples in the split
          "fields": {"image": 1000, "boxes": 1000, "text": 0, ...},   # samples holding each key
          "sources": {"coco": 1000},              # samples per ``source``
          "stored_formats": {"jpg": 990, "png": 10},  # samples per image member (jpg, png)
          "class_counts": {                       # by class index (a string, JSON keys are strings)
            "label": {"0": 12, ...},              #   samples with this ``label``
            "boxes": {"0": 40, ...},              #   boxes of this class
            "mask":  {"0": 7, ...}                #   samples whose mask holds this class (255 excluded)
          },
          "shards": [{"name": "coco-train-000000.tar", "count": 500, "bytes": 1234, "sha256": "...",
                      "first_key": "...", "last_key": "...",
                      "keys": {"name": "coco-train-000000.keys.json", "sha256": "..."}}, ...],
          "content_hash": "<sha256 over the shards' sha256, in order>",
          "settings": {"image_format": "keep", "quality": 95, "depth_format": "npy",
                       "max_shard_bytes": 134217728, "max_shard_count": 10000}
        }
      }
    }

``keys`` names the shard's key list (:mod:`intern_data.shards.keylist`); shards written before key
lists existed have none and are read by tar position. ``image_format`` ``keep`` stores the source
files' PNG and JPEG bytes as they are (:mod:`intern_data.shards.codec`); indexes written before
``stored_formats`` existed lack it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern_data.label_space import LabelSpace

INDEX_NAME = "index.json"
FORMAT = "intern-shards"
VERSION = 1


class ShardIntegrityError(ValueError):
    """A shard or key list that differs from what ``index.json`` records; the message names the file."""


@dataclass(frozen=True)
class ShardInfo:
    """One shard as the reader needs it: where it is, how many samples it holds, which dataset, and
    what the index records to check it by (empty for tars given by path, or written before key lists)."""

    url: str
    count: int
    dataset: str = ""
    sha256: str = ""
    key_list: str = ""  # path of the key list
    key_list_sha256: str = ""
    label_space: LabelSpace | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.url)


def index_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it names a file, else ``path/index.json``."""
    path = Path(path)
    return path if path.suffix == ".json" else path / INDEX_NAME


def load_index(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an ``index.json`` (or the one inside folder ``path``) and check its format."""
    file = index_path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"no shard index at {file}; write the shards with intern_data.shards.write_shards"
        )
    index = json.loads(file.read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ValueError(f"{file} is not an {FORMAT} v{VERSION} index")
    return index


def split_shards(path: str | os.PathLike[str], split: str) -> list[ShardInfo]:
    """The shards of ``split`` listed in the index at ``path``, with their sample counts."""
    file = index_path(path)
    index = load_index(file)
    if split not in index["splits"]:
        raise KeyError(f"{file} has no split {split!r} (it has: {', '.join(sorted(index['splits']))})")
    space = LabelSpace.from_json(index["label_space"]) if index.get("label_space") else None
    return [
        ShardInfo(
            str(file.parent / shard["name"]),
            int(shard["count"]),
            index["dataset"],
            shard.get("sha256", ""),
            str(file.parent / shard["keys"]["name"]) if "keys" in shard else "",
            shard["keys"]["sha256"] if "keys" in shard else "",
            space,
        )
        for shard in index["splits"][split]["shards"]
    ]


def hash_strings(parts: list[str]) -> str:
    """sha256 of the parts joined by newlines: the content hash of a split or of a dataset."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``'s index while a split's entry is read, changed and written."""
    with open(folder / f".{INDEX_NAME}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
