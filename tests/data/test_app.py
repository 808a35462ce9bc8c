"""The data app's task: making (or reusing) a configured dataset's shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from intern_app import AppError
from intern_data.__main__ import main


def test_data_app_caches_world_shards(
    compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    overrides = ["data=world_cls_fine", "data.sizes={train: 30, val: 10}", f"paths.root_dir={tmp_path}"]
    main(compose_app("data", overrides))
    out = capsys.readouterr().out
    assert "composed: paths=default data=world_cls_fine" in out
    assert "world_cls_fine/train: 30 samples in 1 shards" in out
    folder = Path(out.split("shards: ")[1].strip())
    assert folder == tmp_path / "cache" / "world" / "world_cls_fine" / "seed0-px64-n30.10.500"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    main(compose_app("data", overrides))  # cached: nothing is rewritten
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_data_app_names_the_missing_shards(compose_app: Callable[..., Any], tmp_path: Path) -> None:
    with pytest.raises(
        AppError, match=r"shard folder .*nope \(data.root\) has no split\(s\) \['train', 'val'\]"
    ):
        main(compose_app("data", ["data=shards", f"data.root={tmp_path / 'nope'}"]))
