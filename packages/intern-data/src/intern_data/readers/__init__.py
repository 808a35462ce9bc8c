"""Readers for real dataset formats and the packaged real datasets (GV-D).

Every reader is built as ``Reader(root, split, **options)``, has ``label_space`` (a `LabelSpace` or
None), ``len()``, and iterates schema-valid `Sample` dicts in a deterministic order (see `base`).
``READERS`` maps the names used on the command line to the classes; `open_reader` builds one by name.

>>> reader = open_reader("coco", "/data/coco", "val2017")
>>> sample = next(iter(reader))  # {"__key__": "val2017/000000000139", "source": "coco", ...}
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from intern_data.readers.base import (
    CorruptSampleError,
    MissingDataError,
    MissingDependencyError,
    Reader,
    ReaderError,
    UnknownReaderError,
)
from intern_data.readers.coco import CocoReader
from intern_data.readers.depth_png import DepthPngReader
from intern_data.readers.image_folder import ImageFolderReader
from intern_data.readers.image_text import ImageTextReader
from intern_data.readers.inat_json import INatJsonReader
from intern_data.readers.packaged import DigitsReader, FashionMnistReader, LfwSubsetReader
from intern_data.readers.seg_png import SegPngReader
from intern_data.readers.voc import VocReader

READERS: dict[str, type[Reader]] = {
    cls.reader_name: cls
    for cls in (
        ImageFolderReader,
        INatJsonReader,
        CocoReader,
        VocReader,
        SegPngReader,
        DepthPngReader,
        ImageTextReader,
        FashionMnistReader,
        DigitsReader,
        LfwSubsetReader,
    )
}
"""Reader name (as typed on the command line) -> reader class."""

PACKAGED = ("fashion_mnist", "digits", "lfw")
"""Readers whose data ship in installed packages; their ``root`` may be None."""


def open_reader(name: str, root: Path | str | None, split: str, **kwargs: Any) -> Reader:
    """Build the reader called ``name`` for ``root`` and ``split``; ``kwargs`` go to its constructor.

    Raises:
        UnknownReaderError: ``name`` is not a known reader (a KeyError; the message lists the known ones).
        ReaderError: the data at ``root`` cannot be read (the message names the file).
    """
    try:
        cls = READERS[name]
    except KeyError:
        raise UnknownReaderError(
            f"unknown reader {name!r}; known readers: {', '.join(sorted(READERS))}"
        ) from None
    if root is None and name not in PACKAGED:
        raise ReaderError(f"reader {name!r} needs a root folder")
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        options = ", ".join(p for p in accepted if p not in ("root", "split"))
        raise ReaderError(f"reader {name!r} has no option(s) {', '.join(unknown)}; its options: {options}")
    return cls(root, split, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "PACKAGED",
    "READERS",
    "CocoReader",
    "CorruptSampleError",
    "DepthPngReader",
    "DigitsReader",
    "FashionMnistReader",
    "INatJsonReader",
    "ImageFolderReader",
    "ImageTextReader",
    "LfwSubsetReader",
    "MissingDataError",
    "MissingDependencyError",
    "Reader",
    "ReaderError",
    "SegPngReader",
    "UnknownReaderError",
    "VocReader",
    "open_reader",
]
