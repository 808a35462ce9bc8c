"""Dense GV-B tasks on a frozen (or fine-tuned) backbone: detection, faces, pedestrians, segmentation, depth.

A task head from intern-transfer's adaptation modules trains on the regime's training images through
intern-data's DataModule and is evaluated once on the test split with the task's metric (VOC AP50 with
MR at FPPI; WIDER FACE AP on easy / medium / hard by face height; CityPersons MR^-2; mIoU; RMSE).
Percentage regimes draw images (one group: dense tasks have no per-image class) into a manifest that is
saved and reused; the chosen images are written once as their own shard folder beside the task's.
Anchors, ASPP rates and the number of epochs are fitted to the task (:mod:`.dense_fit`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn
from torchmetrics import Metric

from intern_bench.metrics import DepthRMSE, LogAverageMissRate, SegmentationMIoU, VOCDetectionAP, WiderFaceAP
from intern_bench.protocols.dense_fit import budget_epochs, check_anchor_coverage
from intern_data.regimes import regime_shards
from intern_data.shards import depth_transform, segmentation_transform
from intern_data.sources import DATAMODULES
from intern_data.splits import SplitManifest
from intern_data.tasks import TaskSpec
from intern_transfer.adapt import (
    DepthAdapter,
    DetectionAdapter,
    FaceDetectionAdapter,
    SegmentationAdapter,
    dense_geometry,
)

TRANSFORMS = {"segmentation": segmentation_transform, "depth": depth_transform}

PRIMARY_KEYS = {
    "detection": "map50",
    "face_detection": "ap_hard",
    "pedestrian_detection": "mr_reasonable",
    "segmentation": "miou",
    "depth": "rmse",
}
"""The metric key a task type's report column shows."""


def depth_limits(spec: TaskSpec) -> tuple[float, str | None]:
    """``(maximum depth in metres, evaluation crop)`` of a depth task's BTS protocol, from its config.

    Raises:
        ValueError: the task config sets no ``protocol.max_depth``.
    """
    max_depth = spec.protocol.get("max_depth")
    if max_depth is None:
        raise ValueError(f"task {spec.name!r}: set task.protocol.max_depth (metres) for its depth protocol")
    return float(max_depth), spec.protocol.get("eval_crop")


def task_metric(spec: TaskSpec) -> Callable[[], Metric]:
    """A factory of the task's evaluation metric."""
    if spec.type == "detection":
        return VOCDetectionAP
    if spec.type == "face_detection":
        return WiderFaceAP
    if spec.type == "pedestrian_detection":
        return LogAverageMissRate
    if spec.type == "segmentation":
        return lambda: SegmentationMIoU(num_classes=spec.num_classes)
    if spec.type == "depth":
        max_depth, crop = depth_limits(spec)
        return lambda: DepthRMSE(max_depth=max_depth, crop=crop)
    raise ValueError(f"task {spec.name!r} ({spec.type}) is not a dense task")


def handover_heads(parts: Mapping[str, nn.Module], spec: TaskSpec) -> dict[str, nn.Module]:
    """The exported neck and box head a detection head starts from (``dense.init_heads``).

    Raises:
        ValueError: the task is not Faster R-CNN detection, or the backbone's hand-over lacks the parts.
    """
    if spec.type not in ("detection", "pedestrian_detection"):
        raise ValueError(f"dense.init_heads=true starts a Faster R-CNN; task {spec.name!r} is {spec.type}")
    if "neck" not in parts or "heads/box" not in parts:
        held = ", ".join(parts) or "none"
        raise ValueError(
            "dense.init_heads=true needs a checkpoint whose hand-over has a neck and a heads/box part "
            f"(an Up-A-L export); it holds: {held}"
        )
    # the box head trains in place: each cell starts from the exported weights
    return {"neck": parts["neck"], "box_head": copy.deepcopy(parts["heads/box"])}


