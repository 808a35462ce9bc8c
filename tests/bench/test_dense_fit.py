"""Dense cells fitted to their task: anchors that reach the world's boxes, task-config overrides of the
geometry, and epochs from a minimum number of optimiser steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import intern_arch
from intern_app import config_dir
from intern_arch.heads import build_faster_rcnn
from intern_arch.heads.geometry import FPN_ANCHOR_SIZES, anchor_coverage, detector_anchors
from intern_bench.protocols.dense import build_adapter
from intern_bench.protocols.dense_fit import (
    budget_epochs,
    check_anchor_coverage,
    training_boxes,
)
from intern_data.datamodules import background_offset
from intern_data.regimes import regime_shards
from intern_data.shards import load_index, write_shards
from intern_data.tasks import TaskSpec, load_tasks
from intern_data.world.datasets import generate, get_dataset, make_scene
from intern_transfer.adapt import dense_geometry

TASKS = load_tasks(config_dir() / "task")
WORLD_DETECTION = ("gvb_world_det", "world_det_a", "world_det_b")
PROTOCOL = {"freeze_backbone": True, "lr": 1e-3, "weight_decay": 1e-4}


def with_protocol(spec: TaskSpec, **values: Any) -> TaskSpec:
    """``spec`` with ``values`` set in its task config's ``protocol``."""
    return replace(spec, protocol={**spec.protocol, **values})


@pytest.mark.parametrize("name", WORLD_DETECTION)
def test_default_anchors_reach_nine_tenths_of_the_world_boxes(name: str) -> None:
    size = get_dataset(name).img_size
    backbone = intern_arch.create_model("mnb_test")
    count = min(1000, get_dataset(name).sizes["train"])  # the whole of gvb_world_det's train split
    scenes = (make_scene(name, "train", index) for index in range(count))
    boxes = torch.tensor([t.box for scene in scenes for t in scene.things if t.box is not None]).float()
    derived = build_faster_rcnn(backbone, 5, min_size=size, max_size=size, fpn_channels=8)
    assert anchor_coverage(detector_anchors(derived, size), boxes) >= 0.9
    published = build_faster_rcnn(backbone, 5, size, size, anchor_sizes=FPN_ANCHOR_SIZES, fpn_channels=8)
    assert anchor_coverage(detector_anchors(published, size), boxes) < 0.5  # why the default moved


def test_the_check_reads_the_shards_boxes_in_the_evaluation_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "det"
    write_shards(generate("gvb_world_det", "train", count=40), root, "gvb_world_det", "train")
    torch.testing.assert_close(training_boxes(root, "train", 32), training_boxes(root, "train", 64) / 2)
    spec = TASKS["gvb_world_det"]
    adapter = build_adapter(intern_arch.create_model("mnb_test"), spec, PROTOCOL, 64)
    assert check_anchor_coverage(adapter.model, spec, root, "train", 64) >= 0.9
    assert "anchor" not in caplog.text
    huge = with_protocol(spec, anchor_sizes=[256, 512, 1024, 2048, 4096])
    adapter = build_adapter(intern_arch.create_model("mnb_test"), huge, PROTOCOL, 64)
    assert check_anchor_coverage(adapter.model, spec, root, "train", 64) == 0.0
    assert "set task.protocol.anchor_sizes" in caplog.text


def test_task_configs_override_the_derived_geometry() -> None:
    det, seg = TASKS["gvb_world_det"], TASKS["gvb_world_seg"]
    assert dense_geometry(det, 64) == {"anchor_sizes": None}  # the detector derives them from its input
    assert dense_geometry(with_protocol(det, anchor_sizes=[8, 16, 32, 64, 128]), 64) == {
        "anchor_sizes": (8.0, 16.0, 32.0, 64.0, 128.0)
    }
    assert dense_geometry(seg, 64) == {"atrous_rates": (1, 2, 3)}
    assert dense_geometry(seg, 513) == {"atrous_rates": (6, 12, 18)}
    assert dense_geometry(with_protocol(seg, aspp_rates=[2, 4, 6]), 64) == {"atrous_rates": (2, 4, 6)}


@pytest.mark.parametrize(
    ("images", "epochs", "min_steps", "expected"),
    [(12, 4, 200, 200), (1000, 4, 200, 4), (100, 4, 200, 29), (100, 4, 0, 4), (100, 40, 200, 40)],
)
def test_epochs_give_at_least_the_minimum_steps(
    images: int, epochs: int, min_steps: int, expected: int
) -> None:
    assert budget_epochs({"batch_size": 16, "epochs": epochs, "min_steps": min_steps}, images) == expected


def test_a_low_data_regime_keeps_the_label_space_so_box_labels_keep_their_background(tmp_path: Path) -> None:
    root = tmp_path / "det"
    space = get_dataset("gvb_world_det").label_space
    samples = generate("gvb_world_det", "train", count=40)
    write_shards(samples, root, "gvb_world_det", "train", label_space=space)
    subset, _, _ = regime_shards(root, "train", "10pct", seed=0)
    assert load_index(subset)["label_space"] == load_index(root)["label_space"]
    assert background_offset([str(subset)]) == background_offset([str(root)]) == 0
