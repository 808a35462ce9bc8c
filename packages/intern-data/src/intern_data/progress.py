"""Progress bars for long loops: tqdm on stderr, quiet when stderr is not a terminal or progress is off.

Progress is switched off for a process, and the processes it starts, by ``INTERN_PROGRESS=0`` in the
environment or :func:`set_progress` (the apps call it for ``progress=false``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

__all__ = ["ENV_VAR", "progress_bar", "progress_enabled", "set_progress", "show_progress"]

ENV_VAR = "INTERN_PROGRESS"
_OFF = {"0", "false", "no", "off"}

T = TypeVar("T")


def set_progress(enabled: bool) -> None:
    """Switch every progress bar of this process and of the processes it starts on or off."""
    os.environ[ENV_VAR] = "1" if enabled else "0"


def progress_enabled() -> bool:
    """Whether progress is switched on (``INTERN_PROGRESS`` unset or not ``0``/``false``/``no``/``off``)."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in _OFF


def show_progress() -> bool:
    """Whether a tool drawing its own bar should: progress switched on and stderr a terminal."""
    return progress_enabled() and sys.stderr.isatty()


def progress_bar(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> tqdm[T]:
    """A tqdm bar over ``iterable`` on stderr (``total`` defaults to ``len(iterable)`` when it has one).

    The bar is quiet when ``enabled`` is false, when progress is switched off (:func:`progress_enabled`)
    or when stderr is not a terminal. A bar opened inside another one is cleared when it ends.
    """
    disable = None if enabled and progress_enabled() else True  # None: tqdm's check for a terminal
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=None, disable=disable)
