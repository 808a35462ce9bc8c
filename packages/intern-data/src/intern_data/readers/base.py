"""What every reader shares: the `Reader` base class, errors, key making and image decoding.

A reader indexes its dataset when it is built (annotation files are read and checked then, so a
missing file or a category id that is not in the categories list fails at once, naming the file),
and decodes one sample at a time while it is iterated. Iteration order is deterministic (sorted
paths or file order), and every ``__key__`` is ``"<split>/<path without extension>"`` with dots
replaced by ``_``: unique within the dataset, stable between runs, and safe as a webdataset key
(webdataset splits a member name into key and extension at the first dot).

An unreadable image, label or depth file inside a dataset raises `CorruptSampleError` naming the
file. With ``skip_corrupt=True`` the reader logs it, counts it in ``reader.skipped`` (the paths in
``reader.skipped_files``) and goes on; ``len(reader)`` stays the number of indexed samples. Images are
decoded by :mod:`intern_data.imaging`, which raises on corrupt bytes (it never crashes the process)
and refuses an image over ``reader.max_pixels`` (default 10^8) before decoding it. A sample decoded
from an image file also holds the file's bytes (``__image_bytes__``, :mod:`intern_data.schema`), so
the shard writer can keep them as they are.

A path taken from the dataset's own files (an annotation's ``file_name``, a list of ids or pairs) must
stay inside the folder it is relative to (`inside`); one that leaves it is a `ReaderError` naming the
file and the path, raised when the reader is built.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor

from intern_data.imaging import MAX_PIXELS, ImageDecodeError, decode_image
from intern_data.label_space import LabelSpace
from intern_data.schema import IMAGE_BYTES, Sample

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
"""Files the folder readers take as images (case-insensitive): JPEG is decoded by torchvision, the
others by Pillow (:mod:`intern_data.imaging`)."""


class ReaderError(ValueError):
    """Input a reader cannot use; the message names the file and the problem."""


class MissingDataError(ReaderError, FileNotFoundError):
    """A file or folder the dataset needs is absent; the message says what to install or pass."""


class MissingDependencyError(ReaderError, ImportError):
    """A Python package the reader needs is not installed; the message names the pip command."""


class UnknownReaderError(KeyError):
    """`open_reader` was given a name that is not in ``READERS``; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptSampleError(ReaderError):
    """One sample's file cannot be read or does not match its annotation; ``path`` is that file."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def make_key(split: str, *parts: str | Path, drop_extension: bool = True) -> str:
    """``"<split>/<parts...>"`` with no dots: the last part's extension dropped, other dots -> ``_``.

    Pass ``drop_extension=False`` for ids and stems that have no extension to drop.
    """
    path = Path(*[str(p) for p in parts])
    stem = path.with_suffix("").as_posix() if drop_extension and path.suffix else path.as_posix()
    return f"{split}/{stem.lstrip('/')}".replace(".", "_")


def check_unique_keys(keys: Sequence[str], where: Path | str) -> None:
    """Raise `ReaderError` naming ``where`` and the first repeated keys if ``keys`` repeat."""
    counts = Counter(keys)
    dupes = [k for k, n in counts.items() if n > 1]
    if dupes:
        raise ReaderError(
            f"{where}: {len(dupes)} sample keys repeat (e.g. {dupes[:3]}); two files map to the same "
            "key once extensions are dropped and dots become '_': rename one of them"
        )


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file; otherwise raise `MissingDataError` naming it and ``what``."""
    if not path.is_file():
        raise MissingDataError(f"{path}: {what} not found")
    return path


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder; otherwise raise `MissingDataError` naming it and ``what``."""
    if not path.is_dir():
        raise MissingDataError(f"{path}: {what} folder not found")
    return path


def is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def inside(base: Path, relative: str, where: Path | str) -> Path:
    """``base / relative`` when ``relative`` stays inside ``base``; else a `ReaderError` naming ``where``.

    The check is on the path as written (absolute, or ``..`` past its start), so a dataset may still
    be a tree of symbolic links.
    """
    normal = posixpath.normpath(relative.replace("\\", "/"))
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise ReaderError(f"{where}: path {relative!r} leaves {base}; a dataset's paths must stay inside it")
    return base / relative


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing or unreadable file is a `CorruptSampleError`."""
    try:
        return path.read_bytes()
    except OSError as err:
        problem = "file not found" if not path.exists() else f"cannot read file ({err})"
        raise CorruptSampleError(path, problem) from None


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[Tensor, bytes]:
    """An image file decoded to uint8 3 x H x W (grey and palette images are expanded to RGB, a 16-bit
    image keeps its high byte), and the file's bytes.

    EXIF orientation is not applied, so pixels match annotations made on the stored image, as with
    pycocotools and torchvision's dataset classes.
    """
    data = read_bytes(path)
    try:
        return decode_image(data, "rgb", max_pixels), data
    except ImageDecodeError as err:
        raise CorruptSampleError(path, f"cannot decode image ({err})") from None


