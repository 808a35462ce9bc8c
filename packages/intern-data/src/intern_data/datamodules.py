"""LightningDataModules that read shard folders, one per task type.

Each takes plain constructor arguments (so ``conf/data/*.yaml`` can instantiate it with Hydra), reads
``{root}/index.json`` for its splits, and builds :class:`~intern_data.shards.reader.ShardLoader` s:

=============================  ==================  =============================================
DataModule                     needs keys           batch
=============================  ==================  =============================================
ClassificationShardDataModule  ``label``            ``image`` B x 3 x S x S, ``label`` B
DetectionShardDataModule       ``boxes``            ``image``, ``targets`` (list of dicts with
                                                    ``boxes`` and ``labels``)
SegmentationShardDataModule    ``mask``             ``image``, ``mask`` B x S x S (255 = ignore)
DepthShardDataModule           ``depth``            ``image``, ``depth`` B x S x S (metres, 0 = invalid)
ImageTextShardDataModule       ``text``             ``image``, ``text`` (list of one caption each)
=============================  ==================  =============================================

Every batch also holds ``__key__`` and ``source`` lists. The training loader's position (epoch, each
worker's cursor) is this module's ``state_dict``, so Lightning stores it in the checkpoint and a
resumed run continues with the next unseen batch. It is recorded in ``on_before_batch_transfer``, when
a batch goes to the training step (Lightning's fetcher reads one batch ahead); a LightningModule used
with these DataModules should not override that hook, or Lightning calls only this one.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import lightning as L

from intern_data.imaging import MAX_PIXELS
from intern_data.shards.batched import BatchAugment, CropDraw
from intern_data.shards.collate import collate_samples, detection_collate
from intern_data.shards.index import load_index
from intern_data.shards.reader import Collate, ShardDataset, ShardLoader, ShardSource, Transform
from intern_data.shards.transforms import (
    classification_transform,
    depth_transform,
    detection_transform,
    image_text_transform,
    segmentation_transform,
)

log = logging.getLogger(__name__)

# Lightning warns that an IterableDataset's length may be wrong with several workers; the shard
# reader's length is exact by construction (every rank and worker yields the planned batch count).
warnings.filterwarnings(
    "ignore", message=r"Your `IterableDataset` has `__len__` defined", category=UserWarning
)


class ShardDataModule(L.LightningDataModule):
    """Train / val / test loaders over one or more shard folders (the task subclasses set the defaults).

    Args:
        root: shard folder(s) holding ``index.json``; several are mixed (see ``weights``).
        train_split, val_split, test_split: split names; ``None`` or a split the index lacks gives
            no loader for that stage.
        weights: per-root sampling weights; need ``resampled=True``.
        batch_size: training batch size per rank; ``val_batch_size`` defaults to it.
        num_workers: DataLoader workers per rank.
        img_size: side of the (square) images the default transforms produce.
        shuffle_buffer: samples in the training shuffle buffer (0: read in order).
        resampled: training draws shards with replacement; ``samples_per_epoch`` sets the epoch.
        drop_last: only full training batches.
        seed: seed of the reader (shard order, shuffle, augmentation).
        max_skip_fraction, min_samples_for_skip_check: when bad data stops the run.
        verify: check each shard's sha256 against its index before reading it (off: the reader's
            per-sample crc32 already catches changed samples, see :mod:`intern_data.shards.reader`).
        max_pixels: images declaring more pixels are skipped as corrupt, before decoding.
        pin_memory: pin batches (GPU training).
        batch_augment: training images leave the reader decoded (uint8) with their random crop and flip
            drawn, and are cropped, resized, flipped and normalised as a batch on the training device
            (:mod:`intern_data.shards.batched`): the same pixels as the per-sample default, with the
            pixel work on the GPU when there is one. Classification's default transform only.
        decode_on_device: with ``batch_augment``, the training JPEGs this package wrote are decoded there
            too (the reader's ``defer_jpeg``), as a batch (nvJPEG on a GPU).
        train_transform, eval_transform: ``Sample -> Sample`` callables replacing the defaults.
        collate_fn: replaces the task's collate function.
    """

    required_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        train_split: str | None = "train",
        val_split: str | None = "val",
        test_split: str | None = None,
        weights: Sequence[float] | None = None,
        batch_size: int = 32,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        img_size: int = 224,
        shuffle_buffer: int = 1000,
        resampled: bool = False,
        samples_per_epoch: int | None = None,
        drop_last: bool = False,
        seed: int = 0,
        max_skip_fraction: float = 0.01,
        min_samples_for_skip_check: int = 100,
        verify: bool = False,
        max_pixels: int = MAX_PIXELS,
        pin_memory: bool = False,
        batch_augment: bool = False,
        decode_on_device: bool = False,
        train_transform: Transform | None = None,
        eval_transform: Transform | None = None,
        collate_fn: Collate | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["train_transform", "eval_transform", "collate_fn"])
        self.roots = [str(root)] if isinstance(root, str | os.PathLike) else [str(r) for r in root]
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.weights = [float(w) for w in weights] if weights is not None else None
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.img_size = img_size
        self.shuffle_buffer = shuffle_buffer
        self.resampled = resampled
        self.samples_per_epoch = samples_per_epoch
        self.drop_last = drop_last
        self.seed = seed
        self.max_skip_fraction = max_skip_fraction
        self.min_samples_for_skip_check = min_samples_for_skip_check
        self.verify = verify
        self.max_pixels = max_pixels
        self.pin_memory = pin_memory
        if batch_augment and (
            train_transform is not None
            or type(self).default_transform is not ShardDataModule.default_transform
        ):
            raise ValueError(
                f"batch_augment=True: {type(self).__name__} does not train with the default classification "
                "transform (batched augmentation draws and applies that one only)"
            )
        if decode_on_device and not batch_augment:
            raise ValueError(
                "decode_on_device=True needs batch_augment=True (a batch is decoded where augmented)"
            )
        self.batch_augment = BatchAugment(img_size) if batch_augment else None
        self.decode_on_device = decode_on_device
        self.train_transform = train_transform or self.default_transform(train=True)
        self.eval_transform = eval_transform or self.default_transform(train=False)
        self.collate_fn = collate_fn or self.default_collate
        self.datasets: dict[str, ShardDataset] = {}
        self._train_loader: ShardLoader | None = None
        self._pending_position: dict[str, Any] | None = None

    # -- per task

    def default_transform(self, train: bool) -> Transform:
        if train and self.batch_augment is not None:
            return CropDraw(self.img_size)
        return classification_transform(self.img_size, train)

    @staticmethod
    def default_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)

    # -- datasets and loaders

    def has_split(self, stage: str) -> bool:
        split = self.splits[stage]
        return split is not None and all(split in load_index(root)["splits"] for root in self.roots)

    def _dataset(self, stage: str) -> ShardDataset:
        train = stage == "train"
        sources = [ShardSource(root, self.splits[stage]) for root in self.roots]
        return ShardDataset(
            sources,
            batch_size=self.batch_size if train else self.val_batch_size,
            shuffle_buffer=self.shuffle_buffer if train else 0,
            resampled=self.resampled and train,
            samples_per_epoch=self.samples_per_epoch if train else None,
            weights=self.weights if train and self.resampled else None,
            seed=self.seed,
            transform=self.train_transform if train else self.eval_transform,
            collate_fn=self.collate_fn,
            required_keys=self.required_keys,
            drop_last=self.drop_last and train,
            max_skip_fraction=self.max_skip_fraction,
            min_samples_for_skip_check=self.min_samples_for_skip_check,
            verify=self.verify,
            max_pixels=self.max_pixels,
            defer_jpeg=self.decode_on_device and train,
        )

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage or "", ("train", "val", "test")
        )
        for name in wanted:
            if name not in self.datasets and self.has_split(name):
                self.datasets[name] = self._dataset(name)
            elif name not in self.datasets and self.splits[name] is not None:
                log.info("no %r split in %s: no %s loader", self.splits[name], self.roots, name)
        if self.trainer is not None:
            for dataset in self.datasets.values():
                dataset.set_node(self.trainer.global_rank, self.trainer.world_size)

    def _loader(self, stage: str, train: bool) -> ShardLoader | list[Any]:
        if stage not in self.datasets:
            self.setup()
        if stage not in self.datasets:
            return []
        return ShardLoader(
            self.datasets[stage],
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            track_position=train,
            keep_cursor=train and self.trainer is not None,
        )

    def train_dataloader(self) -> ShardLoader:
        loader = self._loader("train", train=True)
        if not isinstance(loader, ShardLoader):
            raise ValueError(f"no {self.splits['train']!r} split in {self.roots}")
        if self._train_loader is not None:  # reloaded: keep going where the old loader was
            loader.position = self._train_loader.position
        elif self._pending_position is not None:
            loader.load_state_dict(self._pending_position)
            self._pending_position = None
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> ShardLoader | list[Any]:
        return self._loader("val", train=False)

    def test_dataloader(self) -> ShardLoader | list[Any]:
        return self._loader("test", train=False)

    # -- position: recorded when a batch reaches the model, saved in the checkpoint

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self._train_loader is not None and isinstance(batch, dict):
            batch = self._train_loader.record(batch)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.batch_augment is not None and isinstance(batch, dict):
            batch = self.batch_augment(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        if self._train_loader is not None:
            return {"reader": self._train_loader.state_dict()}
        return {"reader": self._pending_position} if self._pending_position is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        position = state_dict.get("reader")
        if position is None:
            return
        if self._train_loader is not None:
            self._train_loader.load_state_dict(position)
        else:
            self._pending_position = position


class ClassificationShardDataModule(ShardDataModule):
    """Image classification: batches of ``image`` and ``label``."""

    required_keys = ("label",)


def background_offset(roots: Sequence[str]) -> int:
    """What to add to the shards' box labels for torchvision's convention (label 0 is the background):
    0 when their label space starts with ``background`` (the world's), 1 when it has none (the readers'
    COCO, VOC, ... spaces).

    Raises:
        ValueError: the roots disagree.
    """
    offsets = {}
    for root in roots:
        space = load_index(root).get("label_space") or {}
        offsets[root] = 0 if list(space.get("classes") or [])[:1] == ["background"] else 1
    if len(set(offsets.values())) > 1:
        with_background = [root for root, offset in offsets.items() if offset == 0]
        raise ValueError(
            f"detection shards disagree on a background class: {with_background} have one first, "
            f"{[root for root in offsets if root not in with_background]} do not"
        )
    return next(iter(offsets.values()), 0)


class DetectionShardDataModule(ShardDataModule):
    """Object detection: ``image`` and ``targets`` (one dict of ``boxes``/``labels`` per image).

    ``labels`` follow torchvision (0 is the background): shards whose label space has no ``background``
    class first get their box labels shifted by one (:func:`background_offset`).
    """

    required_keys = ("boxes",)

    def default_transform(self, train: bool) -> Transform:
        return detection_transform(self.img_size, train)

    @staticmethod
    def default_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        return detection_collate(samples)

    def _dataset(self, stage: str) -> ShardDataset:
        if self.collate_fn is self.default_collate:
            self.collate_fn = partial(detection_collate, label_offset=background_offset(self.roots))
        return super()._dataset(stage)


class SegmentationShardDataModule(ShardDataModule):
    """Semantic segmentation: ``image`` and ``mask`` (int64, 255 = ignore)."""

    required_keys = ("mask",)

    def default_transform(self, train: bool) -> Transform:
        return segmentation_transform(self.img_size, train)


class DepthShardDataModule(ShardDataModule):
    """Monocular depth: ``image`` and ``depth`` (metres, 0 = invalid)."""

    required_keys = ("depth",)

    def default_transform(self, train: bool) -> Transform:
        return depth_transform(self.img_size, train)


class ImageTextShardDataModule(ShardDataModule):
    """Image-text pairs: ``image`` and ``text``, one caption per image (random among the sample's
    captions in training, the first in evaluation)."""

    required_keys = ("text",)

    def default_transform(self, train: bool) -> Transform:
        return image_text_transform(self.img_size, train)


__all__ = [
    "ClassificationShardDataModule",
    "DepthShardDataModule",
    "DetectionShardDataModule",
    "ImageTextShardDataModule",
    "SegmentationShardDataModule",
    "ShardDataModule",
]
