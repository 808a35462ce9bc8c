"""intern_transfer.adapt: every task module fits and validates on the embedded world with the tiny
backbone, frozen backbones stay exactly as loaded, fine-tuning moves them, training lowers the loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchmetrics import MetricCollection

from intern_arch import create_model
from intern_bench.metrics import (
    DepthRMSE,
    SegmentationMIoU,
    VOCDetectionAP,
    WiderFaceAP,
    classification_metric,
)
from intern_data.shards.collate import collate_samples, detection_collate
from intern_data.shards.transforms import (
    classification_transform,
    depth_transform,
    detection_transform,
    segmentation_transform,
)
from intern_data.world import generate
from intern_transfer.adapt import (
    AdaptModule,
    ClassificationAdapter,
    DepthAdapter,
    DetectionAdapter,
    FaceDetectionAdapter,
    SegmentationAdapter,
)
from intern_transfer.schedules import warmup_cosine

SIZE = 64
# Small RPN / RoI budgets: an untrained RPN at the defaults (2000 proposals) dominates CPU time.
SMALL_DETECTOR = {
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 50,
    "rpn_batch_size_per_image": 64,
    "box_batch_size_per_image": 64,
    "box_detections_per_img": 20,
}
DETECTION_KW: dict[str, Any] = {
    "min_size": SIZE,
    "max_size": SIZE,
    "anchor_sizes": (8, 16, 32, 64, 128),
    "fpn_channels": 32,
    "detector_kwargs": SMALL_DETECTOR,
}


def faces_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """World detection samples as a one-class face set (every object is a "face", label 1)."""
    batch = detection_collate(samples)
    for target in batch["targets"]:
        target["labels"] = torch.ones_like(target["labels"])
    return batch


# task -> (world dataset, eval transform, collate)
DATA: dict[str, tuple[str, Callable[..., Any], Callable[..., Any]]] = {
    "classification": ("gvb_world_cls", classification_transform, collate_samples),
    "segmentation": ("gvb_world_seg", segmentation_transform, collate_samples),
    "depth": ("gvb_world_depth", depth_transform, collate_samples),
    "detection": ("gvb_world_det", detection_transform, detection_collate),
    "face": ("gvb_world_det", detection_transform, faces_collate),
}


def loader(task: str, count: int = 4, batch_size: int = 2, start: int = 0) -> DataLoader:
    """``count`` world samples through the task's evaluation transform, collated as its DataModule does."""
    name, transform, collate = DATA[task]
    tf = transform(SIZE, train=False)
    samples = [tf(s) for s in generate(name, "train", count=count, img_size=SIZE, start=start)]
    return DataLoader(samples, batch_size=batch_size, collate_fn=collate)


def build(task: str, freeze_backbone: bool, **settings: Any) -> AdaptModule:
    backbone = create_model("mnb_test")
    if task == "classification":
        return ClassificationAdapter(
            backbone,
            18,
            partial(classification_metric, "accuracy", 18),
            freeze_backbone=freeze_backbone,
            **settings,
        )
    if task == "segmentation":
        return SegmentationAdapter(
            backbone, 8, SegmentationMIoU(8), fuse_channels=32, freeze_backbone=freeze_backbone, **settings
        )
    if task == "depth":
        return DepthAdapter(
            backbone,
            10.0,
            DepthRMSE(max_depth=10.0),
            decoder_channels=32,
            freeze_backbone=freeze_backbone,
            **settings,
        )
    if task == "detection":
        return DetectionAdapter(
            backbone, 5, VOCDetectionAP(), freeze_backbone=freeze_backbone, **DETECTION_KW, **settings
        )
    return FaceDetectionAdapter(
        backbone,
        WiderFaceAP(height_thresholds=(24, 12, 4)),
        freeze_backbone=freeze_backbone,
        **DETECTION_KW,
        **settings,
    )


