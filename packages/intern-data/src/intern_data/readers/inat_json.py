"""iNaturalist 2021 / Herbarium 2021 style JSON classification datasets.

The JSON holds ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``, ``category_id``)
and ``categories`` (``id``, ``name``). Default annotation file: ``root/<split>.json`` (iNaturalist:
``train.json``, ``val.json``), else ``root/<split>/metadata.json`` (Herbarium). ``file_name`` is
relative to the annotation file's folder (``image_root`` overrides). Classes are the categories in
id order, mapped to contiguous indices. An image without annotation (a test split) gives a sample
without ``label``; an image with two different labels, an annotation naming an unknown image or a
category id not in ``categories`` is an error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intern_data.readers._json import category_space, load_json
from intern_data.readers.base import (
    MissingDataError,
    Reader,
    ReaderError,
    check_unique_keys,
    inside,
    make_key,
    read_image,
)
from intern_data.schema import Sample


class INatJsonReader(Reader):
    """iNaturalist / Herbarium JSON -> samples with ``image``, ``label`` and ``label_space``.

    Args:
        root: the dataset folder.
        split: the split (names the default annotation file).
        annotation: the JSON file; default ``root/<split>.json`` or ``root/<split>/metadata.json``.
        image_root: folder that ``file_name`` is relative to; default the JSON file's folder.
        source: dataset name (default: the root folder's name); also the label space's name.
        skip_corrupt: skip and count unreadable images instead of raising.
    """

    reader_name = "inat_json"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        annotation: Path | str | None = None,
        image_root: Path | str | None = None,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        if annotation is None:
            candidates = [self.root / f"{split}.json", self.root / split / "metadata.json"]
            found = [p for p in candidates if p.is_file()]
            if not found:
                raise MissingDataError(
                    f"no annotation file for split {split!r}: looked for {' and '.join(map(str, candidates))}"
                )
            annotation = found[0]
        self.annotation = Path(annotation)
        self.image_root = Path(image_root) if image_root is not None else self.annotation.parent
        data = load_json(self.annotation, "annotation file", ("images", "categories"))
        self.label_space, cat_to_label = category_space(self.annotation, data["categories"], self.source)

        images: dict[Any, str] = {}
        for i, image in enumerate(data["images"]):
            if "id" not in image or "file_name" not in image:
                raise ReaderError(f"{self.annotation}: images[{i}] needs 'id' and 'file_name'")
            inside(self.image_root, image["file_name"], f"{self.annotation}: images[{i}]")
            images[image["id"]] = image["file_name"]
        labels: dict[Any, int] = {}
        for i, ann in enumerate(data.get("annotations") or []):
            image_id, cat = ann.get("image_id"), ann.get("category_id")
            if image_id not in images:
                raise ReaderError(
                    f"{self.annotation}: annotations[{i}] names image id {image_id!r}, not in images"
                )
            if cat not in cat_to_label:
                raise ReaderError(
                    f"{self.annotation}: annotations[{i}] has category_id {cat!r}, not in the categories list"
                )
            label = cat_to_label[cat]
            if labels.setdefault(image_id, label) != label:
                raise ReaderError(f"{self.annotation}: image id {image_id!r} has two different categories")
        self._records = [(file_name, labels.get(image_id)) for image_id, file_name in images.items()]
        self._records.sort(key=lambda r: r[0])
        check_unique_keys([make_key(split, f) for f, _ in self._records], self.annotation)

    def _load(self, record: tuple[str, int | None]) -> Sample:
        file_name, label = record
        image, data = read_image(self.image_root / file_name, self.max_pixels)
        sample = self._base(make_key(self.split, file_name), image, data)
        if label is not None:
            sample["label"] = label
            sample["label_space"] = self.label_space.name
        return sample
