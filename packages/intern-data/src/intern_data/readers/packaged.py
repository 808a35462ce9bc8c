"""Real labelled data that ships in packages, no download: Fashion-MNIST, digits, LFW face/non-face.

All three are small, grey (images 1 x H x W uint8) and need no download:

=================  ================================================================================
``fashion_mnist``   Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``,
                    idx files, gzipped or not); the official splits ``train`` (60,000) and ``test``
                    (10,000); 28 x 28; 10 clothing classes.
``digits``          scikit-learn ``load_digits``: 1,797 8 x 8 scans of handwritten digits, values
                    0..16 scaled to 0..255; classes ``"0"``..``"9"``.
``lfw``             scikit-image ``data.lfw_subset()``: 200 25 x 25 crops, the first 100 faces and
                    the last 100 non-faces; classes ``("face", "non-face")``.
=================  ================================================================================

``digits`` and ``lfw`` have no official split, so `stratified_split` makes one: per class (in
ascending label order) the indices are permuted with one ``numpy.random.default_rng(seed)`` and the
first ``round(test_fraction * n)`` go to ``test``; defaults ``seed=0``, ``test_fraction=0.2``
(digits: 1,438 train / 359 test; lfw: 160 / 40). Samples keep the order of the original data, and
``__key__`` is ``"<split>/<index in the original data>"``, so the splits are disjoint by key.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from intern_data.label_space import LabelSpace
from intern_data.readers.base import MissingDataError, MissingDependencyError, Reader, ReaderError, make_key
from intern_data.schema import Sample

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte idx file (MNIST format, ``.gz`` or plain) as a numpy array of its shape."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ReaderError(f"{path}: cannot read idx file ({err})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ReaderError(f"{path}: not an unsigned-byte idx file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ReaderError(
            f"{path}: idx header says {dims} ({int(np.prod(dims))} bytes) but holds {array.size}"
        )
    return array.reshape(dims)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Deterministic per-class train/test split; returns sorted indices for ``train`` and ``test``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.extend(rng.permutation(idx)[: int(np.floor(test_fraction * len(idx) + 0.5))].tolist())
    test_idx = np.sort(np.asarray(test, dtype=np.int64))
    return {"train": np.setdiff1d(np.arange(len(labels)), test_idx), "test": test_idx}


class _ArrayReader(Reader):
    """Samples from in-memory grey images ``(N, H, W) uint8`` and labels, restricted to ``indices``."""

    splits: tuple[str, ...] = ("train", "test")

    def _check_split(self) -> None:
        if self.split not in self.splits:
            raise ReaderError(
                f"{self.reader_name} has no split {self.split!r}; known: {', '.join(self.splits)}"
            )

    def _set_data(
        self, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, classes: tuple[str, ...]
    ) -> None:
        self.label_space = LabelSpace(self.source, classes)
        self._images, self._labels = images, labels.astype(np.int64)
        self._records = indices.tolist()
        self._width = max(5, len(str(len(labels) - 1)))

    def _load(self, index: int) -> Sample:
        image = torch.tensor(self._images[index], dtype=torch.uint8)[None]
        sample = self._base(make_key(self.split, f"{index:0{self._width}d}", drop_extension=False), image)
        sample["label"] = int(self._labels[index])
        sample["label_space"] = self.label_space.name
        return sample


class FashionMnistReader(_ArrayReader):
    """Fashion-MNIST from the Debian package ``dataset-fashion-mnist``.

    Args:
        root: folder holding the idx files; default ``/usr/share/datasets/fashion-mnist``.
        split: ``train`` (60,000) or ``test`` (10,000).
        source: dataset name (default ``"fashion_mnist"``); also the label space's name.
        skip_corrupt: accepted for a uniform interface; in-memory samples cannot be corrupt.
    """

    reader_name = "fashion_mnist"
    default_source = "fashion_mnist"

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        *,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root or FASHION_MNIST_DIR, split, source=source, skip_corrupt=skip_corrupt)
        self._check_split()
        if not self.root.is_dir():
            raise MissingDataError(
                f"Fashion-MNIST not found at {self.root}: install the Debian package dataset-fashion-mnist "
                "(sudo apt-get install dataset-fashion-mnist), "
                "or pass the folder holding its idx files as root"
            )
        images, labels = (self._find(name) for name in _FASHION_FILES[split])
        images_arr, labels_arr = read_idx(images), read_idx(labels)
        if images_arr.ndim != 3 or labels_arr.ndim != 1 or len(images_arr) != len(labels_arr):
            raise ReaderError(
                f"{images} and {labels}: shapes {images_arr.shape} and {labels_arr.shape} do not pair up"
            )
        if labels_arr.max(initial=0) >= len(FASHION_MNIST_CLASSES):
            raise ReaderError(f"{labels}: label {labels_arr.max()} is not one of the 10 classes")
        self._set_data(images_arr, labels_arr, np.arange(len(labels_arr)), FASHION_MNIST_CLASSES)

    def _find(self, name: str) -> Path:
        for candidate in (self.root / f"{name}.gz", self.root / name):
            if candidate.is_file():
                return candidate
        raise MissingDataError(
            f"{self.root / name}.gz not found: reinstall the Debian package dataset-fashion-mnist "
            "(sudo apt-get install --reinstall dataset-fashion-mnist)"
        )


class DigitsReader(_ArrayReader):
    """scikit-learn's handwritten digits (``load_digits``), 8 x 8, with a stratified split.

    Args:
        root: unused (the data ship inside scikit-learn); accepted for the common signature.
        split: ``train`` or ``test`` (see the module docstring for the split rule).
        seed, test_fraction: the split's seed and test share per class.
        source: dataset name (default ``"digits"``); also the label space's name.
        skip_corrupt: accepted for a uniform interface.
    """

    reader_name = "digits"
    default_source = "digits"

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        *,
        seed: int = 0,
        test_fraction: float = 0.2,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root or ".", split, source=source, skip_corrupt=skip_corrupt)
        self._check_split()
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise MissingDependencyError(
                "the digits dataset needs scikit-learn: pip install scikit-learn"
            ) from None
        bunch = load_digits()
        images = (
            np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        )
        labels = np.asarray(bunch.target)
        indices = stratified_split(labels, test_fraction, seed)[split]
        self._set_data(images, labels, indices, tuple(str(n) for n in bunch.target_names))


class LfwSubsetReader(_ArrayReader):
    """scikit-image's ``data.lfw_subset()`` as face / non-face classification, with a stratified split.

    Args:
        root: unused (the data ship inside scikit-image); accepted for the common signature.
        split: ``train`` or ``test`` (see the module docstring for the split rule).
        seed, test_fraction: the split's seed and test share per class.
        source: dataset name (default ``"lfw"``); also the label space's name.
        skip_corrupt: accepted for a uniform interface.
    """

    reader_name = "lfw"
    default_source = "lfw"

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        *,
        seed: int = 0,
        test_fraction: float = 0.2,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root or ".", split, source=source, skip_corrupt=skip_corrupt)
        self._check_split()
        try:
            from skimage import data as skdata

            faces = np.asarray(skdata.lfw_subset(), dtype=np.float64)
        except ImportError as err:
            raise MissingDependencyError(
                f"the lfw dataset needs scikit-image with its bundled data: pip install scikit-image ({err})"
            ) from None
        if faces.shape[0] != 200:
            raise ReaderError(f"skimage.data.lfw_subset() gave {faces.shape[0]} images, expected 200")
        images = np.rint(faces.clip(0.0, 1.0) * 255.0).astype(np.uint8)
        labels = np.repeat(np.arange(2), 100)
        indices = stratified_split(labels, test_fraction, seed)[split]
        self._set_data(images, labels, indices, ("face", "non-face"))
