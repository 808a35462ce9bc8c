"""Figure 10 of the paper from results: a task's primary metric against the amount of training data.

One figure per column (task measured one way), one line per model: percentage regimes (10, 20, 40,
80, 100%) dashed in one panel and N-shot regimes (1, 2, 4, 8) solid in a second, each panel only
where such results exist. A regime with several draws (``split_seeds``) is drawn at its mean, inside
a band of ± one sample standard deviation. A column with a single data regime has no curve
(:class:`NothingToDraw`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from intern_bench.report._figures import colour, save_png
from intern_bench.report.selection import (
    Column,
    NothingToDraw,
    Stat,
    aggregate,
    column_key,
    models,
    prepare,
    regime,
)
from intern_bench.results import BenchResult

PANELS = (("percent", "training data (%)", "--"), ("shot", "shots per class", "-"))


def curve_points(
    results: Sequence[BenchResult], column: Column
) -> dict[str, dict[str, list[tuple[float, Stat]]]]:
    """``{kind: {model: [(regime value, metric over the draws), ...]}}`` of the column, by regime value."""
    points: dict[str, dict[str, list[tuple[float, Stat]]]] = {}
    kept = [r for r in prepare(results) if column_key(r) == column.key]
    for (model, _, split), stat in aggregate(kept).items():
        rule = regime(split)
        if rule is not None:
            points.setdefault(rule.kind, {}).setdefault(model, []).append((float(rule.value), stat))
    for per_model in points.values():
        for series in per_model.values():
            series.sort(key=lambda point: point[0])
    return points


def curve_figure(results: Sequence[BenchResult], column: Column, first_model: str | None = None) -> Figure:
    """The column's metric against data regime (one axes per regime kind present).

    Args:
        results: any results; those of ``column`` with a split rule are drawn.
        column: the task measured one way, from :func:`intern_bench.report.selection.columns`.
        first_model: a model to give the first colour (the baseline), as in the report's other figures.

    Raises:
        NothingToDraw: the column has fewer than two data regimes.
    """
    points = curve_points(results, column)
    regimes = {(kind, x) for kind, per_model in points.items() for s in per_model.values() for x, _ in s}
    if len(regimes) < 2:
        names = ", ".join(sorted({r.split for r in results if column_key(r) == column.key})) or "none"
        raise NothingToDraw(f"{column.label}: only one data regime ({names}), no curve")
    order = models(prepare(results), first=first_model)
    kinds = [p for p in PANELS if p[0] in points]
    fig = Figure(figsize=(5.0 * len(kinds) + 1.0, 4.0))
    axes = fig.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
    for ax, (kind, xlabel, style) in zip(axes, kinds, strict=True):
        ticks = sorted({x for s in points[kind].values() for x, _ in s})
        for model in order:
            series = points[kind].get(model)
            if series:
                xs = [x for x, _ in series]
                means = np.array([stat.mean for _, stat in series])
                stds = np.array([stat.std for _, stat in series])
                ax.plot(xs, means, style, marker="o", color=colour(order.index(model)), label=model)
                if any(stat.n > 1 for _, stat in series):
                    ax.fill_between(
                        xs, means - stds, means + stds, color=colour(order.index(model)), alpha=0.2
                    )
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"{column.metric} {column.arrow}")
    handles = {}  # a model may appear in one panel only: the legend lists every line once
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    axes[-1].legend(handles.values(), handles.keys(), fontsize="small", loc="best")
    fig.suptitle(f"{column.label} ({column.protocol})")
    return fig


def save_curves(
    results: Sequence[BenchResult], column: Column, path: str | Path, first_model: str | None = None
) -> Path:
    """Write :func:`curve_figure` as a PNG at ``path`` (raises :class:`NothingToDraw` as it does)."""
    return save_png(curve_figure(results, column, first_model), path)
