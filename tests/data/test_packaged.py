"""intern_data.readers.packaged: Fashion-MNIST (Debian), scikit-learn digits, scikit-image LFW subset."""

from __future__ import annotations

import gzip
import struct
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from intern_data.readers import (
    DigitsReader,
    FashionMnistReader,
    LfwSubsetReader,
    MissingDataError,
    MissingDependencyError,
    ReaderError,
    open_reader,
)
from intern_data.readers.packaged import FASHION_MNIST_DIR, read_idx, stratified_split
from intern_data.schema import validate_sample


def _idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


# --------------------------------------------------------------------------------- fashion_mnist


@pytest.mark.realdata
def test_fashion_mnist_official_counts() -> None:
    if not FASHION_MNIST_DIR.is_dir():
        pytest.fail(f"{FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist")
    train = open_reader("fashion_mnist", None, "train")
    test = FashionMnistReader(split="test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.label_space.classes[0] == "T-shirt/top" and len(train.label_space) == 10
    counts = Counter(s["label"] for s in train)
    assert counts == {c: 6000 for c in range(10)}
    assert Counter(s["label"] for s in test) == {c: 1000 for c in range(10)}
    for i in (0, 12345, 59999):
        sample = validate_sample(train[i])
        assert sample["image"].shape == (1, 28, 28) and sample["source"] == "fashion_mnist"
    assert train[0]["__key__"] == "train/00000" and test[9999]["__key__"] == "test/09999"
    assert int(train[0]["image"].max()) > 100  # real pixels, not zeros


def test_fashion_mnist_parses_idx_files(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 3]))
    reader = FashionMnistReader(tmp_path, "test")
    samples = [validate_sample(s) for s in reader]
    assert [s["label"] for s in samples] == [9, 0, 3]
    assert np.array_equal(samples[2]["image"][0].numpy(), images[2])


def test_fashion_mnist_missing_package_names_it(tmp_path: Path) -> None:
    with pytest.raises(
        MissingDataError, match=r"dataset-fashion-mnist.*apt-get install dataset-fashion-mnist"
    ):
        FashionMnistReader(tmp_path / "absent", "train")
    with pytest.raises(ReaderError, match="no split 'val'"):
        FashionMnistReader(tmp_path, "val")


def test_read_idx_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\0" * 4)
    with pytest.raises(ReaderError, match=r"x\.gz: idx header says \(10,\)"):
        read_idx(path)


# ---------------------------------------------------------------------------------------- digits


def test_digits_stratified_split_covers_all_scans() -> None:
    from sklearn.datasets import load_digits

    train, test = open_reader("digits", None, "train"), DigitsReader(split="test")
    assert len(train) + len(test) == 1797 and (len(train), len(test)) == (1438, 359)
    train_keys = {s["__key__"].split("/")[1] for s in train}
    test_samples = [validate_sample(s) for s in test]
    test_keys = {s["__key__"].split("/")[1] for s in test_samples}
    assert not train_keys & test_keys and len(train_keys | test_keys) == 1797
    digits = load_digits()
    per_class = Counter(s["label"] for s in test_samples)
    for c in range(10):
        assert per_class[c] == round(0.2 * int((digits.target == c).sum()) + 1e-9)
    sample = test_samples[0]
    index = int(sample["__key__"].split("/")[1])
    assert sample["image"].shape == (1, 8, 8) and sample["label"] == digits.target[index]
    assert np.array_equal(
        sample["image"][0].numpy(), np.rint(digits.images[index] * 255 / 16).astype(np.uint8)
    )
    assert train.label_space.classes == tuple("0123456789")


def test_digits_split_is_deterministic_and_seeded() -> None:
    keys = [s["__key__"] for s in DigitsReader(split="test")]
    assert keys == [s["__key__"] for s in DigitsReader(split="test")]
    assert keys != [s["__key__"] for s in DigitsReader(split="test", seed=1)]


def test_digits_missing_sklearn_names_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match="pip install scikit-learn"):
        DigitsReader(split="train")


# ------------------------------------------------------------------------------------------- lfw


def test_lfw_face_non_face_split() -> None:
    train, test = open_reader("lfw", None, "train"), LfwSubsetReader(split="test")
    assert (len(train), len(test)) == (160, 40)
    assert train.label_space.classes == ("face", "non-face")
    for reader, n in ((train, 80), (test, 20)):
        samples = [validate_sample(s) for s in reader]
        assert Counter(s["label"] for s in samples) == {0: n, 1: n}
        for s in samples:  # the first 100 of lfw_subset are faces
            assert s["label"] == int(int(s["__key__"].split("/")[1]) >= 100)
            assert s["image"].shape == (1, 25, 25)


def test_lfw_missing_skimage_names_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(MissingDependencyError, match="pip install scikit-image"):
        LfwSubsetReader(split="train")


def test_stratified_split_rounds_per_class() -> None:
    labels = np.array([0] * 10 + [1] * 5)
    split = stratified_split(labels, 0.2, seed=3)
    assert len(split["test"]) == 2 + 1 and len(split["train"]) == 12
    assert np.array_equal(np.sort(np.concatenate([split["train"], split["test"]])), np.arange(15))
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0, seed=0)
