"""The bench's bar over cells (tasks x regimes): on a terminal, off with progress=false."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from intern_bench import runner


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_bar_over_cells(progress: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(runner, "load_backbone", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "run_cell", lambda cfg, loaded, display, task, rule, *args: (task.name, rule))
    task = {"name": "t", "type": "classification", "source": "reader"}
    cfg: dict[str, Any] = {"seed": 0, "backbone": "b", "task": task, "splits": ["10pct", "100pct"]}
    cells = runner.run_bench({**cfg, "progress": progress}, tmp_path)
    assert cells == [("t", "10pct"), ("t", "100pct")]
    assert ("cells" in stream.getvalue() and "2/2" in stream.getvalue()) is progress
