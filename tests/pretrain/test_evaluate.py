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


def test_parent_row_is_the_hand_over_the_stage_started_from(tmp_path: Path) -> None:
    """``parent: true`` benches the parent export beside the expert's, named by the stage that wrote it;
    without a random-init row it is the report's baseline."""
    parent = tmp_path / "upa" / "export"
    parent.mkdir(parents=True)
    (parent / "config.json").write_text('{"stage": "upa_l"}')
    export = tmp_path / "export"
    settings = {"tasks": ["gvb_world_cls"], "splits": ["10pct"], "baseline": False, "parent": True}
    commands = bench_commands(export, tmp_path, settings, model="mnb_test", stage="upe_c", parent=parent)
    assert backbones(commands) == [
        ("task=gvb_world_cls", f"checkpoint={export}"),
        ("task=gvb_world_cls", f"checkpoint={parent}"),
    ]
    assert "name='mnb_test (upa_l)'" in commands[1][1] and commands[1][0].name == "parent"
    report = commands[-1][1]
    assert report[report.index("--baseline") + 1] == "mnb_test (upa_l)"
    off = bench_commands(export, tmp_path, {**settings, "parent": False}, model="mnb_test", stage="upe_c",
                         parent=parent)  # fmt: skip
    assert (
        backbones(off) == [("task=gvb_world_cls", f"checkpoint={export}")] and "--baseline" not in off[-1][1]
    )