def trainer(**kwargs: Any) -> L.Trainer:
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**defaults, **kwargs})


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, Tensor], after: dict[str, Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


EXPECTED_KEYS = {
    "classification": {"val/accuracy", "val/loss"},
    "segmentation": {"val/miou", "val/loss"},
    "depth": {"val/rmse", "val/loss"},
    "detection": {"val/map50", "val/mr@fppi=0.1"},
    "face": {"val/ap_easy", "val/ap_medium", "val/ap_hard"},
}


@pytest.mark.parametrize(
    ("task", "frozen"),
    [
        ("classification", True),
        ("segmentation", True),
        ("depth", False),
        ("detection", False),
        ("face", True),
    ],
)
def test_fit_and_validate_log_finite_metrics_and_respect_freezing(task: str, frozen: bool) -> None:
    L.seed_everything(0)
    data = loader(task)
    module = build(task, frozen, max_steps=2)
    before = snapshot(module.backbone)
    fit = trainer(max_steps=2, limit_val_batches=1)
    fit.fit(module, data, data)
    after = snapshot(module.backbone)

    [logged] = trainer().validate(module, data, verbose=False)
    assert EXPECTED_KEYS[task] <= set(logged), logged
    assert all(math.isfinite(v) for v in logged.values()), logged
    assert set(module.val_results) >= {k.removeprefix("val/") for k in EXPECTED_KEYS[task] if k != "val/loss"}

    bn_stats = {k for k in before if k.endswith(("running_mean", "running_var"))}
    assert bn_stats, "the test backbone should have BatchNorm layers"
    if frozen:
        assert changed(before, after) == set()  # weights and BN running statistics
        assert not any(p.requires_grad for p in module.backbone.parameters())
    else:
        moved = changed(before, after)
        assert moved & bn_stats and moved - bn_stats


def test_frozen_backbone_stays_in_eval_mode_and_out_of_the_optimiser() -> None:
    frozen = build("segmentation", True, max_steps=10)
    frozen.train()
    assert not frozen.backbone.training and frozen.model.head.training
    optimizer = frozen.configure_optimizers()["optimizer"]
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen.backbone.parameters()}
    assert in_optimizer == {id(p) for p in frozen.parameters() if p.requires_grad}

    tuned = build("segmentation", False, max_steps=10, lr=0.1, backbone_lr_mult=0.1, norm_eval=True)
    tuned.train()
    assert tuned.backbone.training
    assert all(not m.training for m in tuned.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    groups = {g["name"]: g for g in tuned.configure_optimizers()["optimizer"].param_groups}
    assert groups["backbone"]["lr"] == pytest.approx(0.01) and groups["head"]["lr"] == pytest.approx(0.1)
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 1e-4
    everything = {id(p) for g in groups.values() for p in g["params"]}
    assert everything == {id(p) for p in tuned.parameters()}


def test_short_training_lowers_the_loss() -> None:
    L.seed_everything(0)
    data = loader("classification", count=8, batch_size=4)
    module = build("classification", True, optimizer="adamw", lr=0.05, weight_decay=0.0, schedule="constant")

    def mean_loss() -> float:
        module.eval()
        with torch.no_grad():
            loss = sum(float(module.predict_for_metrics(b)[2]) for b in data) / len(data)
        module.train()  # Lightning's fit keeps the modes it finds
        return loss

    before = mean_loss()
    trainer(max_steps=12, limit_val_batches=0).fit(module, data)
    after = mean_loss()
    print(f"classification loss on the training batches: {before:.3f} -> {after:.3f}")
    assert after < 0.8 * before, (before, after)


def test_metric_specs_give_separate_val_and_test_metrics() -> None:
    metric = SegmentationMIoU(8)
    for spec in (metric, partial(SegmentationMIoU, 8), {"miou": metric}, MetricCollection({"m": metric})):
        module = SegmentationAdapter(create_model("mnb_test"), 8, spec, fuse_channels=16)
        assert module.val_metrics is not module.test_metrics and module.val_metrics is not metric
    with pytest.raises(ValueError, match="normalises"):
        DetectionAdapter(create_model("mnb_test"), 3, normalize=True)


def test_normalize_uses_the_backbone_statistics() -> None:
    module = build("classification", True, normalize=True)
    images = torch.rand(2, 3, SIZE, SIZE)
    mean = torch.tensor(module.backbone.pretrained_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(module.backbone.pretrained_cfg["std"]).view(1, 3, 1, 1)
    torch.testing.assert_close(module.preprocess(images), (images - mean) / std)
    assert build("classification", True).preprocess(images) is images


def test_warmup_cosine_floors_each_group_at_a_fraction_of_its_lr() -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    bias = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [weight], "lr": 1.0}, {"params": [bias], "lr": 0.1}])
    scheduler = warmup_cosine(optimizer, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(11):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert [lr[0] for lr in lrs[:3]] == pytest.approx([0.0, 0.5, 1.0])
    assert lrs[6] == pytest.approx([0.55, 0.055]) and lrs[10] == pytest.approx([0.1, 0.01])