def decode_unchanged(path: Path, max_pixels: int = MAX_PIXELS) -> Tensor:
    """Decode a single-channel label or depth PNG as stored: 1 x H x W, uint8 or uint16 (palette PNGs,
    such as Pascal VOC's ``SegmentationClass``, keep their indices)."""
    try:
        return decode_image(read_bytes(path), "plane", max_pixels)
    except ImageDecodeError as err:
        raise CorruptSampleError(path, str(err)) from None


class Reader:
    """Base class: a deterministic iterable of schema-valid `Sample` dicts from one dataset split.

    Subclasses set ``reader_name`` (the registry name), fill ``self._records`` in ``__init__`` and
    implement ``_load(record) -> Sample``; ``_load`` raises `CorruptSampleError` for a sample whose
    file cannot be used.

    Args:
        root: the dataset's folder.
        split: the split to read (e.g. ``"train"``).
        source: dataset name written into every sample; default is the reader's ``default_source``,
            else the root folder's name.
        skip_corrupt: skip (log and count) samples whose file cannot be read instead of raising.

    ``max_pixels`` (an attribute, default 10^8) is the pixel limit of one decoded image.
    """

    reader_name: ClassVar[str] = ""
    default_source: ClassVar[str | None] = None
    max_pixels: int = MAX_PIXELS

    def __init__(
        self, root: Path | str, split: str, *, source: str | None = None, skip_corrupt: bool = False
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        self.source = source or self.default_source or self.root.resolve().name
        self.skip_corrupt = skip_corrupt
        self.skipped = 0
        self.skipped_files: list[Path] = []
        self.label_space: LabelSpace | None = None
        self._records: list[Any] = []

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Sample:
        """The sample at ``index`` in iteration order; a corrupt one raises even with skip_corrupt."""
        return self._load(self._records[index])

    def __iter__(self) -> Iterator[Sample]:
        for record in self._records:
            try:
                sample = self._load(record)
            except CorruptSampleError as err:
                if not self.skip_corrupt:
                    raise
                self.skipped += 1
                self.skipped_files.append(err.path)
                logger.warning("%s/%s: skipping %s", self.source, self.split, err)
                continue
            yield sample

    def __repr__(self) -> str:
        space = f", label_space={len(self.label_space)} classes" if self.label_space else ""
        return f"{type(self).__name__}(source={self.source!r}, split={self.split!r}, n={len(self)}{space})"

    def _load(self, record: Any) -> Sample:
        raise NotImplementedError

    def _base(self, key: str, image: Tensor, data: bytes | None = None) -> Sample:
        """The sample's common keys; ``data``: the image file's bytes (``IMAGE_BYTES``)."""
        sample = {"__key__": key, "source": self.source, "image": image}
        if data is not None:
            sample[IMAGE_BYTES] = data
        return sample
