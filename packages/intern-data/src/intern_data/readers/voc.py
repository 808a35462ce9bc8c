"""Pascal VOC XML detection datasets (VOC2007, VOC2012, and other datasets in VOC format).

Layout (``root`` is e.g. ``VOCdevkit/VOC2007``): ids in ``ImageSets/Main/<split>.txt``, one XML per
id in ``Annotations/``, images in ``JPEGImages/<id>.jpg`` (else the XML's ``filename``).

- Boxes: VOC's 1-based inclusive ``xmin, ymin, xmax, ymax`` become 0-based pixel edges
  ``[xmin - 1, ymin - 1, xmax, ymax]`` (as detectron2 reads VOC), clipped to the image (``<size>``);
  boxes with no area left are dropped. Counts are in ``reader.box_stats``.
- ``difficult``: the schema has no per-box flag, so difficult objects are left out of ``boxes`` by
  default (counted under ``box_stats["difficult"]``), matching VOC evaluation, which neither rewards
  nor penalises them; ``include_difficult=True`` keeps them as ordinary boxes.
- Labels: the 20 VOC classes (no background) in their usual order, or ``classes`` for another
  dataset in VOC format; an object whose name is not a class is an error naming the XML file.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from intern_data.label_space import LabelSpace
from intern_data.readers._boxes import clip_box
from intern_data.readers.base import (
    CorruptSampleError,
    Reader,
    ReaderError,
    check_unique_keys,
    inside,
    make_key,
    read_image,
    require_dir,
    require_file,
)
from intern_data.schema import Sample

logger = logging.getLogger(__name__)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip


def _text(node: ET.Element, tag: str, xml: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise ReaderError(f"{xml}: <{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, xml: Path) -> float:
    text = _text(node, tag, xml)
    try:
        return float(text)
    except ValueError:
        raise ReaderError(f"{xml}: <{tag}> is {text!r}, not a number") from None


class VocReader(Reader):
    """Pascal VOC XML -> samples with ``image``, ``boxes``, ``box_labels`` and ``label_space``.

    Args:
        root: the VOC year folder holding ``Annotations``, ``ImageSets`` and ``JPEGImages``.
        split: ``train``, ``val``, ``trainval`` or ``test`` (a file in ``ImageSets/Main``).
        include_difficult: keep ``difficult`` objects as ordinary boxes.
        classes: class names for a non-VOC dataset in VOC format; default the 20 VOC classes.
        source: dataset name (default ``"voc"``); also the label space's name.
        skip_corrupt: skip and count unreadable images instead of raising.
    """

    reader_name = "voc"
    default_source = "voc"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        include_difficult: bool = False,
        classes: Sequence[str] | None = None,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        self.include_difficult = include_difficult
        self.label_space = LabelSpace(self.source, tuple(classes or VOC_CLASSES))
        ids_file = require_file(self.root / "ImageSets" / "Main" / f"{split}.txt", f"split {split!r} id list")
        ann_dir = require_dir(self.root / "Annotations", "annotations")
        ids = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
        check_unique_keys([make_key(split, i, drop_extension=False) for i in ids], ids_file)
        self.box_stats: Counter[str] = Counter()
        self._records = [
            self._parse(image_id, require_file(inside(ann_dir, f"{image_id}.xml", ids_file), "annotation"))
            for image_id in ids
        ]
        self.box_stats["kept"] = sum(len(r[4]) for r in self._records)
        if any(v for k, v in self.box_stats.items() if k != "kept"):
            logger.info("%s: boxes %s", ids_file, dict(self.box_stats))

    def _parse(self, image_id: str, xml: Path) -> tuple[str, str | None, int, int, list[Any]]:
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as err:
            raise ReaderError(f"{xml}: not valid XML ({err})") from None
        size = tree.find("size")
        if size is None:
            raise ReaderError(f"{xml}: no <size>")
        width, height = int(_number(size, "width", xml)), int(_number(size, "height", xml))
        filename = tree.findtext("filename")
        objects = []
        for obj in tree.iter("object"):
            name = _text(obj, "name", xml)
            if name not in self.label_space.classes:
                raise ReaderError(
                    f"{xml}: object {name!r} is not one of the classes {list(self.label_space.classes)}"
                )
            difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
            if difficult and not self.include_difficult:
                self.box_stats["difficult"] += 1
                continue
            bnd = obj.find("bndbox")
            if bnd is None:
                raise ReaderError(f"{xml}: object {name!r} has no <bndbox>")
            x0, y0, x1, y1 = (_number(bnd, t, xml) for t in ("xmin", "ymin", "xmax", "ymax"))
            box = clip_box((x0 - 1, y0 - 1, x1, y1), width, height, self.box_stats)
            if box is not None:
                objects.append((box, self.label_space.index(name)))
        if filename:
            inside(self.root / "JPEGImages", filename.strip(), xml)
        return image_id, filename.strip() if filename else None, width, height, objects

    def _image_path(self, image_id: str, filename: str | None) -> Path:
        path = self.root / "JPEGImages" / f"{image_id}.jpg"
        if not path.is_file() and filename:
            return self.root / "JPEGImages" / filename
        return path

    def _load(self, record: tuple[str, str | None, int, int, list[Any]]) -> Sample:
        image_id, filename, width, height, objects = record
        path = self._image_path(image_id, filename)
        image, data = read_image(path, self.max_pixels)
        if tuple(image.shape[1:]) != (height, width):
            raise CorruptSampleError(
                path, f"image is {image.shape[2]}x{image.shape[1]} but its XML says {width}x{height}"
            )
        sample = self._base(make_key(self.split, image_id, drop_extension=False), image, data)
        sample["boxes"] = torch.tensor([b for b, _ in objects], dtype=torch.float32).reshape(-1, 4)
        sample["box_labels"] = torch.tensor([c for _, c in objects], dtype=torch.int64)
        sample["label_space"] = self.label_space.name
        return sample
