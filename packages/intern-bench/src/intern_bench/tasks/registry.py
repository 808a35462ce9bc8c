"""Look-up of tasks and suites by name; unknown names fail with the close matches."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from intern_bench.tasks.gvb import GVB_TASKS
from intern_bench.tasks.packaged import PACKAGED_TASKS
from intern_bench.tasks.spec import TaskSpec
from intern_bench.tasks.world import WORLD_TASKS

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (*WORLD_TASKS, *PACKAGED_TASKS, *GVB_TASKS)}
"""Task name -> spec: the world tasks, the packaged real tasks, then GV-B in Table 31's order."""

SUITES: dict[str, tuple[str, ...]] = {
    suite: tuple(name for name, spec in TASKS.items() if suite in spec.suites)
    for suite in dict.fromkeys(tag for spec in TASKS.values() for tag in spec.suites)
}
"""Suite name -> its task names, from the specs' ``suites`` tags."""


class _UnknownNameError(KeyError):
    """A name not in ``known``; the message offers the close matches."""

    what = "name"

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = list(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        super().__init__(f"unknown {self.what} {name!r}; {hint}known: {', '.join(known)}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownTaskError(_UnknownNameError):
    """`get_task` was given a name that is not registered (a KeyError)."""

    what = "task"


class UnknownSuiteError(_UnknownNameError):
    """`get_suite` or `list_tasks` was given a suite that does not exist (a KeyError)."""

    what = "suite"


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``.

    Raises:
        UnknownTaskError: no such task; the message lists close matches and every known name.
    """
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(name, TASKS) from None


def list_tasks(suite: str | None = None) -> list[str]:
    """Names of all tasks, or of the tasks in ``suite``, in registry order."""
    return list(TASKS) if suite is None else [spec.name for spec in get_suite(suite)]


def get_suite(name: str) -> tuple[TaskSpec, ...]:
    """The specs of suite ``name``.

    Raises:
        UnknownSuiteError: no such suite; the message lists close matches and every known suite.
    """
    try:
        return tuple(TASKS[task] for task in SUITES[name])
    except KeyError:
        raise UnknownSuiteError(name, SUITES) from None
