"""Downstream tasks, each described by its config: the one description every app that takes ``task=``
reads (intern-bench's benchmark, intern-transfer's adaptation)."""

from intern_data.tasks.config import DEFAULT_METRICS, TaskConfigError, task_from_config, task_from_shards
from intern_data.tasks.registry import (
    UnknownSuiteError,
    UnknownTaskError,
    get_suite,
    get_task,
    load_tasks,
    suites,
)
from intern_data.tasks.spec import METRICS, SOURCE_KINDS, TASK_TYPES, DataSource, TaskSpec

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "SOURCE_KINDS",
    "TASK_TYPES",
    "DataSource",
    "TaskConfigError",
    "TaskSpec",
    "UnknownSuiteError",
    "UnknownTaskError",
    "get_suite",
    "get_task",
    "load_tasks",
    "suites",
    "task_from_config",
    "task_from_shards",
]
