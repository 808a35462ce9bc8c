"""The intern_bench app's task: protocols, none implemented yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from intern_bench.__main__ import main
from intern_data.app import AppError


@pytest.mark.parametrize("protocol", ["linear_probe", "lbfgs"])
def test_protocol_names_the_issue_it_arrives_with(
    compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    cfg = compose_app("bench", [f"protocol={protocol}", "task=fashion_mnist", "split=10pct"])
    with pytest.raises(AppError, match=f"protocol '{protocol}' is not implemented yet"):
        main(cfg)
    assert "task fashion_mnist (classification, accuracy), split 10pct" in capsys.readouterr().out
