"""``dense.init_heads``: a detection cell's Faster R-CNN starts from the checkpoint's exported neck and box
head (an Up-A-L hand-over) instead of fresh ones; the paper's protocol (fresh heads) stays the default."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import intern_arch
from intern_app import AppError, config_dir
from intern_arch import BoxHead, save_handover
from intern_arch.necks import FPN
from intern_bench.__main__ import main
from intern_bench.protocols.dense import build_adapter
from intern_bench.results import load_results
from intern_data.tasks import load_tasks
from intern_transfer.backbones import load_backbone

TASKS = load_tasks(config_dir() / "task")
PROTOCOL = {"freeze_backbone": True, "lr": 1e-3, "weight_decay": 1e-4, "init_heads": True}
QUICK = [
    "dense.epochs=1",
    "dense.min_steps=0",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_test_batches=1",
    "progress=false",
]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    parts = {"neck": FPN(backbone, 8, extra_max_pool=False), "heads/box": BoxHead(8, 7, 8, 4, 16)}
    return save_handover(tmp_path_factory.mktemp("handover") / "export", backbone, parts, stage="upa_l")


def test_detector_starts_from_the_exported_neck_and_box_head(export: Path) -> None:
    loaded = load_backbone(export)
    adapter = build_adapter(loaded.backbone, TASKS["gvb_world_det"], PROTOCOL, 64, loaded.parts)
    detector = adapter.model
    torch.testing.assert_close(detector.backbone.fpn.state_dict(), loaded.parts["neck"].fpn.state_dict())
    torch.testing.assert_close(
        detector.roi_heads.box_head.state_dict(), loaded.parts["heads/box"].state_dict()
    )
    assert detector.roi_heads.box_head is not loaded.parts["heads/box"]  # every cell starts from the export
    fresh = build_adapter(loaded.backbone, TASKS["gvb_world_det"], {**PROTOCOL, "init_heads": False}, 64)
    assert type(fresh.model.roi_heads.box_head).__name__ == "TwoMLPHead"  # torchvision's default head


def test_without_the_parts_or_for_another_task_it_fails_naming_why(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    plain = intern_arch.save_pretrained(
        intern_arch.create_model("mnb_test", num_classes=0), tmp_path / "plain"
    )
    with pytest.raises(
        AppError, match=r"dense.init_heads=true needs .* a neck and a heads/box part .* holds: none"
    ):
        main(compose_app("bench", ["task=gvb_world_det", f"checkpoint={plain}", "dense.init_heads=true",
                                   f"paths.root_dir={tmp_path}", *QUICK]))  # fmt: skip
    loaded = load_backbone(plain)
    with pytest.raises(ValueError, match="starts a Faster R-CNN; task 'gvb_world_seg' is segmentation"):
        build_adapter(loaded.backbone, TASKS["gvb_world_seg"], PROTOCOL, 64, loaded.parts)


def test_a_cell_from_the_exported_heads_is_its_own_protocol(
    compose_app: Callable[..., Any], export: Path, intern_root: Path, tmp_path: Path
) -> None:
    overrides = ["task=gvb_world_det", "split=10pct", f"checkpoint={export}", "dense.init_heads=true"]
    cfg = compose_app("bench", [*overrides, f"paths.root_dir={intern_root}", *QUICK])
    main(cfg)
    (result,) = load_results(tmp_path / "result.json")
    assert result.protocol == "frozen_dense_init_heads" and result.primary_metric == "map50"
    assert result.metrics["anchor_coverage"] >= 90  # percent of the task's boxes, checked before training
