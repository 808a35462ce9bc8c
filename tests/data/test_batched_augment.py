"""The batched augmentation path (draws in the reader, pixels per batch on the device; CPU tensors stand
in for a GPU here), with the reader decoding or leaving its JPEGs to the batch (``defer_jpeg``), reads
the same samples in the same order as the per-sample path, gives the same pixels, resumes at the same
place and skips and counts the same corrupt image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from intern_data.datamodules import ClassificationShardDataModule
from intern_data.shards import BatchAugment, CropDraw, ShardDataset, ShardLoader, classification_transform

from .test_shards import rewrite_tar, write

SIZE = 16
DEFER = pytest.mark.parametrize("defer", [False, True], ids=["reader decodes", "batch decodes"])


def _dataset(folder: Path, transform: Any, defer: bool = False) -> ShardDataset:
    return ShardDataset(
        folder, batch_size=4, shuffle_buffer=8, seed=3, transform=transform, defer_jpeg=defer, rank=0,
        world_size=1, max_skip_fraction=0.5, min_samples_for_skip_check=1,
    )  # fmt: skip


def _batches(dataset: ShardDataset, augment: BatchAugment | None = None) -> list[dict]:
    out = list(dataset.iter_slot(0, 1, epoch=0, emit_cursor=True))
    return [augment(b) for b in out] if augment is not None else out


@DEFER
def test_batched_path_equals_the_per_sample_path_with_a_corrupt_image(tmp_path: Path, defer: bool) -> None:
    write(tmp_path, 24, image_format="jpg")
    rewrite_tar(
        tmp_path / "toy-train-000001.tar",
        lambda name, data: b"\xff\xd8garbage" + data[40:] if name == "s00013.jpg" else data,
    )
    plain = _batches(_dataset(tmp_path, classification_transform(SIZE, train=True)))
    batched = _batches(_dataset(tmp_path, CropDraw(SIZE), defer), BatchAugment(SIZE))
    assert [b["__key__"] for b in batched] == [b["__key__"] for b in plain]
    for got, expected in zip(batched, plain, strict=True):
        assert torch.equal(got["label"], expected["label"])
        assert torch.equal(got["image"], expected["image"]), got["__key__"]
        assert got["__cursor__"] == expected["__cursor__"]
    assert batched[-1]["__cursor__"]["skipped"] == 1  # the corrupt image, counted once either way
    assert batched[0]["image"].shape == (4, 3, SIZE, SIZE) and batched[0]["image"].dtype == torch.float32


@DEFER
def test_batched_path_resumes_where_it_stopped(tmp_path: Path, defer: bool) -> None:
    write(tmp_path, 24, image_format="jpg")
    augment = BatchAugment(SIZE)
    unbroken = _batches(_dataset(tmp_path, CropDraw(SIZE), defer), augment)
    dataset = _dataset(tmp_path, CropDraw(SIZE), defer)
    loader = ShardLoader(dataset, num_workers=0)
    first = [loader.record(b) for _, b in zip(range(2), loader, strict=False)]
    resumed = ShardLoader(dataset, num_workers=0)
    resumed.load_state_dict(loader.state_dict())
    images = [augment(b)["image"] for b in first + list(resumed)]
    assert len(images) == len(unbroken)
    for got, expected in zip(images, unbroken, strict=True):
        assert torch.equal(got, expected["image"])


def test_datamodule_decodes_and_augments_training_batches_after_transfer(tmp_path: Path) -> None:
    write(tmp_path, 8, image_format="jpg")
    data = ClassificationShardDataModule(
        tmp_path, batch_size=4, num_workers=0, img_size=SIZE, batch_augment=True, decode_on_device=True
    )
    raw = next(iter(data.train_dataloader()))
    assert "image" not in raw and len(raw["__image_bytes__"]) == 4  # left undecoded by the reader
    batch = data.on_after_batch_transfer(raw, 0)
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and "crop_draw" not in batch
    with pytest.raises(ValueError, match="defer_jpeg=True needs the CropDraw transform"):
        _dataset(tmp_path, classification_transform(SIZE), defer=True)
