"""Up-E's data: every source of a task type read together, per-source sub-batches (paper 6.1).

Each source is a data config (a dict, as ``conf/data/<name>.yaml`` resolves; the app resolves the names
of ``stage.data.sources``) made into shards once; its DataModule reads it with the task's augmentation
(:func:`task_transform`), and :class:`~intern_data.multisource.MultiSourceDataModule` zips the sources
into ``{source: sub-batch}`` batches. The sources' label spaces, merged in the stage's label-space mode,
go to the module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from intern_data.datamodules import ShardDataModule
from intern_data.label_space import LabelSpace
from intern_data.multisource import MultiSourceDataModule
from intern_data.shards.index import load_index
from intern_data.shards.reader import Transform
from intern_data.shards.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    classification_transform,
    detection_transform,
    segmentation_transform,
)
from intern_data.sources import build_datamodule, prepare_shards
from intern_pretrain.core import StageConfigError, StageData
from intern_pretrain.upe.labels import merged_labels

__all__ = ["expert_data", "task_transform"]

TASKS = ("classification", "detection", "segmentation")


def task_transform(
    task: str,
    img_size: int,
    train: bool,
    augment: Mapping[str, Any],
    mean: Sequence[float],
    std: Sequence[float],
) -> Transform:
    """The task's transform: classification random-resized crop, flip, RandAugment and random erasing;
    detection random scale (crop) and flip with the boxes; segmentation scale, crop and flip with the
    masks (``augment`` holds each one's settings, e.g. ``scale``, ``rand_augment``, ``random_erasing``)."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()}
    if task == "classification":
        return classification_transform(img_size, train, mean=mean, std=std, **settings)
    if task == "detection":
        return detection_transform(img_size, train, mean=mean, std=std, **settings)
    return segmentation_transform(img_size, train, mean=mean, std=std, **settings)


def expert_data(
    *,
    source: Mapping[str, Any],
    run_dir: str | Path,
    seed: int,
    backbone: nn.Module,
    task: str,
    sources: Mapping[str, Mapping[str, Any]],
    img_size: int,
    label_space: str = "natural",
    batch_size: int = 32,
    val_batch_size: int | None = None,
    steps_per_epoch: int = 100,
    weights: Mapping[str, float] | None = None,
    min_sub_batch: int = 2,
    num_workers: int = 0,
    shuffle_buffer: int = 256,
    augment: Mapping[str, Any] | None = None,
) -> StageData:
    """The multi-source DataModule of an expert and its merged label spaces.

    Args:
        source: The run's ``data`` config; an expert reads ``sources`` instead, so it is unused.
        run_dir, seed, backbone: As every stage's data builder takes them (the backbone's
            ``pretrained_cfg`` gives the normalisation).
        task: ``classification``, ``detection`` or ``segmentation``: every source must be one.
        sources: Source name -> its data config (``source``, ``task``, ``cache_dir``...), one per
            source dataset.
        img_size: Side of the training images.
        label_space: ``natural``, ``unified`` or ``partial``
            (:func:`~intern_pretrain.upe.labels.merged_labels`).
        batch_size: Samples per step and process over all its sources.
        steps_per_epoch: Training steps per epoch (every source is read with replacement).
        weights: Source -> sub-batch weight (default: the sources' training sizes).
        min_sub_batch: Smallest sub-batch (2 keeps BatchNorm in heads trainable).
        augment: The training augmentation's settings (:func:`task_transform`).

    Raises:
        StageConfigError: an unknown task or label-space mode, no source, or a source of another task.
    """
    if task not in TASKS:
        raise StageConfigError(f"stage.data.task={task!r}; an expert trains on one of {', '.join(TASKS)}")
    if not sources:
        raise StageConfigError("stage.data.sources is empty: name at least one data config")
    for name, config in sources.items():
        if config.get("task") != task:
            raise StageConfigError(
                f"stage.data.sources: {name!r} is a {config.get('task')} source; this expert trains on {task}"
            )
    pretrained = getattr(backbone, "pretrained_cfg", None) or {}
    mean, std = pretrained.get("mean", IMAGENET_MEAN), pretrained.get("std", IMAGENET_STD)
    modules: dict[str, ShardDataModule] = {}
    spaces: dict[str, LabelSpace] = {}
    sizes: dict[str, int] = {}
    for name, config in sources.items():
        root = prepare_shards(config, ["train", "val"])
        index = load_index(root)
        space = index.get("label_space")
        if not space:
            raise StageConfigError(f"source {name!r} ({root}) has no label space in its index.json")
        spaces[name] = LabelSpace(name, tuple(space["classes"]))
        sizes[name] = int(index["splits"]["train"]["count"])
        modules[name] = build_datamodule(
            config,
            root,
            batch_size=batch_size,
            val_batch_size=val_batch_size or batch_size,
            num_workers=num_workers,
            img_size=img_size,
            shuffle_buffer=shuffle_buffer,
            resampled=True,
            drop_last=True,
            seed=seed,
            train_transform=task_transform(task, img_size, True, augment or {}, mean, std),
            eval_transform=task_transform(task, img_size, False, {}, mean, std),
        )
    labels = merged_labels(spaces, label_space, dense=task != "classification")
    datamodule = MultiSourceDataModule(
        modules,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        sizes=sizes,
        weights=weights,
        min_sub_batch=min_sub_batch,
    )
    return StageData(datamodule, {"labels": labels.to_json()})
