"""The intern_pretrain app's task for stages that do not exist yet (Up-A: tests/pretrain/test_upa_g.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from intern_app import AppError, config_dir
from intern_pretrain.__main__ import IMPLEMENTED, main

STAGES = sorted(path.stem for path in (config_dir() / "stage").glob("*.yaml") if path.stem not in IMPLEMENTED)
ISSUE = {"upa": "Up-A", "upe": "Up-E", "upg": "Up-G"}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_names_the_issue_it_arrives_with(
    compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    cfg = compose_app("pretrain", [f"stage={stage}", "model=mnb7"])
    expected = f"stage '{stage}' is not implemented yet; it arrives with the {ISSUE[stage[:3]]} issue"
    with pytest.raises(AppError) as raised:
        main(cfg)
    assert str(raised.value) == expected
    out = capsys.readouterr().out
    assert f"stage={stage} model=mnb7" in out and cfg.stage.description in out
