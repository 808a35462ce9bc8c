"""Figure 1 of the paper from results: per task, each model's gain over a baseline model at one split.

Gains are improvements, so a taller bar is always better: ``value - baseline`` for higher-is-better
metrics and ``baseline - value`` for lower-is-better ones. As in Figure 1, the lower-is-better tasks
(depth errors, MR^-2) sit on a shaded right-hand part with their own y-axis, since their units differ.
A cell with several draws (``split_seeds``) enters with its mean.
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
    aggregate,
    columns,
    models,
    prepare,
    split_name,
)
from intern_bench.results import BenchResult


def gains(
    results: Sequence[BenchResult], baseline: str, split: str = "10pct"
) -> dict[Column, dict[str, float]]:
    """Per column the baseline has at ``split``, each other model's improvement over it there.

    Raises:
        NothingToDraw: the baseline has no result at ``split``, or no other model shares a task with it.
    """
    split = split_name(split)
    kept = [r for r in prepare(results) if r.split == split]
    values = {(model, key): stat.mean for (model, key, _), stat in aggregate(kept).items()}
    if not any(r.model == baseline for r in kept):
        raise NothingToDraw(f"the baseline {baseline!r} has no result at split {split}")
    out: dict[Column, dict[str, float]] = {}
    for column in columns(kept):
        base = values.get((baseline, column.key))
        if base is None:
            continue
        sign = 1.0 if column.higher_is_better else -1.0
        row = {
            m: sign * (values[(m, column.key)] - base)
            for m in models(kept)
            if m != baseline and (m, column.key) in values
        }
        if row:
            out[column] = row
    if not out:
        raise NothingToDraw(f"no other model shares a task with the baseline {baseline!r} at split {split}")
    return out


def gain_figure(results: Sequence[BenchResult], baseline: str, split: str = "10pct") -> Figure:
    """The grouped bar chart of :func:`gains`: one axes, two when both metric directions occur."""
    table = gains(results, baseline, split)
    order = models(prepare(results), first=baseline)  # colours as in the other figures of a report
    names = [m for m in order if any(m in row for row in table.values())]
    up = [c for c in table if c.higher_is_better]
    down = [c for c in table if not c.higher_is_better]
    ordered = up + down
    fig = Figure(figsize=(min(20.0, max(6.0, 2.0 + 0.35 * len(ordered) * (len(names) + 1))), 4.5))
    left = fig.add_subplot()
    if up and down:
        right = left.twinx()
        left.axvspan(len(up) - 0.5, len(ordered) - 0.5, color="#f6dbe4", zorder=0)
    else:
        right = left
    width = 0.8 / len(names)
    for i, model in enumerate(names):
        for ax, cols, offset in ((left, up, 0), (right, down, len(up))):
            xs = [offset + j for j, c in enumerate(cols) if model in table[c]]
            ys = [table[c][model] for c in cols if model in table[c]]
            if xs:
                positions = np.asarray(xs) - 0.4 + width * (i + 0.5)
                ax.bar(positions, ys, width, color=colour(order.index(model)), label=model, zorder=2)
    for ax in {left, right}:
        ax.axhline(0.0, color="black", linewidth=0.8, zorder=3)
    left.set_xticks(range(len(ordered)))
    left.set_xticklabels([c.label for c in ordered], rotation=30, ha="right")
    left.set_xlim(-0.5, len(ordered) - 0.5)
    if up:
        left.set_ylabel("gain (higher-is-better metrics)")
    if down:
        right.set_ylabel("reduction (lower-is-better metrics)")
    left.set_title(f"Gain over {baseline} at {split_name(split)}")
    handles, labels = left.get_legend_handles_labels()
    if right is not left:
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    seen = dict(zip(labels, handles, strict=True))
    left.legend(seen.values(), seen.keys(), fontsize="small", loc="best")
    return fig


def gain_bars(results: Sequence[BenchResult], baseline: str, path: str | Path, split: str = "10pct") -> Path:
    """Write :func:`gain_figure` as a PNG at ``path`` (raises :class:`NothingToDraw` as it does)."""
    return save_png(gain_figure(results, baseline, split), path)
