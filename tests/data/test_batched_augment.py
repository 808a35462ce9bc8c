"""The batched augmentation path (draws in the reader, pixels per batch on the device; CPU tensors stand
in for a GPU here) reads the same samples in the same order as the per-sample path, gives the same
pixels, resumes at the same place and skips and counts the same corrupt image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from intern_data.datamodules import ClassificationShardDataModule
from intern_data.shards import BatchAugment, CropDraw, ShardDataset, ShardLoader, classification_transform

from .test_shards import rewrite_tar, write

SIZE = 16


def _batches(folder: Path, transform: Any, augment: BatchAugment | None = None, **kwargs: Any) -> list[dict]:
    dataset = ShardDataset(
        folder, batch_size=4, shuffle_buffer=8, seed=3, transform=transform, rank=0, world_size=1,
        max_skip_fraction=0.5, min_samples_for_skip_check=1,
    )  # fmt: skip
    out = list(dataset.iter_slot(0, 1, epoch=0, emit_cursor=True, **kwargs))
    return [augment(b) for b in out] if augment is not None else out


def _assert_same(batched: list[dict], plain: list[dict]) -> None:
    assert [b["__key__"] for b in batched] == [b["__key__"] for b in plain]
    for got, expected in zip(batched, plain, strict=True):
        assert torch.equal(got["label"], expected["label"])
        assert torch.equal(got["image"], expected["image"]), got["__key__"]
        assert got["__cursor__"] == expected["__cursor__"]


def test_batched_path_equals_the_per_sample_path_with_a_corrupt_image(tmp_path: Path) -> None:
    write(tmp_path, 24)
    rewrite_tar(
        tmp_path / "toy-train-000001.tar",
        lambda name, data: b"\xff\xd8garbage" + data[40:] if name == "s00013.jpg" else data,
    )
    plain = _batches(tmp_path, classification_transform(SIZE, train=True))
    batched = _batches(tmp_path, CropDraw(SIZE), BatchAugment(SIZE))
    _assert_same(batched, plain)
    assert batched[-1]["__cursor__"]["skipped"] == 1  # the corrupt image, counted once either way
    assert batched[0]["image"].shape == (4, 3, SIZE, SIZE) and batched[0]["image"].dtype == torch.float32


def test_batched_path_resumes_where_it_stopped(tmp_path: Path) -> None:
    write(tmp_path, 24)
    unbroken = _batches(tmp_path, CropDraw(SIZE), BatchAugment(SIZE))
    dataset = ShardDataset(tmp_path, batch_size=4, shuffle_buffer=8, seed=3, transform=CropDraw(SIZE),
                           rank=0, world_size=1)  # fmt: skip
    loader = ShardLoader(dataset, num_workers=0)
    first = [loader.record(b) for _, b in zip(range(2), loader, strict=False)]
    resumed = ShardLoader(dataset, num_workers=0)
    resumed.load_state_dict(loader.state_dict())
    rest = [BatchAugment(SIZE)(b) for b in resumed]
    images = [BatchAugment(SIZE)(b)["image"] for b in first] + [b["image"] for b in rest]
    assert len(images) == len(unbroken)
    for got, expected in zip(images, unbroken, strict=True):
        assert torch.equal(got, expected["image"])


def test_datamodule_augments_training_batches_after_transfer(tmp_path: Path) -> None:
    write(tmp_path, 8)
    data = ClassificationShardDataModule(
        tmp_path, batch_size=4, num_workers=0, img_size=SIZE, batch_augment=True
    )
    batch = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and "crop_draw" not in batch
