"""Depth maps stored as 16-bit PNGs: KITTI (value / 256 = metres) and NYUv2 exports (value / 1000).

Pairs come from a list file or from matching names:

- ``pairs``: a text file (relative to ``root``) with one ``<image> <depth>`` pair per line, both
  relative to ``root`` (BTS / AdaBins style; further columns such as the focal length are ignored,
  and lines whose depth is ``None`` are skipped).
- otherwise every ``<depth_dir>/<stem><depth_suffix>`` pairs with ``<image_dir>/<stem><image_suffix>``
  (default ``<split>/depth/<stem>.png`` and ``<split>/image/<stem>.<jpg|png|...>``).

``depth = stored / scale`` in metres (float32), and a stored 0 stays 0 = invalid (no measurement).
``scale`` has no default, because a wrong one silently gives wrong metres: ``"kitti"`` (256),
``"nyu"`` (1000) or a number.
"""

from __future__ import annotations

from pathlib import Path

import torch

from intern_data.readers.base import (
    IMAGE_EXTENSIONS,
    CorruptSampleError,
    Reader,
    ReaderError,
    check_unique_keys,
    decode_unchanged,
    inside,
    make_key,
    read_image,
    require_dir,
    require_file,
)
from intern_data.schema import Sample

SCALES = {"kitti": 256.0, "nyu": 1000.0}


class DepthPngReader(Reader):
    """Image + depth PNG pairs -> samples with ``image`` and ``depth`` (float32 metres, 0 = invalid).

    Args:
        root: the dataset folder.
        split: the split, substituted for ``{split}`` in folder and file names.
        scale: stored value per metre: ``"kitti"`` (256), ``"nyu"`` (1000) or a positive number.
        pairs: list file of ``<image> <depth>`` lines, relative to ``root`` (may contain ``{split}``).
        image_dir, depth_dir: folders relative to ``root`` when pairing by name.
        image_suffix: what follows the stem in image names; None tries every image extension.
        depth_suffix: what follows the stem in depth names.
        source: dataset name (default: the root folder's name).
        skip_corrupt: skip and count unreadable or mismatched pairs instead of raising.
    """

    reader_name = "depth_png"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        scale: float | str | None = None,
        pairs: str | None = None,
        image_dir: str = "{split}/image",
        depth_dir: str = "{split}/depth",
        image_suffix: str | None = None,
        depth_suffix: str = ".png",
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        if isinstance(scale, str):
            if scale not in SCALES:
                raise ReaderError(f"unknown depth scale {scale!r}; use one of {sorted(SCALES)} or a number")
            scale = SCALES[scale]
        if scale is None or not float(scale) > 0:
            raise ReaderError(
                "depth_png needs scale=: 'kitti' (PNG / 256), 'nyu' (PNG / 1000) or a positive number, "
                f"got {scale!r}"
            )
        self.scale = float(scale)
        records: list[tuple[str, Path, Path]] = []
        if pairs is not None:
            pairs_file = require_file(self.root / pairs.format(split=split), "depth pair list")
            for n, line in enumerate(pairs_file.read_text().splitlines(), 1):
                cols = line.split()
                if not cols:
                    continue
                if len(cols) < 2:
                    raise ReaderError(f"{pairs_file}:{n}: expected '<image> <depth>', got {line!r}")
                if cols[1] == "None":
                    continue
                for col in cols[:2]:
                    inside(self.root, col, f"{pairs_file}:{n}")
                records.append((make_key(split, cols[1]), self.root / cols[0], self.root / cols[1]))
            where: Path = pairs_file
        else:
            image_root = self.root / image_dir.format(split=split)
            depth_root = require_dir(self.root / depth_dir.format(split=split), "depth")
            for path in sorted(depth_root.rglob(f"*{depth_suffix}")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                stem = path.relative_to(depth_root).as_posix()[: -len(depth_suffix)]
                key = make_key(split, stem, drop_extension=False)
                records.append((key, self._find_image(image_root, stem, image_suffix), path))
            where = depth_root
        if not records:
            raise ReaderError(f"{where}: no depth maps found")
        check_unique_keys([k for k, _, _ in records], where)
        self._records = records

    @staticmethod
    def _find_image(image_root: Path, stem: str, suffix: str | None) -> Path:
        if suffix is not None:
            return image_root / f"{stem}{suffix}"
        for ext in IMAGE_EXTENSIONS:
            for candidate in (image_root / f"{stem}{ext}", image_root / f"{stem}{ext.upper()}"):
                if candidate.is_file():
                    return candidate
        return image_root / f"{stem}.png"  # reported as missing when read

    def _load(self, record: tuple[str, Path, Path]) -> Sample:
        key, image_path, depth_path = record
        image, data = read_image(image_path, self.max_pixels)
        stored = decode_unchanged(depth_path, self.max_pixels)[0]
        if stored.shape != image.shape[1:]:
            raise CorruptSampleError(
                depth_path,
                f"depth is {tuple(stored.shape)} (H x W) but its image is {tuple(image.shape[1:])}",
            )
        sample = self._base(key, image, data)
        sample["depth"] = stored.to(torch.float32) / self.scale
        return sample
