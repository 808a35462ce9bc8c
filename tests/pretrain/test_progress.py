"""The pretrain app's `progress` key: progress=false also turns Lightning's bar off; the tokenizer's
trainer shows its own bar only on a terminal with progress on."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from intern_arch.text import TextTokenizer, train_tokenizer
from intern_pretrain.app.run import _trainer
from intern_pretrain.upa_g import data


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_progress_false_turns_lightnings_bar_off(compose_app: Callable[..., Any], progress: bool) -> None:
    trainer = _trainer(compose_app("pretrain", ["stage=upa_g", f"progress={progress}"]), resume_step=0)
    assert (trainer.progress_bar_callback is not None) is progress


@pytest.mark.parametrize(
    ("terminal", "switch", "shown"), [(True, "1", True), (False, "1", False), (True, "0", False)]
)
def test_caption_tokenizer_shows_the_trainers_bar_only_when_asked(
    terminal: bool, switch: str, shown: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = []

    def train(corpus: Iterable[str], vocab_size: int, show_progress: bool) -> TextTokenizer:
        asked.append(show_progress)
        return train_tokenizer(["a red lotus", "a blue car"] * 5, vocab_size=300)

    monkeypatch.setattr(data, "train_tokenizer", train)
    monkeypatch.setattr(sys, "stderr", Terminal() if terminal else io.StringIO())
    monkeypatch.setenv("INTERN_PROGRESS", switch)
    data.caption_tokenizer(tmp_path / "tokenizer", tmp_path / "shards", vocab_size=300)
    assert asked == [shown]
