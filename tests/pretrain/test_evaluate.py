"""The commands of the pretraining app's ``evaluate`` step: the export, the random-init baseline and the
raw-pixel row, each a ``python -m intern_bench`` process, then the report."""

from __future__ import annotations

from pathlib import Path

from intern_pretrain.app.evaluate import bench_commands

SETTINGS = {"tasks": ["gvb_world_cls", "gvb_world_det"], "splits": ["10pct"], "baseline": True}


def backbones(commands: list[tuple[Path, list[str]]]) -> list[tuple[str, str]]:
    """``(task, backbone or checkpoint override)`` of each bench cell command."""
    cells = [argv for _, argv in commands if "report" not in argv]
    return [
        (
            next(a for a in argv if a.startswith("task=")),
            next(a for a in argv if a.startswith(("backbone=", "checkpoint="))),
        )
        for argv in cells
    ]


def test_pixels_adds_the_raw_pixel_row_to_classification_tasks_only(tmp_path: Path) -> None:
    export = tmp_path / "export"
    with_pixels = bench_commands(
        export, tmp_path, {**SETTINGS, "pixels": True}, model="mnb_test", stage="upa"
    )
    assert backbones(with_pixels) == [
        ("task=gvb_world_cls", f"checkpoint={export}"),
        ("task=gvb_world_cls", "backbone=mnb_test"),
        ("task=gvb_world_cls", "backbone=pixels"),
        ("task=gvb_world_det", f"checkpoint={export}"),
        ("task=gvb_world_det", "backbone=mnb_test"),
    ]
    assert [folder.name for folder, _ in with_pixels][2] == "pixels"
    assert "name='raw pixels'" in with_pixels[2][1]
    plain = bench_commands(export, tmp_path, SETTINGS, model="mnb_test", stage="upa")
    assert all(backbone != "backbone=pixels" for _, backbone in backbones(plain))
