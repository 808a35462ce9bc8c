"""The key list of a shard: its samples' prefixes in order, each with the crc32 of its members.

``{dataset}-{split}-{NNNNNN}.keys.json`` beside the shard, written with it; the shard's entry in
``index.json`` names it and holds its sha256, so the list is as trusted as the index::

    {"format": "intern-shard-keys", "version": 1, "shard": "coco-train-000000.tar",
     "samples": [["<prefix>", <crc32 of the members>], ...]}

The reader takes the list as the truth about the shard: a tar sample whose prefix is not listed is
skipped and counted and takes no place in the epoch, a listed one is the sample at its position, and
one whose members do not match the crc32 (:func:`~intern_data.shards.codec.members_crc`) is skipped
and counted before anything is decoded. Folders written before key lists have none: their shards are
read by tar position, as before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from intern_data.io import atomic_write_bytes
from intern_data.shards.index import ShardIntegrityError

FORMAT = "intern-shard-keys"
VERSION = 1


def key_list_name(shard: str) -> str:
    """The key list file of shard file ``shard``."""
    return f"{shard.removesuffix('.tar')}.keys.json"


def write_key_list(folder: Path, shard: str, samples: list[tuple[str, int]]) -> dict[str, str]:
    """Write the key list of ``shard`` atomically; return its index entry (``name``, ``sha256``)."""
    data = json.dumps(
        {"format": FORMAT, "version": VERSION, "shard": shard, "samples": samples}, separators=(",", ":")
    ).encode()
    name = key_list_name(shard)
    atomic_write_bytes(folder / name, data)
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest()}


def load_key_list(path: str, sha256: str) -> dict[str, tuple[int, int]]:
    """Prefix -> (position, crc32) of a shard's key list, checked against the sha256 in the index.

    Raises:
        ShardIntegrityError: the file is missing, changed since the index was written, or not a key list.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ShardIntegrityError(f"key list {path} named in index.json cannot be read ({err})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ShardIntegrityError(
            f"key list {path} does not match the sha256 in index.json: it changed after the shards were "
            "written; restore it or rewrite the split"
        )
    content = json.loads(data)
    if content.get("format") != FORMAT or content.get("version") != VERSION:
        raise ShardIntegrityError(f"{path} is not an {FORMAT} v{VERSION} file")
    return {prefix: (position, crc) for position, (prefix, crc) in enumerate(content["samples"])}
