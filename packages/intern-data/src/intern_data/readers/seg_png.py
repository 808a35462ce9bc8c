"""Semantic segmentation from label PNGs: Cityscapes, ADE20K, Pascal VOC and plain folders.

Each image pairs with a single-channel label PNG (8- or 16-bit grey, or palette) by relative path:
``<label_dir>/<stem><label_suffix>`` <-> ``<image_dir>/<stem><image_suffix>``. ``{split}`` in a
folder name is replaced by the split. Pixel values go through ``id_to_train_id``; values it does
not list become the ignore index 255 (255 itself stays 255 unless the mapping lists it). Without a
mapping the values are the class indices, and a value that is neither a class index nor 255 makes
the sample corrupt.

Layouts (presets that explicit arguments override):

=============  =====================================================================================
``folder``      ``images/<split>/<stem>.<jpg|png|...>`` + ``labels/<split>/<stem>.png``; ``classes``
                required, identity mapping
``cityscapes``  ``leftImg8bit/<split>/<city>/<x>_leftImg8bit.png`` +
                ``gtFine/<split>/<city>/<x>_gtFine_labelIds.png``; official labelId -> trainId
                mapping, 19 classes
``ade20k``      ``ADEChallengeData2016``: ``images/<split>/<x>.jpg`` + ``annotations/<split>/<x>.png``;
                0 ("other") -> 255 and 1..150 -> 0..149, 150 classes
``voc``         ids in ``ImageSets/Segmentation/<split>.txt``, ``JPEGImages/<id>.jpg`` +
                ``SegmentationClass/<id>.png`` (palette); 21 classes with background, 255 borders
=============  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from intern_data.label_space import LabelSpace
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
from intern_data.readers.voc import VOC_CLASSES
from intern_data.schema import IGNORE_INDEX, Sample

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip
CITYSCAPES_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
"""cityscapesScripts ``labels.py``: labelId -> trainId for the 19 evaluated classes."""

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)  # fmt: skip
"""SceneParsing ``objectInfo150`` names (first synonym), in label order 1..150."""

LAYOUTS: dict[str, dict[str, Any]] = {
    "folder": {"image_dir": "images/{split}", "label_dir": "labels/{split}", "label_suffix": ".png"},
    "cityscapes": {
        "image_dir": "leftImg8bit/{split}",
        "label_dir": "gtFine/{split}",
        "image_suffix": "_leftImg8bit.png",
        "label_suffix": "_gtFine_labelIds.png",
        "id_to_train_id": CITYSCAPES_ID_TO_TRAIN_ID,
        "classes": CITYSCAPES_CLASSES,
    },
    "ade20k": {
        "image_dir": "images/{split}",
        "label_dir": "annotations/{split}",
        "image_suffix": ".jpg",
        "label_suffix": ".png",
        "id_to_train_id": {0: IGNORE_INDEX, **{k: k - 1 for k in range(1, 151)}},
        "classes": ADE20K_CLASSES,
    },
    "voc": {
        "image_dir": "JPEGImages",
        "label_dir": "SegmentationClass",
        "image_suffix": ".jpg",
        "label_suffix": ".png",
        "id_list": "ImageSets/Segmentation/{split}.txt",
        "classes": ("background", *VOC_CLASSES),
    },
}


class SegPngReader(Reader):
    """Image + label PNG pairs -> samples with ``image``, ``mask`` (int64, 255 = ignore), ``label_space``.

    Args:
        root: the dataset folder.
        split: the split, substituted for ``{split}`` in the folder names.
        layout: a preset from ``LAYOUTS`` (``folder``, ``cityscapes``, ``ade20k``, ``voc``).
        image_dir, label_dir: folders relative to ``root``.
        image_suffix: what follows the stem in image names; None tries every image extension.
        label_suffix: what follows the stem in label names.
        id_list: a file (relative to ``root``) of stems to read; default every label file.
        id_to_train_id: stored pixel value -> class index; unlisted values become 255.
        classes: the class names (index = class); required for the ``folder`` layout.
        source: dataset name (default: the layout name, or the root folder's name for ``folder``).
        skip_corrupt: skip and count unreadable or mismatched pairs instead of raising.
    """

    reader_name = "seg_png"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        layout: str = "folder",
        image_dir: str | None = None,
        label_dir: str | None = None,
        image_suffix: str | None = None,
        label_suffix: str | None = None,
        id_list: str | None = None,
        id_to_train_id: Mapping[int, int] | None = None,
        classes: Sequence[str] | None = None,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        if layout not in LAYOUTS:
            raise ReaderError(f"unknown seg_png layout {layout!r}; known: {', '.join(LAYOUTS)}")
        preset = LAYOUTS[layout]
        if source is None and layout != "folder":
            source = layout
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        self.image_dir = self.root / (image_dir or preset["image_dir"]).format(split=split)
        self.label_dir = self.root / (label_dir or preset["label_dir"]).format(split=split)
        self.image_suffix = image_suffix if image_suffix is not None else preset.get("image_suffix")
        self.label_suffix = label_suffix if label_suffix is not None else preset["label_suffix"]
        classes = classes if classes is not None else preset.get("classes")
        if classes is None:
            raise ReaderError(
                f"seg_png layout {layout!r} needs classes=[...] (the class name of each mask value)"
            )
        self.label_space = LabelSpace(self.source, tuple(classes))
        mapping = id_to_train_id if id_to_train_id is not None else preset.get("id_to_train_id")
        self._lut = self._make_lut(mapping)

        require_dir(self.label_dir, "label")
        id_list = id_list or preset.get("id_list")
        if id_list:
            ids_file = require_file(self.root / id_list.format(split=split), f"split {split!r} id list")
            stems = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
            for stem in stems:
                inside(self.label_dir, stem, ids_file)
                inside(self.image_dir, stem, ids_file)
        else:
            stems = sorted(
                p.relative_to(self.label_dir).as_posix()[: -len(self.label_suffix)]
                for p in self.label_dir.rglob(f"*{self.label_suffix}")
                if p.is_file() and not p.name.startswith(".")
            )
            if not stems:
                raise ReaderError(f"{self.label_dir}: no label files ending in {self.label_suffix!r}")
        check_unique_keys([make_key(split, s, drop_extension=False) for s in stems], self.label_dir)
        self._records = stems

    def _make_lut(self, mapping: Mapping[int, int] | None) -> torch.Tensor | None:
        if mapping is None:
            return None
        lut = torch.full((65536,), IGNORE_INDEX, dtype=torch.int64)
        for stored, train_id in mapping.items():
            if not (0 <= train_id < len(self.label_space) or train_id == IGNORE_INDEX):
                raise ReaderError(
                    f"id_to_train_id maps {stored} to {train_id}, not a class index of the "
                    f"{len(self.label_space)} classes nor {IGNORE_INDEX}"
                )
            lut[int(stored)] = train_id
        if IGNORE_INDEX not in mapping:
            lut[IGNORE_INDEX] = IGNORE_INDEX
        return lut

    def _image_path(self, stem: str) -> Path:
        if self.image_suffix is not None:
            return self.image_dir / f"{stem}{self.image_suffix}"
        for ext in IMAGE_EXTENSIONS:
            for candidate in (self.image_dir / f"{stem}{ext}", self.image_dir / f"{stem}{ext.upper()}"):
                if candidate.is_file():
                    return candidate
        return self.image_dir / f"{stem}.jpg"  # reported as missing when read

    def _load(self, stem: str) -> Sample:
        label_path = self.label_dir / f"{stem}{self.label_suffix}"
        image, data = read_image(self._image_path(stem), self.max_pixels)
        stored = decode_unchanged(label_path, self.max_pixels)[0].to(torch.int64)
        if stored.shape != image.shape[1:]:
            raise CorruptSampleError(
                label_path,
                f"label is {tuple(stored.shape)} (H x W) but its image is {tuple(image.shape[1:])}",
            )
        if self._lut is not None:
            mask = self._lut[stored]
        else:
            mask = stored
            bad = (mask >= len(self.label_space)) & (mask != IGNORE_INDEX)
            if bool(bad.any()):
                values = sorted(set(mask[bad].unique().tolist()))
                raise CorruptSampleError(
                    label_path,
                    f"values {values[:10]} are neither class indices "
                    f"(< {len(self.label_space)}) nor {IGNORE_INDEX}",
                )
        sample = self._base(make_key(self.split, stem, drop_extension=False), image, data)
        sample["mask"] = mask
        sample["label_space"] = self.label_space.name
        return sample
