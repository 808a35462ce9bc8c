"""intern-app: finding conf/, checking overrides before Hydra runs, keys that moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from intern_app import check_overrides, config_dir
from intern_app.app import moved_key

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
            "unknown stage 'upx' (choose from: search, upa, upa_g, upa_l, upa_upe, upe, upe_c, upe_d, upe_s, "
            "upg)",
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


def _leaf_keys(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in _leaf_keys(value, f"{prefix}{key}.")] or [
            prefix[:-1]
        ]
    return [prefix[:-1]]


def test_moved_pretrain_keys_name_their_replacement_and_catch_no_current_key() -> None:
    from intern_pretrain.__main__ import MOVED

    assert "stage/upa_g_terms" in moved_key(["stage.losses.sts=false"], MOVED)
    assert moved_key(["+stage.upa_g.batch_size=4"], MOVED).endswith("stage.upa_g.data.batch_size")
    assert "stage.callbacks.probe" in moved_key(["stage.eval.dataset=null"], MOVED)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        keys = [
            key
            for stage in ("upa", "upa_g", "upa_l")
            for key in _leaf_keys(
                OmegaConf.to_container(compose("pretrain", [f"stage={stage}"]).stage), "stage."
            )
        ]
    assert len(keys) > 80
    assert [key for key in keys if moved_key([f"{key}=1"], MOVED)] == []
