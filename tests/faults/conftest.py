"""Fault injection: small shard folders and the tools to damage them, for tests/faults."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from intern_data.label_space import LabelSpace
from intern_data.shards import drop_padding, make_pipeline, write_shards
from intern_data.shards.codec import png_chunk

SPACE = LabelSpace("toy", ("a", "b", "c"))
SAMPLES = 12  # two shards of 6


def samples(n: int = SAMPLES, label: Callable[[int], int] = lambda i: i % 3) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        image = torch.randint(0, 256, (3, 24, 32), dtype=torch.uint8, generator=g)
        out.append({"__key__": f"s{i:05d}", "source": "toy", "image": image, "label": label(i)})
        out[-1]["label_space"] = "toy"
    return out


@pytest.fixture
def shards(tmp_path: Path) -> Callable[..., Path]:
    """``shards(image_format="png", legacy=False)``: a 12-sample, 3-class folder in two shards;
    ``legacy=True`` strips the key lists, as in a folder written before them."""

    def make(image_format: str = "png", legacy: bool = False) -> Path:
        folder = tmp_path / f"toy-{image_format}"
        write_shards(samples(), folder, "toy", "train", SPACE, max_shard_count=6, image_format=image_format)
        if legacy:
            strip_key_lists(folder)
        return folder

    return make


def strip_key_lists(folder: Path) -> None:
    index = json.loads((folder / "index.json").read_text())
    for entry in index["splits"]["train"]["shards"]:
        (folder / entry.pop("keys")["name"]).unlink()
    (folder / "index.json").write_text(json.dumps(index))


def rewrite_tar(
    path: Path,
    edit: Callable[[str, bytes], bytes | None],
    extra: dict[str, bytes] | None = None,
    after: str | None = None,
) -> None:
    """Rewrite a tar member by member (``edit(name, data)``: new bytes, or None to drop it), with the
    ``extra`` members (name -> bytes) after member ``after`` (default: at the end)."""
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    members = [(name, edit(name, data)) for name, data in members]
    at = next(i + 1 for i, (name, _) in enumerate(members) if name == after) if after else len(members)
    members[at:at] = list((extra or {}).items())
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            if data is not None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def flip(data: bytes, count: int = 8) -> bytes:
    """``data`` with ``count`` bytes in its middle inverted."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + count]) + data[middle + count :]


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A small PNG whose header declares ``width x height`` RGB pixels (the pixels are never made)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def read_all(folder: Path | list[str], **kwargs: Any) -> tuple[list[str], dict[str, int]]:
    """The real (unpadded) keys one epoch delivers, and the reader's counts (seen, skipped, padded)."""
    kwargs.setdefault("max_skip_fraction", 0.5)
    loader = make_pipeline(folder, batch_size=4, rank=0, world_size=1, min_samples_for_skip_check=1, **kwargs)
    keys = [key for batch in loader for key in drop_padding(batch)["__key__"]]
    return keys, loader.position.counts()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
