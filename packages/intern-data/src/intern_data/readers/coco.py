"""COCO JSON detection datasets: COCO, and Objects365 / Open Images converted to COCO style.

Default layout (COCO 2017): ``root/annotations/instances_<split>.json`` and images in
``root/<split>/`` (``split="train2017"``); ``annotation`` and ``image_dir`` point elsewhere.

- ``bbox`` ``[x, y, w, h]`` becomes ``boxes`` ``[x, y, x + w, y + h]`` (float32, pixels).
- Categories in id order become contiguous ``box_labels`` ``0..K-1`` in ``label_space`` (no
  background class; detection heads add their own).
- Crowd regions (``iscrowd: 1``) are left out: the schema has no crowd flag, and a crowd box used as
  an ordinary box would teach the detector to fire on groups.
- A box reaching outside the image (its ``width``/``height`` in the JSON) is clipped to it; one with
  no area left (including ``w`` or ``h`` <= 0) is dropped. ``reader.box_stats`` counts ``crowd``,
  ``clipped`` and ``empty`` boxes, known as soon as the reader is built.
- Images without boxes are kept (empty ``boxes`` 0 x 4) unless ``skip_empty=True``.
- An annotation naming an image or a category id not in the JSON, or a ``file_name`` leaving
  ``image_dir`` (absolute, or ``..`` past it), is an error naming the file.
  A decoded image whose size differs from the JSON's is a corrupt sample.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch

from intern_data.readers._boxes import clip_box
from intern_data.readers._json import category_space, load_json
from intern_data.readers.base import (
    CorruptSampleError,
    Reader,
    ReaderError,
    check_unique_keys,
    inside,
    make_key,
    read_image,
)
from intern_data.schema import Sample

logger = logging.getLogger(__name__)


class CocoReader(Reader):
    """COCO-style JSON -> samples with ``image``, ``boxes``, ``box_labels`` and ``label_space``.

    Args:
        root: the dataset folder.
        split: the split, e.g. ``"train2017"``.
        annotation: the JSON file; default ``root/annotations/instances_<split>.json``.
        image_dir: folder that ``file_name`` is relative to; default ``root/<split>``.
        skip_empty: leave out images that have no (non-crowd) box.
        source: dataset name (default ``"coco"``); also the label space's name.
        skip_corrupt: skip and count unreadable images instead of raising.
    """

    reader_name = "coco"
    default_source = "coco"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        annotation: Path | str | None = None,
        image_dir: Path | str | None = None,
        skip_empty: bool = False,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        self.annotation = (
            Path(annotation) if annotation else self.root / "annotations" / f"instances_{split}.json"
        )
        self.image_dir = Path(image_dir) if image_dir else self.root / split
        data = load_json(self.annotation, "COCO annotation file", ("images", "annotations", "categories"))
        self.label_space, cat_to_label = category_space(self.annotation, data["categories"], self.source)

        images: dict[Any, dict[str, Any]] = {}
        for i, image in enumerate(data["images"]):
            if not all(k in image for k in ("id", "file_name", "width", "height")):
                raise ReaderError(f"{self.annotation}: images[{i}] needs id, file_name, width and height")
            inside(self.image_dir, image["file_name"], f"{self.annotation}: images[{i}]")
            images[image["id"]] = image
        self.box_stats: Counter[str] = Counter()
        per_image: dict[Any, list[tuple[tuple[float, float, float, float], int]]] = defaultdict(list)
        for i, ann in enumerate(data["annotations"]):
            image = images.get(ann.get("image_id"))
            if image is None:
                raise ReaderError(
                    f"{self.annotation}: annotations[{i}] names image id {ann.get('image_id')!r}, "
                    "not in images"
                )
            cat = ann.get("category_id")
            if cat not in cat_to_label:
                raise ReaderError(
                    f"{self.annotation}: annotations[{i}] (id {ann.get('id')!r}) has category_id {cat!r}, "
                    "not in the categories list"
                )
            if ann.get("iscrowd", 0):
                self.box_stats["crowd"] += 1
                continue
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4):
                raise ReaderError(
                    f"{self.annotation}: annotations[{i}] bbox must be [x, y, w, h], got {bbox!r}"
                )
            x, y, w, h = (float(v) for v in bbox)
            box = clip_box(
                (x, y, x + w, y + h), float(image["width"]), float(image["height"]), self.box_stats
            )
            if box is not None:
                per_image[image["id"]].append((box, cat_to_label[cat]))
        self.box_stats["kept"] = sum(len(v) for v in per_image.values())
        if any(self.box_stats[k] for k in ("crowd", "clipped", "empty")):
            logger.info("%s: boxes %s", self.annotation, dict(self.box_stats))

        records = []
        for image_id, image in images.items():
            objects = per_image.get(image_id, [])
            if skip_empty and not objects:
                continue
            records.append((image["file_name"], int(image["width"]), int(image["height"]), objects))
        self._records = sorted(records, key=lambda r: r[0])
        check_unique_keys([make_key(split, r[0]) for r in self._records], self.annotation)

    def _load(self, record: tuple[str, int, int, list[Any]]) -> Sample:
        file_name, width, height, objects = record
        path = self.image_dir / file_name
        image, data = read_image(path, self.max_pixels)
        if tuple(image.shape[1:]) != (height, width):
            raise CorruptSampleError(
                path,
                f"image is {image.shape[2]}x{image.shape[1]} "
                f"but {self.annotation.name} says {width}x{height}",
            )
        sample = self._base(make_key(self.split, file_name), image, data)
        sample["boxes"] = torch.tensor([b for b, _ in objects], dtype=torch.float32).reshape(-1, 4)
        sample["box_labels"] = torch.tensor([c for _, c in objects], dtype=torch.int64)
        sample["label_space"] = self.label_space.name
        return sample
