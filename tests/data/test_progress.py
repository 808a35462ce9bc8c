"""intern_data.progress: bars on a terminal only, switched off by INTERN_PROGRESS, set_progress or the
apps' progress=false."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from intern_data.__main__ import main
from intern_data.progress import ENV_VAR, progress_bar, progress_enabled, set_progress, show_progress
from intern_data.shards import write_shards


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def stderr(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> io.StringIO:
    """A fresh sys.stderr for the rest of the test (set in the test body: pytest's capture resets
    sys.stderr between a fixture's set-up and the test)."""
    stream = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def test_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = stderr(monkeypatch, terminal=True)
    bar = progress_bar(range(3), desc="counting", unit="n")
    assert not bar.disable and show_progress()
    assert list(bar) == [0, 1, 2]
    assert "counting" in stream.getvalue() and "3/3" in stream.getvalue()


def test_quiet_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = stderr(monkeypatch, terminal=False)
    bar = progress_bar(range(3), desc="counting")
    assert bar.disable and not show_progress()
    assert list(bar) == [0, 1, 2]
    assert stream.getvalue() == ""


@pytest.mark.parametrize("switch", ["env", "set_progress", "enabled"])
def test_quiet_when_switched_off(switch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = stderr(monkeypatch, terminal=True)
    if switch == "env":
        monkeypatch.setenv(ENV_VAR, "0")
    elif switch == "set_progress":
        set_progress(False)
    bar = progress_bar(range(3), desc="counting", enabled=switch != "enabled")
    assert bar.disable and list(bar) == [0, 1, 2]
    assert stream.getvalue() == ""
    assert show_progress() is (switch == "enabled")


def test_set_progress_switches_back_on(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr(monkeypatch, terminal=True)
    set_progress(False)
    assert not progress_enabled() and not show_progress()
    set_progress(True)
    assert progress_enabled() and show_progress()


def test_write_shards_counts_samples_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stream = stderr(monkeypatch, terminal=True)
    samples = (
        {"__key__": f"s{i}", "source": "toy", "image": torch.zeros(3, 8, 8, dtype=torch.uint8)}
        for i in range(4)
    )
    write_shards(samples, tmp_path, "toy", "train", image_format="png", total=4)
    assert "toy/train" in stream.getvalue() and "4/4" in stream.getvalue()


@pytest.mark.parametrize(
    ("progress", "terminal", "bar"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_data_app_bars_only_when_asked(
    progress: bool,
    terminal: bool,
    bar: bool,
    compose_app: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    stream = stderr(monkeypatch, terminal)
    overrides = ["data=world_cls_fine", "data.sizes={train: 4, val: 2}", f"paths.root_dir={tmp_path}"]
    main(compose_app("data", [*overrides, f"progress={progress}"]))
    written = stream.getvalue()
    if bar:
        assert "world_cls_fine/train" in written and "4/4" in written and "world_cls_fine/val" in written
    else:
        assert "world_cls_fine" not in written and "sample/s" not in written
    assert progress_enabled() is progress  # progress=false switches every bar of the run off
