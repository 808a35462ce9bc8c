"""The intern_pretrain app: stages whose module does not exist yet fail in one line; the smoke run (Up-A's
phases, the hand-over, one GV-B cell) end to end; a rerun skips finished phases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from intern_app import AppError, config_dir
from intern_pretrain.app.main import main

pytestmark = pytest.mark.usefixtures("one_thread")
PENDING = {"upg": "7"}


def test_every_stage_config_is_pending_or_runs() -> None:
    stages = {path.stem for path in (config_dir() / "stage").glob("*.yaml")}
    assert stages == {
        "upa",
        "upa_g",
        "upa_l",
        "upe_c",
        "upe_d",
        "upe_s",
        "upe",
        "upa_upe",
        "search",
        *PENDING,
    }


@pytest.mark.parametrize("stage", sorted(PENDING))
def test_pending_stage_names_its_missing_module(
    compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    cfg = compose_app("pretrain", [f"stage={stage}", "model=mnb7"])
    target = cfg.stage.module._target_
    expected = (
        f"stage '{stage}' is not implemented yet: {target} does not exist (paper section {PENDING[stage]})"
    )
    with pytest.raises(AppError) as raised:
        main(cfg)
    assert str(raised.value) == expected
    out = capsys.readouterr().out
    assert f"stage={stage} model=mnb7" in out and cfg.stage.description in out


def test_smoke_runs_every_phase_exports_and_benches(
    run_pretrain: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``experiment=smoke``: Up-A-G, Up-A-L from its export (one hand-over with the text side, neck and
    box head), the three experts each from that Up-A export with a head per source, then one GV-B cell
    of the classification expert; a rerun skips the finished phases."""
    from intern_arch import load_handover

    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "experiment=smoke", tiny=())
    first = json.loads((run_dir / "upa_g" / "summary.json").read_text())
    upa = json.loads((run_dir / "upa_l" / "summary.json").read_text())
    assert (first["stage"], first["steps"], upa["stage"], upa["steps"]) == ("upa_g", 4, "upa_l", 4)
    assert upa["init_from"] == str(run_dir / "upa_g" / "export")
    handover = load_handover(run_dir / "upa_l" / "export")
    assert set(handover.parts) == {"text", "neck", "heads/box"} and handover.config["stage"] == "upa_l"
    experts = {"upe_c": run_dir / "upe_c", "upe_d": run_dir / "upe_d", "upe_s": run_dir}
    heads = {
        "upe_c": {"heads/world_cls_fine_a", "heads/world_cls_fine_b", "heads/world_cls_coarse"},
        "upe_d": {"neck", "heads/world_det_a", "heads/world_det_b"},
        "upe_s": {"heads/world_seg_things", "heads/world_seg_scenes"},
    }
    for stage, folder in experts.items():
        summary = json.loads((folder / "summary.json").read_text())
        assert (summary["stage"], summary["init_from"]) == (stage, str(run_dir / "upa_l" / "export"))
        expert = load_handover(folder / "export")
        assert set(expert.parts) == heads[stage] and expert.config["label_spaces"]["mode"] == "natural"
    (result,) = [json.loads(p.read_text()) for p in (run_dir / "upe_c" / "bench").rglob("result.json")]
    assert (result["model"], result["task"]) == ("mnb_test (upe_c)", "gvb_world_cls")
    assert "bench report:" in capsys.readouterr().out
    for hparams in run_dir.rglob("hparams.yaml"):  # plain data: no module pickled into a log
        assert isinstance(yaml.safe_load(hparams.read_text()), dict), hparams

    stamp = (run_dir / "upa_g" / "summary.json").stat().st_mtime_ns
    run_pretrain(run_dir, "experiment=smoke", "evaluate=null", tiny=())
    assert (run_dir / "upa_g" / "summary.json").stat().st_mtime_ns == stamp
    assert json.loads((run_dir / "summary.json").read_text())["resumed_from"].endswith("last.ckpt")
