"""intern_data.app: finding conf/, checking overrides before Hydra runs, and the data app's task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra.core.global_hydra import GlobalHydra

from intern_app import AppError, check_overrides, config_dir
from intern_data.__main__ import main

REPO = Path(__file__).resolve().parents[2]


def test_config_dir_is_the_repository_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INTERN_CONF_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config_dir() == REPO / "conf"


def test_config_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERN_CONF_DIR", str(tmp_path))
    assert config_dir() == tmp_path.resolve()


def test_missing_config_dir_names_both_places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERN_CONF_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError) as raised:
        config_dir()
    assert "INTERN_CONF_DIR" in str(raised.value)
    assert str(tmp_path / "missing") in str(raised.value)
    assert str(REPO / "conf") in str(raised.value)


@pytest.mark.parametrize(
    ("config_name", "overrides", "expected"),
    [
        ("pretrain", [], None),
        ("pretrain", ["stage=upe_s", "model=r50", "trainer.max_epochs=3", "+note=x"], None),
        ("pretrain", ["hydra.run.dir=/tmp/elsewhere", "hydra/job_logging=disabled"], None),
        ("bench", ["hparams_search=probe_lr_grid", "split=10pct,100pct"], None),
        (
            "pretrain",
            ["stage=upx"],
            "unknown stage 'upx' (choose from: upa, upa_g, upa_l, upe_c, upe_d, upe_s, upg)",
        ),
        ("pretrain", ["+debug=fast"], "unknown debug 'fast' (choose from: default, fdr)"),
        (
            "data",
            ["data.seed=1", "data.sed=1"],
            "unknown config key 'data.sed' (prefix with + to add a new key)",
        ),
        ("pretrain", ["~nothing"], "Could not delete from config. 'nothing' does not exist."),
        ("pretrain", ["model=["], "no viable alternative at input '['"),
        ("transfer", ["task=a,b"], "'task=a,b' sweeps over values; add -m to run one job per value"),
    ],
)
def test_check_overrides(config_name: str, overrides: list[str], expected: str | None) -> None:
    assert check_overrides(config_dir(), config_name, overrides) == expected
    assert not GlobalHydra.instance().is_initialized()


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
