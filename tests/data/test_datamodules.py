"""intern_data.datamodules: one DataModule per task over shard folders, and resume through Lightning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from intern_data.datamodules import (
    ClassificationShardDataModule,
    DepthShardDataModule,
    DetectionShardDataModule,
    ImageTextShardDataModule,
    SegmentationShardDataModule,
)
from intern_data.label_space import LabelSpace
from intern_data.shards import SkipRateError, write_shards

SPACE = LabelSpace("toy", ("a", "b", "c", "d", "e"))


def make_samples(n: int, prefix: str = "s") -> Iterator[dict[str, Any]]:
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        h, w = 24 + i % 5, 30
        yield {
            "__key__": f"{prefix}{i:04d}",
            "source": "toy",
            "image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g),
            "text": [f"caption {i}", f"other caption {i}"],
            "label": i % 5,
            "label_space": "toy",
            "boxes": torch.tensor([[2.0, 3.0, 20.0, 18.0]]),
            "box_labels": torch.tensor([i % 5]),
            "mask": torch.randint(0, 5, (h, w), generator=g),
            "depth": torch.rand(h, w, generator=g) * 10,
        }


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    write_shards(make_samples(30), root, "toy", "train", SPACE, max_shard_count=8)
    write_shards(make_samples(10, prefix="v"), root, "toy", "val", SPACE, max_shard_count=8)
    return root


@pytest.mark.parametrize(
    ("module", "checks"),
    [
        (ClassificationShardDataModule, {"image": (4, 3, 32, 32), "label": (4,)}),
        (SegmentationShardDataModule, {"image": (4, 3, 32, 32), "mask": (4, 32, 32)}),
        (DepthShardDataModule, {"image": (4, 3, 32, 32), "depth": (4, 32, 32)}),
        (ImageTextShardDataModule, {"image": (4, 3, 32, 32)}),
        (DetectionShardDataModule, {"image": (4, 3, 32, 32)}),
    ],
)
def test_each_task_gives_its_batches(shards: Path, module: type, checks: dict[str, tuple[int, ...]]) -> None:
    dm = module(str(shards), batch_size=4, num_workers=0, img_size=32, shuffle_buffer=8)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batch = next(iter(loader))
    for key, shape in checks.items():
        assert tuple(batch[key].shape) == shape, key
    assert len(batch["__key__"]) == 4 and "__cursor__" not in batch
    if module is ImageTextShardDataModule:
        assert all(isinstance(t, str) and "caption" in t for t in batch["text"])
    if module is DetectionShardDataModule:
        assert len(batch["targets"]) == 4 and batch["targets"][0]["labels"].dtype == torch.int64
    if module is SegmentationShardDataModule:
        assert batch["mask"].dtype == torch.int64
    val = list(dm.val_dataloader())
    assert sorted(k for b in val for k in b["__key__"]) == [f"v{i:04d}" for i in range(10)]
    assert dm.test_dataloader() == []  # no test split configured


def _labels(root: Path | list[str]) -> dict[str, list[int]]:
    dm = DetectionShardDataModule(root, batch_size=10, num_workers=0, img_size=32, val_split=None)
    return {
        k: t["labels"].tolist()
        for b in dm.train_dataloader()
        for k, t in zip(b["__key__"], b["targets"], strict=True)
    }


def test_detection_labels_leave_zero_to_the_background(shards: Path, tmp_path: Path) -> None:
    shifted = _labels(shards)  # "a".."e" (a reader's space, no background) -> torchvision's 1..5
    assert shifted["s0000"] == [1] and shifted["s0004"] == [5]
    world = tmp_path / "world"
    write_shards(
        make_samples(10), world, "toy", "train", LabelSpace("toy", ("background", "b", "c", "d", "e"))
    )
    assert _labels(world)["s0000"] == [0] and _labels(world)["s0004"] == [4]  # already torchvision's
    with pytest.raises(ValueError, match="disagree on a background class"):
        _labels([str(shards), str(world)])


def test_state_dict_resumes_with_the_next_batch(shards: Path) -> None:
    def module() -> ClassificationShardDataModule:
        return ClassificationShardDataModule(str(shards), batch_size=4, num_workers=0, img_size=16, seed=1)

    reference = [b["__key__"] for b in module().train_dataloader()]
    dm = module()
    iterator = iter(dm.train_dataloader())
    for _ in range(3):
        next(iterator)
    state = dm.state_dict()
    fresh = module()
    fresh.load_state_dict(state)
    assert [b["__key__"] for b in fresh.train_dataloader()] == reference[3:]


class KeyRecorder(L.LightningModule):
    """A minimal model that remembers which sample keys each training step saw."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 5)
        self.seen: list[list[str]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        assert "__cursor__" not in batch
        self.seen.append(list(batch["__key__"]))
        logits = self.layer(batch["image"].mean(dim=(2, 3)))
        return torch.nn.functional.cross_entropy(logits, batch["label"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(
    shards: Path, tmp_path: Path, max_steps: int, ckpt_path: str | None = None, workers: int = 0
) -> KeyRecorder:
    dm = ClassificationShardDataModule(
        str(shards), val_split=None, batch_size=4, num_workers=workers, img_size=16, shuffle_buffer=8, seed=4
    )
    model = KeyRecorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=5, save_top_k=-1)],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model


@pytest.mark.parametrize("workers", [0, 2])
def test_lightning_resume_mid_epoch_continues_with_the_next_unseen_batch(
    shards: Path, tmp_path: Path, workers: int
) -> None:
    # 30 samples / 4 = 8 batches an epoch; 12 steps cross an epoch; the checkpoint at step 5 is mid-epoch.
    uninterrupted = fit(shards, tmp_path / "a", max_steps=12, workers=workers).seen
    first = fit(shards, tmp_path / "b", max_steps=5, workers=workers).seen
    checkpoint = next((tmp_path / "b").glob("*step=5.ckpt"))
    resumed = fit(shards, tmp_path / "c", max_steps=12, ckpt_path=str(checkpoint), workers=workers).seen
    assert first == uninterrupted[:5]
    assert resumed == uninterrupted[5:]
    epoch = sorted(k for keys in uninterrupted[:8] for k in keys)
    assert epoch == [f"s{i:04d}" for i in range(30)]


def test_samples_without_the_task_keys_count_as_bad(tmp_path: Path) -> None:
    samples = ({k: v for k, v in s.items() if k not in ("boxes", "box_labels")} for s in make_samples(12))
    write_shards(samples, tmp_path, "toy", "train", SPACE)
    dm = DetectionShardDataModule(
        str(tmp_path), batch_size=4, num_workers=0, img_size=16, min_samples_for_skip_check=4
    )
    with pytest.raises(SkipRateError, match=r"key\(s\) \['boxes'\] missing"):
        next(iter(dm.train_dataloader()))