def build_adapter(
    backbone: nn.Module,
    spec: TaskSpec,
    protocol: Mapping[str, Any],
    img_size: int,
    parts: Mapping[str, nn.Module] | None = None,
) -> L.LightningModule:
    """The adaptation module of ``spec``'s task type, frozen unless ``protocol.freeze_backbone`` is false,
    with anchors or ASPP rates fitted to ``img_size`` unless the task config sets them; with
    ``protocol.init_heads`` the detector starts from the hand-over's ``parts`` (neck and box head)."""
    settings = {
        "freeze_backbone": bool(protocol.get("freeze_backbone", True)),
        "lr": float(protocol["lr"]),
        "weight_decay": float(protocol["weight_decay"]),
        "optimizer": protocol.get("optimizer", "adamw"),
        "warmup_steps": int(protocol.get("warmup_steps", 0)),
    }
    metric = task_metric(spec)
    geometry = dense_geometry(spec, img_size)
    heads = handover_heads(parts or {}, spec) if protocol.get("init_heads") else {}
    if spec.type in ("detection", "pedestrian_detection"):
        kwargs = dict(protocol.get("detector_kwargs") or {})
        return DetectionAdapter(
            backbone, spec.num_classes + 1, metric, min_size=img_size, max_size=img_size,
            detector_kwargs=kwargs, **geometry, **heads, **settings,
        )  # fmt: skip
    if spec.type == "face_detection":
        kwargs = dict(protocol.get("detector_kwargs") or {})
        return FaceDetectionAdapter(
            backbone, metric, min_size=img_size, max_size=img_size, detector_kwargs=kwargs, **geometry,
            **settings,
        )  # fmt: skip
    if spec.type == "segmentation":
        return SegmentationAdapter(backbone, spec.num_classes, metric, normalize=True, **geometry, **settings)
    return DepthAdapter(backbone, depth_limits(spec)[0], metric, normalize=True, **settings)


def run_dense(
    backbone: nn.Module,
    spec: TaskSpec,
    root: Path,
    *,
    rule: str,
    seed: int,
    protocol: Mapping[str, Any],
    img_size: int,
    trainer: L.Trainer,
    parts: Mapping[str, nn.Module] | None = None,
) -> tuple[dict[str, float], SplitManifest]:
    """Train the task head on the regime's images with ``trainer`` for :func:`.dense_fit.budget_epochs`,
    test once; returns (test metrics with the anchor coverage and the budget spent, manifest).
    ``parts``: the backbone's hand-over parts, for ``protocol.init_heads``."""
    L.seed_everything(seed, workers=True)
    train_root, train_split, manifest = regime_shards(root, spec.splits["train"], rule, seed)
    task = "detection" if spec.type.endswith("detection") else spec.type
    data_kwargs: dict[str, Any] = {
        "batch_size": int(protocol["batch_size"]),
        "num_workers": 0,
        "img_size": img_size,
    }
    if task in TRANSFORMS:  # images stay in [0, 1]: the module normalises with the backbone's own mean/std
        data_kwargs["train_transform"] = TRANSFORMS[task](img_size, True, normalize=False)
        data_kwargs["eval_transform"] = TRANSFORMS[task](img_size, False, normalize=False)
    train = DATAMODULES[task](
        str(train_root), train_split=train_split, val_split=None, seed=seed, **data_kwargs
    )
    test = DATAMODULES[task](
        str(root), train_split=None, val_split=None, test_split=spec.splits["test"], **data_kwargs
    )
    module = build_adapter(backbone, spec, protocol, img_size, parts)
    fitted: dict[str, float] = {"num_train_images": float(len(manifest))}
    if task == "detection":
        coverage = check_anchor_coverage(module.model, spec, root, spec.splits["train"], img_size)
        if coverage is not None:
            fitted["anchor_coverage"] = coverage
    trainer.fit_loop.max_epochs = budget_epochs(protocol, len(manifest))
    trainer.fit(module, datamodule=train)
    trainer.test(module, datamodule=test, verbose=False)
    fitted.update(num_epochs=float(trainer.current_epoch), num_optimizer_steps=float(trainer.global_step))
    results = {key: float(value) for key, value in module.test_results.items() if value.numel() == 1}
    return {**results, **fitted}, manifest
