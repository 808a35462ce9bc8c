"""The task registry: every task config of a folder (``conf/task/``), by name and by suite."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from intern_data.tasks.config import TaskConfigError, task_from_config
from intern_data.tasks.spec import TaskSpec

__all__ = ["UnknownSuiteError", "UnknownTaskError", "get_suite", "get_task", "load_tasks", "suites"]


def load_tasks(folder: str | Path) -> dict[str, TaskSpec]:
    """Every task config of ``folder`` (``*.yaml`` but ``shards.yaml``, the user's-folder template), in
    the configs' ``order``.

    Raises:
        TaskConfigError: a config that cannot describe a task (the message names the file and key).
    """
    tasks = []
    for path in sorted(Path(folder).glob("*.yaml")):
        node = yaml.safe_load(path.read_text()) or {}
        if node.get("source") == "shards":
            continue
        try:
            tasks.append(task_from_config(node))
        except TaskConfigError as err:
            raise TaskConfigError(f"{path}: {err}") from None
    return {spec.name: spec for spec in sorted(tasks, key=lambda spec: (spec.order, spec.name))}


def suites(tasks: Mapping[str, TaskSpec]) -> dict[str, tuple[str, ...]]:
    """Suite name -> its task names, from the tasks' ``suites`` tags."""
    tags = dict.fromkeys(tag for spec in tasks.values() for tag in spec.suites)
    return {tag: tuple(name for name, spec in tasks.items() if tag in spec.suites) for tag in tags}


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
    """A task name that no config of the registry has (a KeyError)."""

    what = "task"


class UnknownSuiteError(_UnknownNameError):
    """A suite that no task of the registry belongs to (a KeyError)."""

    what = "suite"


def get_task(tasks: Mapping[str, TaskSpec], name: str) -> TaskSpec:
    """The task ``name`` of ``tasks``.

    Raises:
        UnknownTaskError: no such task; the message lists close matches and every known name.
    """
    try:
        return tasks[name]
    except KeyError:
        raise UnknownTaskError(name, tasks) from None


def get_suite(tasks: Mapping[str, TaskSpec], name: str) -> tuple[TaskSpec, ...]:
    """The tasks of suite ``name``.

    Raises:
        UnknownSuiteError: no such suite; the message lists close matches and every known suite.
    """
    groups = suites(tasks)
    if name not in groups:
        raise UnknownSuiteError(name, groups)
    return tuple(tasks[task] for task in groups[name])
