"""The intern_transfer app's task: its methods, none implemented yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from intern_app import AppError
from intern_transfer.__main__ import main


@pytest.mark.parametrize(
    ("method", "issue"), [("probe", "intern-transfer"), ("finetune", "intern-transfer"), ("down_a", "Down-A")]
)
def test_method_names_the_issue_it_arrives_with(
    compose_app: Callable[..., Any], method: str, issue: str
) -> None:
    with pytest.raises(
        AppError, match=f"method '{method}' is not implemented yet; it arrives with the {issue} issue"
    ):
        main(compose_app("transfer", [f"method={method}"]))


def test_unknown_method(compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AppError) as raised:
        main(compose_app("transfer", ["method=linear"]))
    assert str(raised.value) == "unknown method 'linear' (choose from: down_a, finetune, probe)"
    assert capsys.readouterr().out == ""
