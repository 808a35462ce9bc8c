"""What a report can draw from a set of results: its columns, models, data regimes and their draws.

A column is a task measured one way: (task, protocol, primary metric). A task evaluated under one
protocol gives one column, labelled by the task's name; under several (a linear probe and a
fine-tune, say) it gives one column each, labelled with what tells them apart. Split rules are
normalised (``10%`` and ``10pct`` are one regime) before the newest result per draw (split seed) is
kept; a cell (model, column, regime) is then the mean and spread over its draws (:func:`aggregate`).
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from intern_bench.results import BenchResult, latest
from intern_data.splits import SplitRule

# Column order of Table 1: classification, detection, segmentation, depth, then anything else.
TASK_TYPE_ORDER = ("classification", "detection", "segmentation", "depth")


class NothingToDraw(ValueError):
    """The results do not support a figure; the message says why (the report prints it)."""


@dataclass(frozen=True)
class Column:
    """One task measured one way; ``label`` is what tables and figures call it."""

    task: str
    task_type: str
    protocol: str
    metric: str
    higher_is_better: bool
    label: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.protocol, self.metric)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def slug(self) -> str:
        """``label`` as a file-name part."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.label).strip("_") or "task"


def column_key(result: BenchResult) -> tuple[str, str, str]:
    return (result.task, result.protocol, result.primary_metric)


@dataclass(frozen=True)
class Stat:
    """A cell's primary metric over its ``n`` draws: their mean and sample standard deviation (0 for one)."""

    mean: float
    std: float
    n: int


CellKey = tuple[str, tuple[str, str, str], str]
"""(model, column key, split) of a cell."""


def aggregate(results: Iterable[BenchResult]) -> dict[CellKey, Stat]:
    """Each cell's :class:`Stat` over its draws; ``results`` as :func:`prepare` leaves them (one per draw)."""
    draws: dict[CellKey, list[float]] = {}
    for result in results:
        draws.setdefault((result.model, column_key(result), result.split), []).append(result.value)
    return {
        key: Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))
        for key, values in draws.items()
    }


def spread_legend(stats: Iterable[tuple[str, Stat]]) -> str:
    """What ``±`` means for these (split, stat) pairs, with the 100pct caveat; empty when no cell has two
    draws."""
    spread = [(split, stat) for split, stat in stats if stat.n > 1]
    if not spread:
        return ""
    counts = sorted({stat.n for _, stat in spread})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    text = f"± : sample standard deviation over a cell's draws of its data regime (split_seeds, n = {n})."
    if any(
        (rule := regime(split)) is not None and rule.kind == "percent" and rule.value == 100
        for split, _ in spread
    ):
        text += (
            " 100pct runs once per seed too, on the same samples every time: its spread is the validation"
            " carve-out's and the head training's alone, the floor under every other regime's."
        )
    return text


def regime(split: str) -> SplitRule | None:
    """The split rule of ``split``, or None for a name that is not a rule (e.g. ``full``)."""
    try:
        return SplitRule.parse(split)
    except ValueError:
        return None


def split_name(split: str) -> str:
    """The canonical name of a split rule (``10%`` -> ``10pct``); other names are kept."""
    rule = regime(split)
    return str(rule) if rule is not None else split


def split_order(split: str) -> tuple[int, float, str]:
    """Sort key: percentages ascending, then N-shot ascending, then other names."""
    rule = regime(split)
    if rule is None:
        return (2, 0.0, split)
    return (0 if rule.kind == "percent" else 1, float(rule.value), split)


def prepare(results: Iterable[BenchResult]) -> list[BenchResult]:
    """Results with normalised split names, the newest per (model, task, split, protocol, split seed)."""
    return latest([dataclasses.replace(r, split=split_name(r.split)) for r in results])


def columns(results: Sequence[BenchResult]) -> list[Column]:
    """The columns of ``results`` in Table 1's order (by task type, then task name).

    Raises:
        ValueError: results of one column disagree on the metric's direction.
    """
    found: dict[tuple[str, str, str], BenchResult] = {}
    for result in results:
        first = found.setdefault(column_key(result), result)
        if first.higher_is_better != result.higher_is_better:
            raise ValueError(
                f"results of task {result.task!r} ({result.protocol}) disagree on whether "
                f"{result.primary_metric!r} is better higher"
            )
    per_task: dict[str, list[tuple[str, str, str]]] = {}
    for key in found:
        per_task.setdefault(key[0], []).append(key)
    out = []
    for key, result in found.items():
        siblings = per_task[key[0]]
        parts = []
        if len({protocol for _, protocol, _ in siblings}) > 1:
            parts.append(result.protocol)
        if len({metric for _, _, metric in siblings}) > 1:
            parts.append(result.primary_metric)
        label = f"{result.task} ({', '.join(parts)})" if parts else result.task
        out.append(
            Column(
                task=result.task,
                task_type=result.task_type,
                protocol=result.protocol,
                metric=result.primary_metric,
                higher_is_better=result.higher_is_better,
                label=label,
            )
        )
    return sorted(out, key=_column_order)


def _column_order(column: Column) -> tuple[int, str, str, str]:
    kind = column.task_type
    rank = TASK_TYPE_ORDER.index(kind) if kind in TASK_TYPE_ORDER else len(TASK_TYPE_ORDER)
    return (rank, column.task, column.protocol, column.metric)


def models(results: Iterable[BenchResult], first: str | None = None) -> list[str]:
    """The models of ``results`` by name, ``first`` (a baseline) leading when present."""
    names = sorted({r.model for r in results})
    if first in names:
        names.remove(first)
        names.insert(0, first)
    return names
