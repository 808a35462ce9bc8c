"""Class-per-folder image datasets: ImageNet-21K, Places365, Tsinghua Dogs and the like.

Layout: ``root/<split>/<class>/<image>`` (images may sit in sub-folders of the class folder). The
label space is the sorted class folder names of *all* split folders under ``root`` (so ``train``
and ``val`` agree on label indices even when a class is missing from one of them), unless
``classes`` is given, in which case a class folder not in it is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from intern_data.label_space import LabelSpace
from intern_data.readers.base import (
    Reader,
    ReaderError,
    check_unique_keys,
    is_image_file,
    make_key,
    read_image,
    require_dir,
)
from intern_data.schema import Sample


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFolderReader(Reader):
    """``root/<split>/<class>/<image>`` -> samples with ``image``, ``label`` and ``label_space``.

    Args:
        root: the dataset folder holding one folder per split.
        split: the split folder to read.
        classes: the ordered class names; default: sorted class folders of every split.
        source: dataset name (default: the root folder's name); also the label space's name.
        skip_corrupt: skip and count unreadable images instead of raising.
    """

    reader_name = "image_folder"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        classes: Sequence[str] | None = None,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        split_dir = require_dir(self.root / split, f"split {split!r}")
        if classes is None:
            splits = _class_dirs(require_dir(self.root, "dataset"))
            classes = sorted({c.name for s in splits for c in _class_dirs(s)})
        self.label_space = LabelSpace(self.source, tuple(classes))
        for class_dir in _class_dirs(split_dir):
            if class_dir.name not in self.label_space.classes:
                raise ReaderError(
                    f"{class_dir}: class folder is not in the given classes ({len(self.label_space)} names)"
                )
            label = self.label_space.index(class_dir.name)
            files = sorted(p for p in class_dir.rglob("*") if is_image_file(p))
            self._records += [(p, label) for p in files]
        if not self._records:
            raise ReaderError(f"{split_dir}: no images found in <class>/ folders")
        check_unique_keys([self._key(p) for p, _ in self._records], split_dir)

    def _key(self, path: Path) -> str:
        return make_key(self.split, path.relative_to(self.root / self.split))

    def _load(self, record: tuple[Path, int]) -> Sample:
        path, label = record
        sample = self._base(self._key(path), *read_image(path, self.max_pixels))
        sample["label"] = label
        sample["label_space"] = self.label_space.name
        return sample
